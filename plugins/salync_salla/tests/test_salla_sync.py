"""Salla end to end: the emulator on loopback, the engine, a real SQLite mirror."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from salync_salla.emulator import SallaEmulator

from salync_core import Engine
from salync_core.secrets import Secret

pytestmark = pytest.mark.anyio


async def installed(engine: Engine, salla: SallaEmulator) -> None:
    """Store the tokens the merchant's install gave (what `salync connect` does)."""
    tokens = salla.issue_tokens()
    await engine.set_secrets(
        "shop",
        {
            "access_token": Secret(tokens["access_token"]),
            "refresh_token": Secret(tokens["refresh_token"]),
        },
    )


async def test_products_with_options_and_skus_are_mirrored(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    async with Engine.open(shop_config()) as engine:
        await installed(engine, salla)

        (report,) = await engine.sync("shop", ["products"])

        assert report.ok, report.problems
        products = {r["ref"]: r for r in engine.records("product")}
        assert len(products) == len(salla.store.products)
        with_options = next(p for p in salla.store.products.values() if p["skus"])
        variants = {r["ref"]: r for r in engine.records("variant")}
        first = with_options["skus"][0]
        assert variants[first["sku"]]["product_ref"] == with_options["sku"]
        assert set(variants[first["sku"]]["options"]) == {"اللون", "المقاس"}
        stock = {r["ref"]: r["on_hand"] for r in engine.records("stock_level")}
        assert stock[first["sku"] + "@default"] == first["stock_quantity"]
        skuless = next(p for p in salla.store.products.values() if not p["sku"])
        assert f"salla:{skuless['id']}" in products
        assert salla.stats.by_status.get(429, 0) == 0
