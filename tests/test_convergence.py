"""Properties of two-way sync over random interleavings (hypothesis), on the real emulators.

Edits land on every system (the PIM, Salync, the host app) between syncs and pushes run in a
random order, some pushes cut short by a crash after the platform applied a write but before
the mirror recorded it. After the systems settle:

* every system and the mirror agree (convergence), and syncing again sends nothing;
  (``CONVERGENCE_EXAMPLES=300`` explores fresh random cases; CI runs a fixed 60)
* a field owned by one system holds that system's value everywhere (title: the PIM's; cost:
  Salync's), whatever the others wrote;
* nothing was applied twice: every product was created in Salync exactly once, and no outbox
  entry is left pending (a push Salync refused, say a product with no name yet because the
  PIM's title had not arrived, is a dead letter and the next plan supersedes it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator
from support import INV_KEY, POLICIES, SL_KEY, Systems, connections, sl_write

from salync_core import Engine
from salync_core.engine import outbox
from salync_core.testing.config import write_config

PRODUCTS = 3
CONNECTIONS = ("pim", "inventory")


class Crash(Exception):
    """The process dies after the platform applied a write, before the mirror recorded it."""


Op = tuple[Any, ...]
item = st.integers(0, PRODUCTS - 1)
which = st.sampled_from(CONNECTIONS)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("pim_title"), item, st.sampled_from(["Alpha", "Bravo", "Charlie"])),
        st.tuples(st.just("inventory_title"), item, st.sampled_from(["Delta", "Echo"])),
        st.tuples(st.just("inventory_cost"), item, st.sampled_from(["1.50", "2.25", "9.99"])),
        st.tuples(st.just("inventory_barcode"), item, st.sampled_from(["111", "222"])),
        st.tuples(st.just("local_barcode"), item, st.sampled_from(["333", "444"])),
        st.tuples(st.just("sync"), which),
        st.tuples(st.just("push"), which),
        st.tuples(st.just("crash_push"), which, st.integers(1, 3)),
    ),
    max_size=10,
)


class World:
    """The systems, and an engine that can be killed and reopened like a process."""

    def __init__(self, systems: Systems) -> None:
        self.systems = systems
        self.refs = sorted(systems.pim.live_product_refs())
        self.engine: Engine | None = None
        self._context: Any = None

    async def open(self) -> Engine:
        self._context = Engine.open(self.systems.config)
        self.engine = await self._context.__aenter__()
        return self.engine

    async def close(self) -> None:
        await self._context.__aexit__(None, None, None)

    async def restart(self) -> None:
        await self.close()
        await self.open()

    async def run(self, op: Op) -> None:
        kind, *args = op
        await getattr(self, kind)(*args)

    async def pim_title(self, index: int, text: str) -> None:
        product = self.systems.pim.product_by_ref(self.refs[index])
        assert product is not None
        body = {"prod_title": {"en": f"{text} {index}"}}
        await sl_write(self.systems.pim.base_url, "PATCH", f"/Products({product['prod_id']})", body)

    async def _salync(self, index: int, body: dict[str, Any]) -> None:
        ws = self.systems.inventory.workspace
        if self.refs[index] in ws.sku_index:  # Salync has it once a push created it
            product_id = ws.sku_index[self.refs[index]]
            await self.systems.salync("PATCH", f"/products/{product_id}", body)
            await anyio.sleep(0.002)  # distinct millisecond timestamps for last-writer-wins

    async def inventory_title(self, index: int, text: str) -> None:
        await self._salync(index, {"name": f"{text} {index}"})

    async def inventory_cost(self, index: int, price: str) -> None:
        await self._salync(index, {"cost_price": price})

    async def inventory_barcode(self, index: int, code: str) -> None:
        await self._salync(index, {"barcode": code})

    async def local_barcode(self, index: int, code: str) -> None:
        assert self.engine is not None
        await self.engine.upsert("product", self.refs[index], {"barcode": code})
        await anyio.sleep(0.002)

    async def sync(self, name: str) -> None:
        assert self.engine is not None
        await self.engine.sync(name)

    async def push(self, name: str) -> None:
        assert self.engine is not None
        await self.engine.push(name)

    async def crash_push(self, name: str, after: int) -> None:
        """Push, dying right after the ``after``-th write was applied but not recorded."""
        assert self.engine is not None
        record = outbox.record_results
        calls = 0

        def dying(*args: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == after:
                raise Crash
            return record(*args)

        outbox.record_results = dying  # type: ignore[assignment]
        try:
            await self.engine.push(name)
        finally:
            outbox.record_results = record  # type: ignore[assignment]
        await self.restart()


async def scenario(ops: Sequence[Op], directory: Path) -> None:
    pim = SalesLayerEmulator(products=PRODUCTS, seed=5, api_key=SL_KEY, rate_limit=False)
    inventory = SalyncEmulator(
        products=0, seed=5, plan="pro", api_keys=(INV_KEY,), rate_limit=False
    )
    async with pim.running(), inventory.running():
        config = write_config(directory, connections(pim, inventory), policies=POLICIES)
        world = World(Systems(pim, inventory, config))
        engine = await world.open()
        try:
            for op in ops:
                await world.run(op)
            for _ in range(3):  # settle: every system hears about every change
                await world.engine.sync()  # type: ignore[union-attr]
            final = await world.engine.sync()  # type: ignore[union-attr]
            check(world, final)
        finally:
            await world.close()
    del engine


def check(world: World, final: list[Any]) -> None:
    engine, pim, inventory = world.engine, world.systems.pim, world.systems.inventory
    assert engine is not None
    assert all(r.ok for r in final), [str(p) for r in final for p in r.problems]
    assert sum(r.pushed for r in final) == 0, "settled: syncing again sends nothing"
    for ref in world.refs:
        mirrored = engine.get("product", ref)
        in_pim = pim.product_by_ref(ref)
        in_salync = world.systems.salync_product(ref)
        assert in_pim is not None
        assert mirrored.title == in_pim["prod_title"], "title is the PIM's in the mirror"
        assert in_salync.name == in_pim["prod_title"]["en"], "and in Salync"
        assert mirrored.cost_price == in_salync.cost_price, "cost is Salync's"
        assert mirrored.barcode == in_salync.barcode, "last-writer-wins fields converge"
    assert inventory.applied_writes["POST /v1/products"] == PRODUCTS, "each created once"
    rows = engine.store.conn.execute(
        "SELECT status, count(*) FROM outbox GROUP BY status"
    ).fetchall()
    assert "pending" not in dict(rows), rows  # acknowledged (or refused for good), none left


@settings(
    max_examples=int(os.environ.get("CONVERGENCE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize="CONVERGENCE_EXAMPLES" not in os.environ,  # CI runs the same 60 every time
)
@given(operations)
def test_random_interleavings_converge_to_what_the_policies_define(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        anyio.run(scenario, ops, Path(directory), backend="asyncio")


def test_a_crash_between_apply_and_record_pushes_nothing_twice() -> None:
    """The interleaving that matters most, always run: Salync creates every product while
    the mirror dies before recording the first one, then the restarted engine pushes again."""
    ops: list[Op] = [("sync", "pim"), ("crash_push", "inventory", 1), ("push", "inventory")]
    with tempfile.TemporaryDirectory() as directory:
        anyio.run(scenario, ops, Path(directory), backend="asyncio")


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
