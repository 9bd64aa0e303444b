"""Products written to Salla: created (its id learnt), updated, deleted; read back as no change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from salync_salla.emulator import SallaEmulator
from test_salla_oauth import install

from salync_core import Engine

pytestmark = pytest.mark.anyio


async def test_products_are_created_updated_and_deleted_on_salla(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    existing = next(p for p in salla.store.products.values() if p["sku"] and not p["skus"])
    gone = next(p for p in salla.store.products.values() if p["sku"] and p is not existing)
    async with Engine.open(shop_config(push=["product"])) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)
        await engine.upsert("product", "MUG-1", {"title": {"en": "Mug"}, "sell_price": "12.50"})
        await engine.upsert("product", existing["sku"], {"title": {"en": "Renamed"}})
        await engine.delete("product", gone["sku"])

        (report,) = await engine.push("shop")

        assert report.pushed == 3, report.problems
        created = salla.product_by_sku("MUG-1")
        assert (created["name"], created["price"]["amount"]) == ("Mug", 12.5)
        assert salla.store.products[existing["id"]]["name"] == "Renamed"
        assert gone["id"] not in salla.store.products
        (again,) = await engine.sync("shop", ["products"], push=False)
        assert again.ok, again.problems
        assert engine.get("product", "MUG-1").title == {"en": "Mug"}
        assert engine.conflicts() == []
        (nothing,) = await engine.push("shop")
        assert nothing.pushed == 0


async def test_a_product_without_a_sku_is_kept_in_salla_s_namespace(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    skuless = next(p for p in salla.store.products.values() if not p["sku"])
    async with Engine.open(shop_config()) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)

        product = engine.get("product", f"salla:{skuless['id']}")

        assert product is not None
        assert product.sell_price is not None
        assert engine.get("stock_level", f"salla:{skuless['id']}@default") is None
