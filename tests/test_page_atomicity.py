"""One transaction per page: a page, its change-log rows and the stream's cursor commit together
or not at all. A failure injected half-way through a page (a trigger in the mirror raising, as a
full disk would) leaves neither half the page nor its cursor behind, and the next sync applies
that page exactly once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import count, live_refs

from salync_core import Engine

pytestmark = pytest.mark.anyio

PRODUCTS = "SELECT count(*) FROM records WHERE entity = 'product'"
PRODUCT_CHANGES = "SELECT count(*) FROM changes WHERE entity = 'product'"
REPEATED = (
    "SELECT count(*) FROM (SELECT entity, key FROM changes GROUP BY entity, key"
    " HAVING count(*) > 1)"
)

FAULTS = {
    "half-way-through-the-page": (
        "CREATE TRIGGER injected_fault BEFORE INSERT ON changes"
        " WHEN NEW.entity = 'product'"
        " AND (SELECT count(*) FROM changes WHERE entity = 'product') = 150"
        " BEGIN SELECT RAISE(ABORT, 'injected: disk full half-way through page 2'); END"
    ),
    "saving-the-cursor": (
        "CREATE TRIGGER injected_fault BEFORE UPDATE ON cursors WHEN NEW.stream = 'products'"
        " BEGIN SELECT RAISE(ABORT, 'injected: disk full saving the cursor of page 2'); END"
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_page_that_fails_half_way_leaves_nothing_and_is_applied_once_later(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path], fault: str
) -> None:
    async with Engine.open(sl_config()) as engine:
        engine.store.conn.execute(FAULTS[fault])

        (failed,) = await engine.sync()

        assert not failed.ok
        assert "injected" in str(failed.problems)
        assert failed.stream("products").pages == 1
        assert count(engine, PRODUCTS) == 100, "page 1 committed, nothing of page 2"
        assert count(engine, PRODUCT_CHANGES) == 100

        engine.store.conn.execute("DROP TRIGGER injected_fault")
        saleslayer.stats.by_route.clear()
        (resumed,) = await engine.sync()

        assert resumed.ok, resumed.problems
        assert saleslayer.stats.by_route["GET /rest/Catalog/Products"] == 2, "pages 2 and 3"
        assert live_refs(engine, "product") == saleslayer.live_product_refs()
        assert count(engine, PRODUCT_CHANGES) == 250
        assert count(engine, REPEATED) == 0, "no change logged twice"
