"""Salla OAuth on the emulator: refresh once on expiry or 401, single-flight within and across
clients sharing a mirror, crash-safe rotation, and "needs reconnect" when the grant is gone."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from conftest import salla_connection
from salync_salla.emulator import SallaEmulator

from salync_core import Engine
from salync_core.cli import main
from salync_core.errors import NeedsReconnect
from salync_core.http import HttpClient
from salync_core.secrets import Secret
from salync_core.store.credentials import NEEDS_RECONNECT, SPENDING, StoredTokens, load_secrets
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio
SALYNC = [sys.executable, "-m", "salync_core"]


def status(config: Path) -> str:
    """`salync status` in this process (it reads the mirror only); the logger is put back."""
    logger = logging.getLogger("salync")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        result = CliRunner().invoke(main, ["status", "--config", str(config)])
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    assert result.exit_code == 0, result.output
    return result.output


async def salync(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The command line in its own process (the emulator keeps serving meanwhile)."""
    with anyio.fail_after(120):
        return await anyio.run_process([*SALYNC, *args], check=False)


async def install(engine: Engine, salla: SallaEmulator) -> dict[str, Any]:
    tokens = salla.issue_tokens()
    await engine.set_secrets(
        "shop",
        {
            "access_token": Secret(tokens["access_token"]),
            "refresh_token": Secret(tokens["refresh_token"]),
        },
    )
    return tokens


def stored(engine: Engine) -> dict[str, str]:
    secrets = load_secrets(engine.store.conn, engine.secret_box(), "shop")
    return {name: secret.reveal() for name, secret in secrets.items()}


def client(engine: Engine) -> HttpClient:
    """A second client on the same mirror, as another process would open it."""
    live_options = engine.config.connection("shop")
    from salync_core.engine.connections import open_connection

    live = open_connection(
        live_options,
        load_secrets(engine.store.conn, engine.secret_box(), "shop"),
        0,
        lambda: StoredTokens(engine.store, engine.secret_box(), "shop", "salla"),
    )
    return live.http


async def test_an_expired_access_token_is_refreshed_once_and_the_rotation_stored(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    async with Engine.open(shop_config()) as engine:
        first = await install(engine, salla)
        salla.accounts.expire_access_tokens()

        (report,) = await engine.sync("shop", ["customers"])

        assert report.ok, report.problems
        assert salla.accounts.refreshes == 1
        now = stored(engine)
        assert now["refresh_token"] != first["refresh_token"]
        assert salla.accounts.access_ok(now["access_token"])
        assert SPENDING not in now


async def test_two_concurrent_refreshes_on_one_mirror_spend_the_token_once(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    async with Engine.open(shop_config()) as engine:
        await install(engine, salla)
        salla.accounts.expire_access_tokens()
        one, two = client(engine), client(engine)
        results: list[Any] = []

        async def read(http: HttpClient) -> None:
            data, _ = await http.get_json("customers")
            results.append(data)

        async with one, two, anyio.create_task_group() as tg:
            for http in (one, two, one, two):
                tg.start_soon(read, http)

        assert len(results) == 4
        assert salla.accounts.refreshes == 1
        assert salla.accounts.replays == 0


async def test_a_crash_between_receiving_and_storing_a_rotated_token_never_replays_it(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    """The process dies after Salla rotated the token and before the answer was committed:
    the spent token is still the stored one, but the durable "spending" record written before
    the request says so, and the next process does not send it again."""

    class DiesBeforeSaving(StoredTokens):
        async def save(self, tokens: Any) -> None:
            raise KeyboardInterrupt  # the process is killed here

    async with Engine.open(shop_config()) as engine:
        await install(engine, salla)
        salla.accounts.expire_access_tokens()
        doomed = client(engine)
        doomed._auth.store = DiesBeforeSaving(  # type: ignore[attr-defined]
            engine.store, engine.secret_box(), "shop", "salla"
        )
        with pytest.raises(KeyboardInterrupt):
            async with doomed:
                await doomed.get_json("customers")
        assert salla.accounts.refreshes == 1

        (report,) = await engine.sync("shop", ["customers"])

        assert not report.ok
        assert "run `salync connect shop`" in str(report.problems[0])
        assert salla.accounts.replays == 0  # never sent again: the grant is not revoked
        assert NEEDS_RECONNECT in stored(engine)


async def test_a_replayed_refresh_token_means_reconnect_and_stops_only_that_connection(
    tmp_path: Path, keyed: Path, salla: SallaEmulator
) -> None:
    other = salla.issue_tokens()  # a second store's grant on the same app (its own family)
    config = write_config(
        tmp_path, {"shop": salla_connection(salla), "outlet": salla_connection(salla)}
    )
    async with Engine.open(config) as engine:
        first = await install(engine, salla)
        await engine.set_secrets("outlet", {"refresh_token": Secret(other["refresh_token"])})
        salla.accounts.expire_access_tokens()
        await engine.sync("shop", ["customers"])  # spends the first refresh token
        salla.accounts.expire_access_tokens()
        await engine.set_secrets("shop", {"refresh_token": Secret(first["refresh_token"])})
        await engine.aclose()  # a new process starts from what is stored

        report, outlet = await engine.sync(["shop", "outlet"], ["customers"])

        assert outlet.ok, outlet.problems  # only the revoked connection stops
        assert salla.accounts.replays == 1
        assert [p.fatal for p in report.problems] == [True]
        assert str(report.problems[0]).count("\n") == 0
        assert "needs reconnecting: run `salync connect shop`" in str(report.problems[0])
        assert NEEDS_RECONNECT in stored(engine)
        with pytest.raises(NeedsReconnect):
            async with client(engine) as http:
                await http.get_json("customers")
    refused = salla.accounts.refreshes + salla.accounts.replays

    synced = await salync("sync", "shop", "--config", str(config))
    shown = status(config)

    assert synced.returncode != 0
    assert synced.returncode != 0
    said = [line for line in synced.stdout.decode().splitlines() if "salync connect" in line]
    assert said == [
        "problem: shop/products: the platform refused the refresh token; the connection"
        " needs reconnecting: run `salync connect shop`"
    ]
    assert "shop: needs reconnecting: run `salync connect shop`" in shown
    assert salla.accounts.refreshes + salla.accounts.replays == refused  # nothing sent again


async def test_a_headless_host_needs_only_the_refresh_token(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    """`salync secrets set shop refresh_token --from-env VAR`: the first request refreshes."""
    async with Engine.open(shop_config()) as engine:
        tokens = salla.issue_tokens()
        await engine.set_secrets("shop", {"refresh_token": Secret(tokens["refresh_token"])})

        (report,) = await engine.sync("shop", ["customers"])

        assert report.ok, report.problems
        assert salla.accounts.refreshes == 1
        assert salla.accounts.access_ok(stored(engine)["access_token"])
