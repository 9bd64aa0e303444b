"""Sales Layer 2.0 reconcile lists variant keys inside the products scan
(``$expand=Variants($select=frmt_id,frmt_ref)``): ceil(products / 100) product pages plus the
category pages, and no scan of the Variants collection."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import live_refs, sl_write

from salync_core import Engine

pytestmark = pytest.mark.anyio


async def test_one_products_scan_reconciles_products_and_their_variants(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        variant_id = saleslayer.live_ids("Variants")[0]
        assert await sl_write(saleslayer.base_url, "DELETE", f"/Variants({variant_id})") == 204
        saleslayer.stats.by_route.clear()

        (report,) = await engine.reconcile()

        assert report.ok, report.problems
        summary = saleslayer.summary()
        routes = saleslayer.stats.by_route
        assert routes["GET /rest/Catalog/Products"] == math.ceil(summary["products"]["live"] / 100)
        assert routes["GET /rest/Catalog/Categories"] == math.ceil(
            summary["categories"]["live"] / 100
        )
        assert "GET /rest/Catalog/Variants" not in routes
        assert report.stream("variants").skipped == "keys listed with another stream"
        assert live_refs(engine, "variant") == saleslayer.live_refs("Variants")
        assert report.stream("products").deleted == 1


async def test_a_variant_the_mirror_lacks_is_fetched_by_id(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        body = {"frmt_ref": "PRD-000004-NEW", "prod_id": 4}
        assert await sl_write(saleslayer.base_url, "POST", "/Variants", body) == 201

        (report,) = await engine.reconcile()

        assert report.ok, report.problems
        assert engine.get("variant", "PRD-000004-NEW") is not None
        assert report.stream("variants").missing_fetched == 1


async def test_a_product_listed_without_its_variants_leaves_the_variants_to_their_own_scan(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    """The products scan sends each page's variant keys as it goes; a product on the third page
    that comes without its ``Variants`` withdraws them all, so the variants of the pages not
    yet read are not taken for deleted, and the Variants collection is scanned instead."""
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        variant_id = saleslayer.live_ids("Variants")[0]
        assert await sl_write(saleslayer.base_url, "DELETE", f"/Variants({variant_id})") == 204
        saleslayer.unexpanded = {saleslayer.live_ids("Products")[-1]}
        saleslayer.stats.by_route.clear()

        (report,) = await engine.reconcile()

        assert report.ok, report.problems
        assert saleslayer.stats.by_route["GET /rest/Catalog/Variants"] >= 1
        assert live_refs(engine, "variant") == saleslayer.live_refs("Variants")
        assert report.stream("variants").deleted == 1
