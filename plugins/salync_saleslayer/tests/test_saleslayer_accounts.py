"""One Sales Layer 2.0 emulator serving many accounts: each key its own catalog and limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from salync_saleslayer.emulator import RATE_LIMIT, SalesLayerEmulator

from salync_core import Engine
from salync_core.testing.accounts import build_accounts
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

MEMORY_PER_ACCOUNT = 300 * 1024
"""Resident bytes one account of 10 products may add (measured: about 50 KiB)."""


@pytest.fixture
async def emulator() -> AsyncIterator[SalesLayerEmulator]:
    emulator = SalesLayerEmulator(products=12, seed=3, accounts=3)
    async with emulator.running():
        yield emulator


async def call(
    emulator: SalesLayerEmulator,
    account: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = None,
) -> tuple[int, Any]:
    """One API request with account ``account``'s key (or ``key``)."""
    headers = {"X-API-KEY": key or emulator.account_options(account)["api_key"]}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, emulator.base_url + path, json=body) as response,
    ):
        text = await response.read()
        return response.status, (await response.json() if text else None)


async def refs(emulator: SalesLayerEmulator, account: int) -> set[str]:
    status, body = await call(emulator, account, "GET", "/Products?$select=prod_ref&$top=100")
    assert status == 200, body
    return {item["prod_ref"] for item in body["value"]}


async def admin(emulator: SalesLayerEmulator, route: str, body: Any, account: int) -> Any:
    url = f"{emulator.root_url}/_emulator/{route}?account={account}"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_account_zero_is_the_one_account_emulator_and_the_others_differ(
    emulator: SalesLayerEmulator,
) -> None:
    alone = SalesLayerEmulator(products=12, seed=3)

    assert emulator.account_options(0)["api_key"] == "sl-test-key"
    assert emulator.live_product_refs() == alone.live_product_refs()
    assert await refs(emulator, 0) == alone.live_product_refs()
    titles = set()
    for account in range(3):
        status, body = await call(emulator, account, "GET", "/Products(1)?$select=prod_title")
        assert status == 200
        titles.add(str(body["prod_title"]))
    assert len(titles) == 3  # each account's catalog is seeded on its own


async def test_a_write_to_one_account_is_invisible_to_the_others(
    emulator: SalesLayerEmulator,
) -> None:
    status, _ = await call(emulator, 1, "POST", "/Products", {"prod_ref": "ONLY-IN-ONE"})

    assert status == 201
    assert "ONLY-IN-ONE" in await refs(emulator, 1)
    assert "ONLY-IN-ONE" not in await refs(emulator, 0)
    assert "ONLY-IN-ONE" not in await refs(emulator, 2)
    with emulator.as_account(1):
        assert emulator.product_by_ref("ONLY-IN-ONE") is not None
    assert emulator.product_by_ref("ONLY-IN-ONE") is None  # account 0 outside the block


async def test_a_key_of_no_account_gets_the_documented_401(emulator: SalesLayerEmulator) -> None:
    beyond = emulator.account_options(0)["api_key"] + "-acct3"  # accounts are 0, 1 and 2

    status, body = await call(emulator, 0, "GET", "/Products", key=beyond)

    assert status == 401
    assert body["detail"] == "A valid API key is required."
    assert "1" not in emulator.stats_json()["accounts"]


async def test_each_account_has_its_own_rate_limit(emulator: SalesLayerEmulator) -> None:
    for _ in range(RATE_LIMIT):
        assert (await call(emulator, 1, "GET", "/Products?$top=1"))[0] == 200

    assert (await call(emulator, 1, "GET", "/Products?$top=1"))[0] == 429
    assert (await call(emulator, 2, "GET", "/Products?$top=1"))[0] == 200
    stats = emulator.stats_json()
    assert stats["requests"] == RATE_LIMIT + 2
    assert stats["accounts"]["1"]["by_status"] == {"200": RATE_LIMIT, "429": 1}
    assert stats["accounts"]["2"]["requests"] == 1


async def test_admin_routes_act_on_the_account_they_name(emulator: SalesLayerEmulator) -> None:
    await admin(emulator, "faults", {"server_errors": 1}, account=2)
    await admin(emulator, "config", {"rate_limit": False}, account=1)
    touched = await admin(emulator, "touch", {"count": 1, "seed": 5}, account=1)

    assert (await call(emulator, 0, "GET", "/Products?$top=1"))[0] == 200
    assert (await call(emulator, 2, "GET", "/Products?$top=1"))[0] == 503
    assert (await call(emulator, 2, "GET", "/Products?$top=1"))[0] == 200
    assert emulator.rate_limit  # account 0's
    with emulator.as_account(1):
        assert not emulator.rate_limit
        (touched_id,) = touched["ids"]
        assert emulator.edit("Products", touched_id, {})  # still live in account 1
    assert emulator.stats_json()["accounts"]["2"]["injected"] == {"server_errors": 1}


async def test_two_accounts_sync_into_two_mirrors(
    emulator: SalesLayerEmulator, tmp_path: Path
) -> None:
    mirrors = []
    for account in (0, 1):
        directory = tmp_path / f"account-{account}"
        directory.mkdir()
        config = write_config(directory, {"pim": emulator.account_options(account)})
        async with Engine.open(config) as engine:
            (report,) = await engine.sync()
            assert report.ok, report.problems
            mirrors.append({r["ref"]: r["title"]["en"] for r in engine.records("product")})

    for account, mirror in enumerate(mirrors):
        with emulator.as_account(account):
            assert mirror == {
                ref: emulator.product_by_ref(ref)["prod_title"]["en"]  # type: ignore[index]
                for ref in emulator.live_product_refs()
            }
    assert mirrors[0] != mirrors[1]


def test_two_hundred_accounts_fit_in_a_small_memory_budget() -> None:
    emulator = SalesLayerEmulator(products=10, accounts=201)

    grown = build_accounts(emulator, range(1, 201))

    assert emulator.created_accounts == list(range(201))
    assert grown < 200 * MEMORY_PER_ACCOUNT
