"""What a platform declares is what its connections accept: a plugin's own secret option is
resolved and encrypted like ``api_key``, and a platform's name is its own (a third-party plugin
cannot take over a built-in platform and receive its credentials)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from salync_core import Engine, hookimpl, plugins
from salync_core.config import load_config
from salync_core.engine.connections import resolve_options
from salync_core.errors import ConfigError, PluginError
from salync_core.platform import (
    ConnectionContext,
    Credentials,
    Option,
    Page,
    Platform,
    Record,
    Reject,
    Stream,
)
from salync_core.secrets import KEY_ENV, Secret, create_key_file
from salync_core.testing.config import write_config


class ShopPlatform(Platform):
    """A platform whose credential is a ``shop_token`` of its own, not an ``api_key``."""

    name: ClassVar[str] = "test-shop"
    streams: ClassVar[tuple[Stream, ...]] = (Stream("items", "product"),)
    secret_options: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = (
        Option("shop_token", secret=True, help="the shop's access token"),
        Option("shop_id", types=(int,), required=True, help="the shop's number"),
    )

    def credentials(self, options: Mapping[str, Any]) -> Credentials:
        return Credentials("header", header="X-Shop-Token", secret=options.get("shop_token"))

    async def fetch(
        self, ctx: ConnectionContext, stream: Stream, cursor: Any
    ) -> AsyncIterator[Page]:
        yield Page([], None, complete=True)

    def map_inbound(
        self, ctx: ConnectionContext, stream: Stream, item: Any
    ) -> Iterable[Record | Reject]:
        return []


class Registers:
    """A plugin module registering the given platforms."""

    def __init__(self, *platforms: Platform) -> None:
        self.platforms = platforms

    @hookimpl
    def register_platforms(self, register: Any) -> None:
        for platform in self.platforms:
            register(platform)


@pytest.fixture
def shop_plugin() -> Iterator[None]:
    plugins.register_module(Registers(ShopPlatform()), "test-shop-plugin")
    try:
        yield
    finally:
        plugins.unregister("test-shop-plugin")


SHOP = {"plugin": "test-shop", "base_url": "https://shop.example.com", "shop_id": 7}


@pytest.mark.usefixtures("shop_plugin")
def test_a_plugin_secret_is_resolved_like_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "tok-from-env")
    shop = load_config(
        write_config(tmp_path, {"shop": {**SHOP, "shop_token": "env:SHOP_TOKEN"}})
    ).connection("shop")

    options = resolve_options(shop, ShopPlatform(), {})

    assert shop.options == {"shop_id": 7}
    assert "SHOP_TOKEN" not in repr(shop.options)
    assert isinstance(options["shop_token"], Secret)
    assert options["shop_token"].reveal() == "tok-from-env"


@pytest.mark.usefixtures("shop_plugin")
def test_a_plugin_option_the_platform_requires_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"shop": {"plugin": "test-shop", "base_url": "https://x"}})

    with pytest.raises(ConfigError, match=r"\[connections.shop\]: missing required key 'shop_id'"):
        load_config(path)


@pytest.mark.anyio
@pytest.mark.usefixtures("shop_plugin")
async def test_a_plugin_secret_is_stored_encrypted_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    create_key_file(tmp_path / "salync.key")
    async with Engine.open(write_config(tmp_path, {"shop": SHOP})) as engine:
        await engine.set_secrets("shop", {"shop_token": Secret("tok-stored-1234")})
        live = await engine._connect("shop")

        assert engine.secret_names("shop") == ["shop_token"]
        assert b"tok-stored-1234" not in (tmp_path / "salync.db").read_bytes()
        assert live.ctx.options["shop_token"].reveal() == "tok-stored-1234"


class Impostor(ShopPlatform):
    """A third party's platform that claims a built-in platform's name."""

    name: ClassVar[str] = "saleslayer"
    secret_options: ClassVar[tuple[str, ...]] = ("api_key",)
    options: ClassVar[tuple[Option, ...]] = ()


def test_a_plugin_cannot_take_over_a_built_in_platform_name() -> None:
    plugins.register_module(Registers(Impostor()), "test-impostor")
    try:
        with pytest.raises(PluginError) as error:
            plugins.platforms()
    finally:
        plugins.unregister("test-impostor")

    message = str(error.value)
    assert "platform 'saleslayer' is registered twice" in message
    assert "salync-core (entry point saleslayer)" in message
    assert "test-impostor" in message
    assert plugins.platforms()["saleslayer"].__class__.__name__ == "SalesLayerPlatform"


IMPOSTOR_MODULE = """
from salync_core import hookimpl
from salync_saleslayer.platform import SalesLayerPlatform


class Stealer(SalesLayerPlatform):
    pass


@hookimpl
def register_platforms(register):
    register(Stealer())
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a module as a distribution with a `salync` entry point, the way pip would."""
    import importlib
    import sys

    monkeypatch.delenv("SALYNC_LOAD_PLUGINS", raising=False)
    added: list[tuple[str, str]] = []

    def install(dist: str, entry_point: str, module: str, code: str) -> None:
        (tmp_path / f"{module}.py").write_text(code, encoding="utf-8")
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[salync]\n{entry_point} = {module}\n")
        added.append((entry_point, module))
        importlib.invalidate_caches()

    sys.path.insert(0, str(tmp_path))
    try:
        yield install
    finally:
        sys.path.remove(str(tmp_path))
        for entry_point, module in added:
            if plugins.pm.get_plugin(entry_point) is sys.modules.get(module):
                plugins.unregister(entry_point)
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


def test_a_clash_names_both_installed_packages(installed: Any) -> None:
    plugins.load_plugins()
    installed("sneaky-pim", "sneaky", "sneaky_pim", IMPOSTOR_MODULE)
    plugins.load_plugins(refresh=True)

    with pytest.raises(PluginError) as error:
        plugins.platforms()

    message = str(error.value)
    assert "platform 'saleslayer' is registered twice" in message
    assert "salync-core (entry point saleslayer)" in message
    assert "sneaky-pim (entry point sneaky)" in message


def test_an_entry_point_cannot_take_a_built_in_plugins_name(installed: Any) -> None:
    plugins.load_plugins()
    installed("sneaky-pim", "saleslayer", "sneaky_pim", IMPOSTOR_MODULE)

    with pytest.raises(PluginError) as error:
        plugins.load_plugins(refresh=True)

    message = str(error.value)
    assert "entry point 'saleslayer'" in message
    assert "salync-core" in message
    assert "sneaky-pim" in message


@pytest.mark.anyio
@pytest.mark.usefixtures("shop_plugin")
async def test_missing_credentials_name_the_platforms_own_secret(tmp_path: Path) -> None:
    async with Engine.open(write_config(tmp_path, {"shop": SHOP})) as engine:
        (report,) = await engine.sync()

    assert [p.message for p in report.problems] == [
        "[connections.shop]: no credentials; set shop_token in salync.toml (a literal or "
        '"env:VARIABLE") or store one with `salync secrets set shop shop_token`'
    ]


@pytest.mark.anyio
@pytest.mark.usefixtures("shop_plugin")
async def test_a_mistyped_secret_name_is_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    create_key_file(tmp_path / "salync.key")
    async with Engine.open(write_config(tmp_path, {"shop": SHOP})) as engine:
        with pytest.raises(
            ConfigError, match=r"takes no secret 'shop_tokn'; did you mean 'shop_token'\?"
        ):
            await engine.set_secrets("shop", {"shop_tokn": Secret("tok-stored-1234")})

        assert engine.secret_names("shop") == []


def test_a_plugin_that_fails_to_load_fails_every_load_not_only_the_first(installed: Any) -> None:
    installed("broken-plugin", "broken", "broken_plugin", "raise RuntimeError('boom')\n")
    with pytest.raises(
        PluginError, match=r"plugin 'broken' \(broken_plugin\) failed to load: boom"
    ):
        plugins.load_plugins(refresh=True)

    with pytest.raises(PluginError, match="failed to load: boom"):
        plugins.platforms()
