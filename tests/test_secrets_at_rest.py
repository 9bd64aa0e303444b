"""Secrets stored in the mirror are encrypted, used by syncs, and never shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY

from salync_core import Engine
from salync_core.errors import ConfigError
from salync_core.http import OAuthTokens
from salync_core.secrets import KEY_ENV, Secret, create_key_file
from salync_core.store.credentials import StoredTokens, load_secrets
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key file next to the configuration, as `salync init` makes it."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    return create_key_file(tmp_path / "salync.key")


async def test_a_stored_key_is_encrypted_and_used_by_the_sync(
    tmp_path: Path, keyed: Path, saleslayer: SalesLayerEmulator
) -> None:
    config = write_config(
        tmp_path, {"pim": {"plugin": "saleslayer", "base_url": saleslayer.base_url}}
    )
    async with Engine.open(config) as engine:
        await engine.set_secrets("pim", {"api_key": Secret(SL_KEY)})
        raw = engine.store.conn.execute("SELECT secrets FROM connections").fetchone()[0]

        (report,) = await engine.sync()

        assert SL_KEY.encode() not in raw
        assert (tmp_path / "salync.db").read_bytes().find(SL_KEY.encode()) == -1
        assert report.ok, report.problems
        assert engine.secret_names("pim") == ["api_key"]


async def test_a_missing_key_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sl_config: Callable[..., Path]
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    async with Engine.open(sl_config()) as engine:
        with pytest.raises(ConfigError, match="no secret key"):
            await engine.set_secrets("pim", {"api_key": Secret("x" * 20)})


async def test_rotated_tokens_are_stored_encrypted_and_durably(tmp_path: Path, keyed: Path) -> None:
    config = write_config(
        tmp_path, {"shop": {"plugin": "saleslayer", "base_url": "https://api.example.com"}}
    )
    async with Engine.open(config) as engine:
        tokens = StoredTokens(engine.store, engine.secret_box(), "shop", "saleslayer")
        await tokens.save(OAuthTokens(Secret("access-2" * 3), Secret("refresh-2" * 3)))

        stored = load_secrets(engine.store.conn, engine.secret_box(), "shop")

        assert stored["refresh_token"].reveal() == "refresh-2" * 3
        assert "expires_at" not in stored
        assert engine.store.conn.execute("PRAGMA synchronous").fetchone() == (1,)


def test_a_stored_rotated_token_wins_over_the_file_but_a_key_in_the_file_wins() -> None:
    from salync_saleslayer.platform import SalesLayerPlatform

    from salync_core.config import ConnectionConfig, SecretRef
    from salync_core.engine.connections import resolve_options

    config = ConnectionConfig(
        name="shop",
        plugin="saleslayer",
        base_url="https://api.example.com",
        secrets={
            "refresh_token": SecretRef("literal", literal=Secret("refresh-from-install")),
            "api_key": SecretRef("literal", literal=Secret("key-from-the-file")),
        },
    )
    stored = {"refresh_token": Secret("refresh-rotated"), "api_key": Secret("key-stored")}

    options = resolve_options(config, SalesLayerPlatform(), stored)

    assert options["refresh_token"].reveal() == "refresh-rotated"
    assert options["api_key"].reveal() == "key-from-the-file"
