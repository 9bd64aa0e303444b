"""Paging while the catalog changes: an item deleted or edited during a pass never makes the
pass skip another item (Sales Layer 2.0 and Salync, on their emulators).

The emulators' ``after_answer`` hooks change the data between two pages, exactly as another
user of the platform would while a sync pages through a listing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core import Engine

pytestmark = pytest.mark.anyio

PRODUCTS = "/rest/Catalog/Products"


def after_page(
    emulator: SalesLayerEmulator, path: str, page: int, change: Callable[[], object]
) -> None:
    """Run ``change`` once, right after the ``page``-th listing of ``path`` is answered."""
    seen = 0

    def hook(request: web.Request, response: web.StreamResponse) -> None:
        nonlocal seen
        if request.method == "GET" and request.path == path and response.status == 200:
            seen += 1
            if seen == page:
                change()

    emulator.after_answer.append(hook)


def titles(engine: Engine) -> dict[str, str]:
    return {r["ref"]: r["title"]["en"] for r in engine.records("product")}


def edit_every_product(emulator: SalesLayerEmulator) -> dict[str, str]:
    """Give every live product a new English title; returns ref -> new title."""
    edited = {}
    for prod_id in emulator.live_ids("Products"):
        title = f"Edited {prod_id}"
        emulator.edit("Products", prod_id, {"prod_title": {"en": title}})
        edited[f"PRD-{prod_id:06d}"] = title
    return edited


async def test_an_incremental_pass_reads_every_edited_item_when_one_is_deleted_mid_pass(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        edited = edit_every_product(saleslayer)  # 250 changes: a pass of 3 pages
        after_page(saleslayer, PRODUCTS, 1, lambda: saleslayer.delete("Products", 1))

        (report,) = await engine.sync()

        assert report.ok, report.problems
        edited.pop("PRD-000001")
        mirrored = titles(engine)
        missed = sorted(ref for ref, title in edited.items() if mirrored[ref] != title)
        assert missed == []


async def test_the_next_pass_still_reads_an_edit_made_while_a_pass_runs(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        edited = edit_every_product(saleslayer)
        renamed = {"prod_title": {"en": "Renamed during the pass"}}
        after_page(saleslayer, PRODUCTS, 1, lambda: saleslayer.edit("Products", 7, renamed))

        await engine.sync()
        await engine.sync()

        edited["PRD-000007"] = "Renamed during the pass"
        assert titles(engine) == edited


async def test_a_full_pass_reads_every_item_when_items_are_deleted_mid_pass(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    def delete_a_few() -> None:
        for prod_id in (2, 3, 150):
            saleslayer.delete("Products", prod_id)

    after_page(saleslayer, PRODUCTS, 1, delete_a_few)
    async with Engine.open(sl_config()) as engine:
        (report,) = await engine.sync()

        assert report.ok, report.problems
        survivors = saleslayer.live_product_refs()
        assert survivors <= set(titles(engine)), sorted(survivors - set(titles(engine)))
        variants = {r["ref"] for r in engine.records("variant")}
        assert saleslayer.live_refs("Variants") <= variants


async def test_a_reconcile_scan_keeps_every_live_item_when_one_is_deleted_mid_scan(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        after_page(saleslayer, PRODUCTS, 1, lambda: saleslayer.delete("Products", 10))

        (report,) = await engine.reconcile(streams=["products"])

        assert report.ok, report.problems
        mirrored = {r["ref"] for r in engine.records("product")}
        assert saleslayer.live_product_refs() <= mirrored, "a live product was tombstoned"
        assert mirrored - saleslayer.live_product_refs() == {"PRD-000010"}, "read before it went"
