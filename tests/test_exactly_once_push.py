"""Every planned write reaches the platform exactly once: a refused change is pushed again
when it comes back, a retried write keeps its own idempotency key, and concurrent pushes (in
one process or from two processes on one mirror) never deliver a change twice."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator
from support import INV_KEY, POLICIES, SL_KEY, Systems, connections

from salync_core import Engine
from salync_core.engine import outbox
from salync_core.errors import MirrorBusy
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


def track_sessions(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every aiohttp session opened from now on (kept alive, so a leaked one is still seen)."""
    opened: list[aiohttp.ClientSession] = []
    init = aiohttp.ClientSession.__init__

    def tracking_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", tracking_init)
    return opened


def writes(stats: Any) -> int:
    """Write requests an emulator has received (every method but GET)."""
    return sum(n for route, n in stats.by_route.items() if not route.startswith("GET "))


async def edit_products(engine: Engine, refs: list[str]) -> None:
    """A barcode for Salync and a PIM attribute for Sales Layer on each product."""
    for number, ref in enumerate(refs):
        fields = {"barcode": f"50123456789{number:02d}", "attributes": {"prod_brand": "Oak"}}
        await engine.upsert("product", ref, fields)


async def test_two_pushes_at_once_in_one_process_send_each_change_once(
    systems: Systems, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Engine.open(systems.config) as engine:
        await engine.sync()
        refs = sorted(systems.pim.live_product_refs())
        await edit_products(engine, refs)
    before = writes(systems.inventory.stats), writes(systems.pim.stats)
    systems.inventory.faults.slow_seconds = 0.05
    sessions = track_sessions(monkeypatch)

    async with Engine.open(systems.config) as engine:
        async with anyio.create_task_group() as tg:  # a fresh engine: both open connections
            tg.start_soon(engine.push)
            tg.start_soon(engine.push)

        after = writes(systems.inventory.stats), writes(systems.pim.stats)
        assert after[0] - before[0] == len(refs), "one PATCH per edited product"
        assert after[1] - before[1] == len(refs), "one PATCH per product to the PIM"
        for ref in refs:
            assert systems.salync_product(ref).barcode == engine.get("product", ref).barcode
        sent = "SELECT count(*) FROM outbox WHERE connection = 'inventory' AND attempts > 1"
        assert engine.store.conn.execute(sent).fetchone()[0] == 0
    assert len(sessions) == 2, "one HTTP session per connection"
    assert all(session.closed for session in sessions)


PUSH_SCRIPT = """
import sys, anyio
from salync_core import Engine
from salync_core.errors import MirrorBusy

async def main():
    async with Engine.open(sys.argv[1]) as engine:
        reports = await engine.push()
        print(sum(r.pushed for r in reports))

anyio.run(main)
"""


async def test_two_push_processes_on_one_mirror_send_each_change_once(
    systems: Systems,
) -> None:
    async with Engine.open(systems.config) as engine:
        await engine.sync()
        refs = sorted(systems.pim.live_product_refs())
        await edit_products(engine, refs)
    before = writes(systems.inventory.stats), writes(systems.pim.stats)
    systems.inventory.faults.slow_seconds = 0.3  # long enough for both processes to start
    outputs: list[str] = []

    async def push_in_a_process() -> None:
        command = [sys.executable, "-c", PUSH_SCRIPT, str(systems.config)]
        done = await anyio.run_process(command, check=True)
        outputs.append(done.stdout.decode().strip())

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(push_in_a_process)
            tg.start_soon(push_in_a_process)

    after = writes(systems.inventory.stats), writes(systems.pim.stats)
    assert after[0] - before[0] == len(refs), "one PATCH per edited product"
    assert after[1] - before[1] == len(refs), "one PATCH per product to the PIM"
    assert sorted(outputs) == ["0", str(2 * len(refs))], "one process sent all, the other none"


HOLD_SCRIPT = """
import sys, time
from pathlib import Path
from salync_core.store.lock import MirrorLock

lock = MirrorLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("holding", flush=True)
time.sleep(60)
"""


async def test_a_busy_mirror_is_one_line_naming_its_holder_and_a_killed_holder_frees_it(
    systems: Systems,
) -> None:
    async with Engine.open(systems.config) as engine:
        engine.lock_wait = 0
        mirror = engine.store.path
        command = [sys.executable, "-c", HOLD_SCRIPT, str(mirror)]
        async with await anyio.open_process(command) as holder:
            assert holder.stdout is not None
            assert b"holding" in await holder.stdout.receive()

            with pytest.raises(MirrorBusy) as busy:
                await engine.push()

            assert f"pid {holder.pid}" in str(busy.value)
            assert str(mirror) in str(busy.value)
            assert "\n" not in str(busy.value)
            holder.send_signal(signal.SIGKILL)  # dies holding it: the kernel lets go
            await holder.wait()

        reports = await engine.push()

        assert all(r.ok for r in reports), [r.problems for r in reports]


async def test_a_pending_write_planned_again_keeps_its_key_and_a_new_write_gets_a_new_one(
    systems: Systems,
) -> None:
    async with Engine.open(systems.config) as engine:
        await engine.sync()
        ref = sorted(systems.pim.live_product_refs())[0]
        receiver = outbox.Receiver(
            "inventory", {"product": frozenset({"barcode"})}, lambda *_: True, engine.policies
        )
        store, conn = engine.store, engine.store.conn
        pending = "SELECT id, idempotency_key, attempts FROM outbox WHERE status = 'pending'"
        await engine.upsert("product", ref, {"barcode": "5012345678900"})
        await store.run(outbox.plan, store, receiver, ["product"])
        ((row_id, key, _),) = conn.execute(pending).fetchall()
        conn.execute("UPDATE outbox SET attempts = 1 WHERE id = ?", (row_id,))  # sent, no answer

        conn.execute(  # Salync re-sent a value the mirror refused: plan for it again
            "UPDATE id_map SET diverged = 1 WHERE connection = 'inventory' AND key = ?", (ref,)
        )
        await store.run(outbox.plan, store, receiver, ["product"])

        assert conn.execute(pending).fetchall() == [(row_id, key, 1)], "the same write, kept"

        await engine.upsert("product", ref, {"barcode": "5012345678917"})
        await store.run(outbox.plan, store, receiver, ["product"])

        ((_, new_key, attempts),) = conn.execute(pending).fetchall()
        assert (new_key != key, attempts) == (True, 0), "another write: a key of its own"
        (report,) = await engine.push("inventory")
        assert report.pushed == 1
        assert systems.salync_product(ref).barcode == "5012345678917"
