"""Reading Salla: pages of 60, orders with Riyadh dates in UTC, customers, a 429 burst, and a
pacer that learns Salla's leaky bucket from its headers."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from conftest import SCALE
from salync_salla.emulator import SallaEmulator
from salync_salla.platform import SallaPlatform
from test_salla_oauth import install

from salync_core import Engine
from salync_core.http import HttpClient
from salync_core.platform import Credentials
from salync_core.secrets import Secret

pytestmark = pytest.mark.anyio
PRODUCTS = "GET /admin/v2/products"


async def test_products_are_read_in_pages_of_60_and_more_is_never_granted(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    async with Engine.open(shop_config()) as engine:
        await install(engine, salla)
        (report,) = await engine.sync("shop", ["products"], push=False)
    assert report.ok, report.problems
    assert salla.stats.by_route[PRODUCTS] == math.ceil(len(salla.store.products) / 60)
    token = salla.issue_tokens()["access_token"]
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.get(salla.base_url + "/products", params={"per_page": "100"}) as response,
    ):
        body = await response.json()
    assert len(body["data"]) == 60
    assert body["pagination"]["perPage"] == 60
    assert body["pagination"]["links"]["next"].endswith("page=2")


async def test_orders_with_lines_and_customers_are_mirrored_in_utc(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    customer = next(iter(salla.store.customers.values()))
    sku = next(p["sku"] for p in salla.store.products.values() if p["sku"] and not p["skus"])
    riyadh_evening = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)  # 01:30 on the 30th in Riyadh
    placed = salla.store.place_order(customer["id"], [(sku, 2)], placed=riyadh_evening)
    async with Engine.open(shop_config()) as engine:
        await install(engine, salla)

        reports = await engine.sync("shop", ["orders", "customers"], push=False)

        assert all(r.ok for r in reports), [r.problems for r in reports]
        order = engine.get("order", str(placed["id"]))
        assert placed["date"]["date"].startswith("2026-11-30 01:30:00")
        assert order.placed_at == riyadh_evening
        assert order.status == "under_review"
        assert order.customer_ref == str(customer["id"])
        assert order.total == Decimal(str(placed["total"]["amount"]))
        lines = [r for r in engine.records("order_line") if r["order_ref"] == str(placed["id"])]
        assert [(line["sku"], line["quantity"]) for line in lines] == [(sku, 2)]
        assert len(list(engine.records("order"))) == len(salla.store.orders)
        assert len(list(engine.records("customer"))) == len(salla.store.customers)
        assert engine.get("customer", str(customer["id"])).email == customer["email"]

        salla.store.set_order_status(placed["id"], "completed", "تم التنفيذ")
        await engine.sync("shop", ["orders"], push=False)  # from the last pass's date, overlap

        assert engine.get("order", str(placed["id"])).status == "completed"


async def test_a_burst_of_429s_is_waited_out_and_nothing_is_lost(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    salla.faults.update({"rate_limited": 3, "path": "/products"})
    async with Engine.open(shop_config()) as engine:
        await install(engine, salla)

        (report,) = await engine.sync("shop", ["products"], push=False)

        assert report.ok, report.problems
        assert salla.stats.injected["rate_limited"] == 3
        assert len(list(engine.records("product"))) == len(salla.store.products)


async def test_the_pacer_learns_the_leaky_bucket_no_429s_and_no_idle_seconds(
    salla: SallaEmulator,
) -> None:
    """250 requests against a Plus bucket of 120 leaking one a second: once the burst has
    emptied it, each request goes as soon as a unit has leaked (the server shows less than one
    unit free on average: a pacer that waited for the reset would show dozens), and none is
    refused."""
    remaining: list[int] = []
    token = salla.issue_tokens()["access_token"]
    limits = SallaPlatform().limits({"plan": "plus"})
    http = HttpClient(
        connection="shop",
        base_url=salla.base_url,
        credentials=Credentials("bearer", secret=Secret(token)),
        limits=limits,
        time_scale=SCALE,
    )
    async with http:
        for _ in range(250):
            _, response = await http.get_json("customers", params={"per_page": "1"})
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert salla.stats.by_status.get(429, 0) == 0
    emptied = remaining.index(0)  # the burst used the whole bucket ...
    after = remaining[emptied:]
    assert sum(after) / len(after) < 1  # ... then requests went as units leaked, no idling


async def test_a_product_gone_from_two_full_passes_is_tombstoned(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    """Without its ``product.deleted`` webhook, a deletion is found by the full passes: the
    second pass after it tombstones it (one pass may miss a live item, see reading.py)."""
    gone = next(p for p in salla.store.products.values() if p["sku"] and not p["skus"])
    async with Engine.open(shop_config()) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)
        salla.store.delete_product(gone["id"])

        await engine.sync("shop", ["products"], push=False)
        kept_once = engine.get("product", gone["sku"]) is not None
        (second,) = await engine.sync("shop", ["products"], push=False)

        assert second.ok, second.problems
        assert kept_once
        assert engine.get("product", gone["sku"]) is None
        assert engine.get("stock_level", gone["sku"] + "@default") is None
        live = {r["ref"] for r in engine.records("product")}
        assert len(live) == len(salla.store.products)
