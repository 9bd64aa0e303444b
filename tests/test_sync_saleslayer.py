"""Sales Layer 2.0 end to end: the emulator on loopback, the engine, a real SQLite mirror."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import live_refs, sl_write

from salync_core import Engine

pytestmark = pytest.mark.anyio


async def write(emulator: SalesLayerEmulator, method: str, path: str, body: Any = None) -> int:
    return await sl_write(emulator.base_url, method, path, body)


async def test_a_full_sync_mirrors_the_catalog(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert live_refs(engine, "product") == saleslayer.live_product_refs()
        product = engine.get("product", "PRD-000001")
        assert set(product.title) == {"en", "es", "fr"}
        assert "prod_brand" in product.attributes
        assert engine.store.journal_mode == "wal"


async def test_a_full_sync_reads_variants_inside_products(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        (report,) = await engine.sync()

        summary = saleslayer.summary()
        assert len(live_refs(engine, "variant")) == summary["variants"]["live"]
        assert report.stream("variants").skipped == "read with products"
        product_pages = math.ceil(summary["products"]["live"] / 100)
        assert saleslayer.stats.by_route["GET /rest/Catalog/Products"] == product_pages
        assert saleslayer.stats.by_route.get("GET /rest/Catalog/Variants", 0) == 0


async def test_an_incremental_sync_reads_only_what_changed(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        assert (
            await write(saleslayer, "PATCH", "/Products(3)", {"prod_title": {"en": "Renamed"}})
            == 204
        )
        saleslayer.stats.by_route.clear()

        (report,) = await engine.sync()

        assert report.ok
        assert engine.get("product", "PRD-000003").title["en"] == "Renamed"
        assert report.stream("products").applied.changed == 1
        assert report.stream("products").applied.received < 10
        changes = engine.store.conn.execute(
            "SELECT op, origin FROM changes WHERE key = 'PRD-000003' ORDER BY seq"
        ).fetchall()
        assert changes == [("upsert", "pim"), ("upsert", "pim")]


async def test_re_reading_unchanged_data_writes_no_change(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        (before,) = engine.store.conn.execute("SELECT max(seq) FROM changes").fetchone()

        (report,) = await engine.sync(full=True)

        assert report.ok
        assert report.totals().changed == 0
        assert engine.store.conn.execute("SELECT max(seq) FROM changes").fetchone() == (before,)


async def test_reconcile_tombstones_what_the_platform_deleted(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        assert await write(saleslayer, "DELETE", "/Products(5)") == 204

        await engine.sync()
        assert "PRD-000005" in live_refs(engine, "product"), "2.0 never reports deletions"
        (report,) = await engine.reconcile()

        assert report.ok
        assert "PRD-000005" not in live_refs(engine, "product")
        tombstone = engine.store.conn.execute(
            "SELECT origin FROM tombstones WHERE entity = 'product' AND key = 'PRD-000005'"
        ).fetchone()
        assert tombstone == ("pim",)
        assert {r["ref"] for r in engine.records("product", deleted=True)} >= {"PRD-000005"}


async def test_reconcile_refuses_a_mass_deletion_unless_allowed(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        for product_id in range(1, 41):
            await write(saleslayer, "DELETE", f"/Products({product_id})")

        (refused,) = await engine.sync(reconcile=True)
        assert not refused.ok
        assert "--allow-mass-delete" in str(refused.problems[0])
        assert len(live_refs(engine, "product")) == 250

        (allowed,) = await engine.sync(reconcile=True, allow_mass_delete=True)
        assert allowed.ok
        assert live_refs(engine, "product") == saleslayer.live_product_refs()


async def test_a_wrong_api_key_is_one_clear_error_and_touches_nothing(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config(api_key="wrong")) as engine:
        (report,) = await engine.sync()

        assert not report.ok
        assert len(report.problems) == 1
        message = str(report.problems[0])
        assert message.startswith("pim")
        assert "wrong" not in message
        assert engine.store.conn.execute("SELECT count(*) FROM records").fetchone() == (0,)
        assert engine.store.conn.execute("SELECT count(*) FROM cursors").fetchone() == (0,)


async def test_records_without_their_reference_go_to_dead_letters_and_the_rest_applies(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    saleslayer.corrupt("Products", 7, "prod_ref", None)
    saleslayer.corrupt("Products", 8, "prod_title", "not a map of cultures")
    async with Engine.open(sl_config()) as engine:
        (report,) = await engine.sync()

        assert not report.ok
        (problem,) = report.problems
        assert problem.connection == "pim"
        assert problem.stream == "products"
        assert "2 item(s) rejected to dead letters" in str(problem)
        assert "/rest/Catalog/Products" in problem.page
        assert len(live_refs(engine, "product")) == 248
        letters = engine.store.conn.execute(
            "SELECT reason, raw FROM dead_letters ORDER BY id"
        ).fetchall()
        assert "without its reference prod_ref" in letters[0][0]
        assert '"prod_id":7' in letters[0][1]
        assert "prod_title: expected localized text" in letters[1][0]


async def test_a_page_that_is_not_json_stops_the_stream_and_keeps_what_came_before(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config(retry_attempts=2)) as engine:
        first = await engine.sync(streams=["products"])
        assert first[0].ok
        saleslayer.faults.update({"truncate": 5, "path": "/Products"})
        await sl_write(saleslayer.base_url, "PATCH", "/Products(1)", {"prod_brand": "New"})

        (report,) = await engine.sync(streams=["products"])

        assert not report.ok
        (problem,) = report.problems
        assert problem.stream == "products"
        assert "JSON" in problem.message
        assert "/rest/Catalog/Products" in problem.page
        raw = engine.store.conn.execute(
            "SELECT raw FROM dead_letters WHERE stream = 'products'"
        ).fetchone()[0]
        assert raw.startswith('{"value":')
        assert len(live_refs(engine, "product")) == 250, "what was mirrored stays"
        assert engine.get("product", "PRD-000001").attributes["prod_brand"] != "New"
