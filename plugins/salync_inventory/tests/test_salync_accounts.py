"""One Salync emulator serving many workspaces: each key its own data, plan and limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from salync_inventory.emulator import SalyncEmulator

from salync_core import Engine
from salync_core.testing.accounts import build_accounts
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

NOON = datetime(2026, 11, 23, 12, tzinfo=UTC)
MEMORY_PER_ACCOUNT = 300 * 1024
"""Resident bytes one workspace of 10 products may add (measured: about 60 KiB)."""


@pytest.fixture
async def emulator() -> AsyncIterator[SalyncEmulator]:
    emulator = SalyncEmulator(products=8, seed=4, start=NOON, accounts=3)
    async with emulator.running():
        yield emulator


async def call(
    emulator: SalyncEmulator,
    account: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = None,
) -> tuple[int, Any]:
    """One API request with account ``account``'s key (or ``key``)."""
    key = key or emulator.account_options(account)["api_key"]
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http,
        http.request(method, emulator.base_url + path, json=body) as response,
    ):
        return response.status, await response.json()


async def admin(emulator: SalyncEmulator, route: str, body: Any, account: int) -> Any:
    url = f"{emulator.root_url}/_emulator/{route}?account={account}"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def products(emulator: SalyncEmulator, account: int) -> dict[str, str]:
    status, body = await call(emulator, account, "GET", "/products?limit=100")
    assert status == 200, body
    return {item["sku"]: item["name"] for item in body["data"]}


async def test_account_zero_is_the_one_account_emulator_and_the_others_differ(
    emulator: SalyncEmulator,
) -> None:
    alone = SalyncEmulator(products=8, seed=4, start=NOON)
    seen = [await products(emulator, account) for account in range(3)]

    assert emulator.account_options(0)["api_key"] == "sk_test_1"
    assert set(seen[0]) == {p.sku for p in alone.workspace.products.values()}
    assert seen[0] != seen[1]
    assert seen[1] != seen[2]


async def test_a_write_to_one_account_is_invisible_to_the_others(
    emulator: SalyncEmulator,
) -> None:
    with emulator.as_account(1):
        sku = next(p.sku for p in emulator.workspace.products.values() if not p.has_variants)
        before = emulator.stock_on_hand(sku)
    adjustment = {"sku": sku, "type": "manual", "direction": "increase", "quantity": 5}

    status, body = await call(emulator, 1, "POST", "/stock/adjustments", adjustment)

    assert status == 201, body
    with emulator.as_account(1):
        assert emulator.stock_on_hand(sku) == before + 5
        assert emulator.applied_writes["POST /v1/stock/adjustments"] == 1
    assert emulator.applied_writes["POST /v1/stock/adjustments"] == 0


async def test_a_key_of_no_account_gets_salyncs_401(emulator: SalyncEmulator) -> None:
    beyond = emulator.account_options(0)["api_key"] + "-acct3"  # accounts are 0, 1 and 2

    status, body = await call(emulator, 0, "GET", "/products", key=beyond)

    assert (status, body["error"]) == (401, "unauthorized")


async def test_one_accounts_spent_quota_leaves_the_others_alone(
    emulator: SalyncEmulator,
) -> None:
    await admin(emulator, "config", {"daily_limit": 0}, account=1)

    status, body = await call(emulator, 1, "GET", "/products")
    assert (status, body["error"]) == (429, "rate_limited")
    assert "Daily quota" in body["message"]
    assert (await call(emulator, 0, "GET", "/products"))[0] == 200
    assert (await call(emulator, 2, "GET", "/products"))[0] == 200
    accounts = emulator.stats_json()["accounts"]
    assert accounts["1"]["by_status"] == {"429": 1}
    assert accounts["2"]["by_status"] == {"200": 1}


async def test_each_account_has_its_own_burst_window(emulator: SalyncEmulator) -> None:
    await admin(emulator, "config", {"burst_limit": 2}, account=2)

    statuses = [(await call(emulator, 2, "GET", "/products"))[0] for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert (await call(emulator, 1, "GET", "/products"))[0] == 200


async def test_a_key_added_to_one_account_reads_that_account(emulator: SalyncEmulator) -> None:
    await admin(emulator, "keys", {"add": "sk_live_extra"}, account=2)

    status, body = await call(emulator, 0, "GET", "/products?limit=100", key="sk_live_extra")
    assert status == 200
    assert {item["sku"]: item["name"] for item in body["data"]} == await products(emulator, 2)


async def test_two_accounts_sync_into_two_mirrors(emulator: SalyncEmulator, tmp_path: Path) -> None:
    for account in (0, 2):
        directory = tmp_path / f"account-{account}"
        directory.mkdir()
        config = write_config(directory, {"inv": emulator.account_options(account)})
        async with Engine.open(config) as engine:
            (report,) = await engine.sync()
            assert report.ok, report.problems
            with emulator.as_account(account):
                expected = {p.sku for p in emulator.workspace.products.values()}
            assert {r["ref"] for r in engine.records("product")} >= expected


def test_two_hundred_accounts_fit_in_a_small_memory_budget() -> None:
    emulator = SalyncEmulator(products=10, accounts=201)

    grown = build_accounts(emulator, range(1, 201))

    assert emulator.created_accounts == list(range(201))
    assert grown < 200 * MEMORY_PER_ACCOUNT
