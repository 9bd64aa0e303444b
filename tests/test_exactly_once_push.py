"""Every planned write reaches the platform exactly once: a refused change is pushed again
when it comes back, a retried write keeps its own idempotency key, and concurrent pushes (in
one process or from two processes on one mirror) never deliver a change twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator
from support import INV_KEY, POLICIES, SL_KEY, Systems, connections

from salync_core import Engine
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


@pytest.fixture
async def systems(tmp_path: Path) -> AsyncIterator[Systems]:
    """A 4-product PIM that owns titles, an empty Salync workspace that takes pushes."""
    pim = SalesLayerEmulator(products=4, seed=5, api_key=SL_KEY, rate_limit=False)
    inventory = SalyncEmulator(
        products=0, seed=5, plan="pro", api_keys=(INV_KEY,), rate_limit=False
    )
    async with pim.running(), inventory.running():
        config = write_config(tmp_path, connections(pim, inventory), policies=POLICIES)
        yield Systems(pim, inventory, config)


def pushed_to(reports: list[Any], connection: str) -> int:
    return sum(r.pushed for r in reports if r.kind == "push" and r.connection == connection)


async def test_the_owners_title_is_restored_every_time_salync_renames_it(
    systems: Systems,
) -> None:
    async with Engine.open(systems.config) as engine:
        await engine.sync()
        ref = sorted(systems.pim.live_product_refs())[0]
        owners_title = engine.get("product", ref).title["en"]
        product = systems.salync_product(ref)

        for attempt in ("Renamed in the warehouse", "Renamed in the warehouse again"):
            await systems.salync("PATCH", f"/products/{product.id}", {"name": attempt})
            reports = await engine.sync()

            assert all(r.ok for r in reports), [r.problems for r in reports]
            assert pushed_to(reports, "inventory") == 1, attempt
            assert systems.salync_product(ref).name == owners_title, attempt
            assert engine.get("product", ref).title["en"] == owners_title

        settled = await engine.sync()

        assert pushed_to(settled, "inventory") == 0
        keys = "SELECT count(DISTINCT idempotency_key) FROM outbox WHERE key = ?"
        rows = "SELECT count(*) FROM outbox WHERE key = ? AND connection = 'inventory'"
        conn = engine.store.conn
        assert conn.execute(rows, (ref,)).fetchone()[0] == 3  # created, then restored twice
        assert conn.execute(keys, (ref,)).fetchone()[0] == 3, "each plan has its own key"
