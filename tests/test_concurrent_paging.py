"""Paging while the catalog changes: an item deleted or edited during a pass never makes the
pass skip another item (Sales Layer 2.0 and Salync, on their emulators).

The emulators' ``after_answer`` hooks change the data between two pages, exactly as another
user of the platform would while a sync pages through a listing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from salync_inventory.emulator import SalyncEmulator
from salync_inventory.emulator.catalog import archive_product, update_product
from salync_saleslayer.emulator import SalesLayerEmulator
from salync_saleslayer.platform import SalesLayerPlatform
from support import INV_KEY, SL_KEY

from salync_core import Engine
from salync_core.http import HttpClient
from salync_core.platform import ConnectionContext
from salync_core.secrets import Secret
from salync_core.testing import Emulator
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

PRODUCTS = "/rest/Catalog/Products"


def after_page(emulator: Emulator, path: str, page: int, change: Callable[[], object]) -> None:
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


async def test_a_salync_pass_skips_nothing_when_products_are_archived_or_edited_mid_pass(
    tmp_path: Path,
) -> None:
    """Salync pages by ``(updated_at, id)`` with an opaque position cursor: an archive or an
    edit moves an item *behind* the cursor, so it is read again later in the pass or by the
    next one, and nothing shifts the items still ahead."""
    salync = SalyncEmulator(products=250, seed=4, plan="pro", api_keys=(INV_KEY,), rate_limit=False)
    ws = salync.workspace
    first_page = sorted(ws.products.values(), key=lambda p: (p.updated_ms, p.id))[:100]

    def archive_and_edit() -> None:
        archive_product(ws, first_page[0].id)
        update_product(ws, first_page[1].id, {"name": "Renamed during the pass"})

    after_page(salync, "/v1/products", 1, archive_and_edit)
    async with salync.running():
        connection = {
            "plugin": "salync",
            "base_url": salync.base_url,
            "api_key": INV_KEY,
            "plan": "pro",
            "streams": ["products"],
        }
        async with Engine.open(write_config(tmp_path, {"inv": connection})) as engine:
            (first,) = await engine.sync()
            (second,) = await engine.sync()

            assert first.ok, first.problems
            assert first.stream("products").pages >= 3
            assert second.ok, second.problems
            assert ws.products[first_page[0].id].archived_ms is not None, "the hook ran"
            live = {p.sku for p in ws.products.values() if p.archived_ms is None}
            assert {r["ref"] for r in engine.records("product")} == live
            renamed = engine.get("product", first_page[1].sku)
            assert renamed.title == {"en": "Renamed during the pass"}


# The property: any deletions and edits between any pages -----------------------------------

Change = tuple[str, int]
"""``("delete" | "edit", n)``: delete or edit the n-th (modulo) live product."""
changes = st.lists(st.tuples(st.sampled_from(["delete", "edit"]), st.integers(0, 10**6)))


async def passes(ops_between_pages: list[list[Change]]) -> None:
    """A full pass of Sales Layer products with ``ops_between_pages[k]`` applied after page k,
    then an incremental pass with nothing changing."""
    emulator = SalesLayerEmulator(products=250, seed=9, api_key=SL_KEY, rate_limit=False)
    platform = SalesLayerPlatform()
    products = next(s for s in platform.streams if s.name == "products")
    at_start = set(emulator.live_ids("Products"))
    deleted: set[int] = set()
    read: dict[int, str] = {}  # id -> prod_modify last read
    async with emulator.running():
        options = {"api_key": Secret(SL_KEY)}
        http = HttpClient(
            connection="pim", base_url=emulator.base_url, credentials=platform.credentials(options)
        )
        ctx = ConnectionContext(name="pim", base_url=emulator.base_url, options={}, http=http)
        async with http:
            cursor = None
            page_number = 0
            async for page in platform.fetch(ctx, products, cursor):
                read.update({item["prod_id"]: item["prod_modify"] for item in page.items})
                cursor = page.cursor
                ops = ops_between_pages[page_number] if page_number < len(ops_between_pages) else []
                for kind, n in ops:
                    live = emulator.live_ids("Products")
                    target = live[n % len(live)]
                    if kind == "delete":
                        emulator.delete("Products", target)
                        deleted.add(target)
                    else:
                        emulator.edit("Products", target, {"prod_brand": f"edit {n}"})
                page_number += 1

            never_deleted = at_start - deleted
            assert never_deleted <= set(read), sorted(never_deleted - set(read))

            async for page in platform.fetch(ctx, products, cursor):
                read.update({item["prod_id"]: item["prod_modify"] for item in page.items})

    current = {
        prod_id: emulator.product_by_ref(f"PRD-{prod_id:06d}")["prod_modify"]  # type: ignore[index]
        for prod_id in emulator.live_ids("Products")
    }
    assert {i: read.get(i) for i in current} == current, "the next pass reads every edit"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(changes, min_size=1, max_size=3))
def test_no_deletion_or_edit_between_pages_makes_a_pass_skip_an_item(
    ops_between_pages: list[list[Change]],
) -> None:
    anyio.run(passes, ops_between_pages, backend="asyncio")


@pytest.mark.parametrize(
    ("stored_next", "first_id"),
    [("100", 101), ("https://old.example/Products?$skip=100", 1)],
    ids=["last-id", "a-nextlink-from-an-older-version-starts-the-pass-again"],
)
async def test_a_stopped_sales_layer_pass_resumes_after_its_last_id(
    stored_next: str, first_id: int
) -> None:
    emulator = SalesLayerEmulator(products=250, seed=9, api_key=SL_KEY, rate_limit=False)
    platform = SalesLayerPlatform()
    products = next(s for s in platform.streams if s.name == "products")
    cursor = {"since": None, "pass_start": "2026-01-01T00:00:00Z", "next": stored_next}
    async with emulator.running():
        http = HttpClient(
            connection="pim",
            base_url=emulator.base_url,
            credentials=platform.credentials({"api_key": Secret(SL_KEY)}),
        )
        ctx = ConnectionContext(name="pim", base_url=emulator.base_url, options={}, http=http)
        async with http:
            pages = [page async for page in platform.fetch(ctx, products, cursor)]

    ids = [item["prod_id"] for page in pages for item in page.items]
    assert ids == list(range(first_id, 251))
    assert pages[-1].complete
    assert pages[-1].cursor == {"since": "2026-01-01T00:00:00Z", "pass_start": None, "next": None}
