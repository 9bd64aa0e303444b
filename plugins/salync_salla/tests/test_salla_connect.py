"""`salync connect` as a merchant runs it: the authorize URL, the browser's approval, the
loopback redirect, tokens stored encrypted, and who was connected."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from salync_salla.emulator import SallaEmulator

from salync_core import Engine
from salync_core.oauth_connect import state_matches
from salync_core.store.credentials import load_secrets

pytestmark = pytest.mark.anyio
SALYNC = [sys.executable, "-m", "salync_core"]


async def test_connect_over_loopback_stores_both_tokens_and_says_who(
    tmp_path: Path, salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    config = shop_config(scopes="products.read_write orders.read")
    command = [*SALYNC, "connect", "shop", "--no-browser", "--config", str(config)]
    async with await anyio.open_process(command, cwd=tmp_path, env=dict(os.environ)) as process:
        assert process.stdout is not None
        lines = TextReceiveStream(process.stdout)
        seen = ""
        while not any(
            line.startswith("http") for line in seen.splitlines(keepends=True) if line[-1] == "\n"
        ):
            seen += await lines.receive()
        url = next(line for line in seen.splitlines() if line.startswith("http"))

        async with aiohttp.ClientSession() as browser, browser.get(url) as page:  # approves
            assert page.status == 200, await page.text()
            assert "Connected" in await page.text()
            landed = page.url
        output = seen + "".join([chunk async for chunk in lines])
        await process.wait()

    assert process.returncode == 0, output
    assert "scope=offline_access+products.read_write+orders.read" in url
    assert "-" not in landed.query["state"]  # Salla stripped the hyphens; it still matched
    assert state_matches(url.split("state=")[1], landed.query["state"])
    assert "connected shop: Test User <merchant@example.sa>, store" in output
    async with Engine.open(config) as engine:
        stored = load_secrets(engine.store.conn, engine.secret_box(), "shop")
        raw = engine.store.conn.execute("SELECT secrets FROM connections").fetchone()[0]
        assert {"access_token", "refresh_token", "expires_at"} <= set(stored)
        assert stored["refresh_token"].reveal().encode() not in raw
        assert stored["access_token"].reveal() not in output
        (report,) = await engine.sync("shop", ["customers"])
        assert report.ok, report.problems


async def test_connect_without_a_secret_key_stops_before_spending_a_code(
    tmp_path: Path, salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    config = shop_config()
    for key_file in config.parent.glob("*.key"):
        key_file.unlink()
    env = {k: v for k, v in os.environ.items() if k != "SALYNC_SECRET_KEY"}
    command = [*SALYNC, "connect", "shop", "--no-browser", "--config", str(config)]
    with anyio.fail_after(60):
        result = await anyio.run_process(command, cwd=tmp_path, env=env, check=False)
    assert result.returncode == 2
    assert b"no secret key" in result.stderr
    assert b"http" not in result.stdout  # no authorize URL: nobody approves for nothing
