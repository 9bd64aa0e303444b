"""One Salla emulator serving many stores that installed the same app: each store's tokens
reach only its own data, bucket and webhook subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from salync_salla.emulator import SallaEmulator
from salync_salla.emulator.server import MERCHANT_ID

from salync_core import Engine
from salync_core.secrets import KEY_ENV, create_key_file
from salync_core.testing.accounts import build_accounts
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

MEMORY_PER_ACCOUNT = 300 * 1024
"""Resident bytes one store of 10 products may add (measured: about 40 KiB)."""


@pytest.fixture
async def salla() -> AsyncIterator[SallaEmulator]:
    emulator = SallaEmulator(products=6, seed=2, accounts=3)
    async with emulator.running():
        yield emulator


async def call(
    salla: SallaEmulator, token: str, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, salla.base_url + path, json=body) as response,
    ):
        return response.status, dict(response.headers), await response.json()


def token_of(salla: SallaEmulator, account: int) -> str:
    return salla.account_options(account)["access_token"]


async def test_each_stores_token_reads_its_own_products(salla: SallaEmulator) -> None:
    seen = []
    for account in range(3):
        status, _, body = await call(salla, token_of(salla, account), "GET", "/products")
        assert status == 200
        seen.append({p["sku"]: p["quantity"] for p in body["data"]})
        with salla.as_account(account):
            assert set(seen[-1]) == {p["sku"] for p in salla.store.products.values()}

    alone = SallaEmulator(products=6, seed=2)
    assert seen[0] == {p["sku"]: p["quantity"] for p in alone.store.products.values()}
    assert seen[0] != seen[1]


async def test_a_product_created_in_one_store_is_not_in_another(salla: SallaEmulator) -> None:
    product = {"name": "Only here", "price": 10.0, "sku": "ONLY-1", "quantity": 3}

    status, _, _ = await call(salla, token_of(salla, 1), "POST", "/products", product)

    assert status == 201
    with salla.as_account(1):
        assert salla.product_by_sku("ONLY-1")["name"] == "Only here"
    assert salla.store.find_sku("ONLY-1") is None
    with salla.as_account(2):
        assert salla.store.find_sku("ONLY-1") is None


async def test_a_token_of_no_store_gets_sallas_401_and_spends_no_bucket(
    salla: SallaEmulator,
) -> None:
    status, headers, body = await call(salla, "at_forged", "GET", "/products")

    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert "X-RateLimit-Remaining" not in headers
    assert salla.bucket.level == 0  # account 0's bucket untouched


async def test_each_store_has_its_own_bucket(salla: SallaEmulator) -> None:
    with salla.as_account(1):
        salla.bucket.level = salla.bucket.capacity  # a store whose bucket is full

    status, headers, _ = await call(salla, token_of(salla, 1), "GET", "/products")
    assert status == 429
    assert "Retry-After" in headers
    status, headers, _ = await call(salla, token_of(salla, 2), "GET", "/products")
    assert status == 200
    assert int(headers["X-RateLimit-Remaining"]) == salla.bucket.capacity - 1
    accounts = salla.stats_json()["accounts"]
    assert accounts["1"]["by_status"] == {"429": 1}
    assert accounts["2"]["by_status"] == {"200": 1}


async def test_webhook_subscriptions_belong_to_one_store(salla: SallaEmulator) -> None:
    subscription = {"event": "product.updated", "url": "http://127.0.0.1:9/hook"}

    status, _, _ = await call(
        salla, token_of(salla, 2), "POST", "/webhooks/subscribe", subscription
    )

    assert status == 200
    assert (await call(salla, token_of(salla, 2), "GET", "/webhooks"))[2]["data"]
    assert (await call(salla, token_of(salla, 0), "GET", "/webhooks"))[2]["data"] == []
    with salla.as_account(2):
        assert salla.webhooks.merchant == MERCHANT_ID + 2
        assert len(salla.webhooks.subscriptions) == 1


async def test_two_stores_sync_into_two_mirrors(
    salla: SallaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    for account in (0, 2):
        directory = tmp_path / f"store-{account}"
        directory.mkdir()
        create_key_file(directory / "salync.key")
        config = write_config(directory, {"shop": salla.account_options(account)})
        async with Engine.open(config) as engine:
            (report,) = await engine.sync("shop", ["products"])
            assert report.ok, report.problems
            with salla.as_account(account):
                expected = {p["sku"] for p in salla.store.products.values() if p["sku"]}
            assert expected <= {r["ref"] for r in engine.records("product")}


def test_two_hundred_stores_fit_in_a_small_memory_budget() -> None:
    emulator = SallaEmulator(products=10, accounts=201)

    grown = build_accounts(emulator, range(1, 201))

    assert emulator.created_accounts == list(range(201))
    assert grown < 200 * MEMORY_PER_ACCOUNT
