"""Pushes go out concurrently, within the connection's limits, and each change still reaches
the platform exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator
from support import saleslayer_connection

from salync_core import Engine
from salync_core.engine import outbox
from salync_core.engine.push import PUSH_CONCURRENCY
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio
PATCH = "PATCH /rest/Catalog/Products({id})"


async def test_pushes_overlap_and_each_change_is_sent_once(
    tmp_path: Path, saleslayer: SalesLayerEmulator
) -> None:
    connection = saleslayer_connection(saleslayer, push=["product"], rate_limits="none")
    async with Engine.open(write_config(tmp_path, {"pim": connection})) as engine:
        await engine.sync(push=False)
        refs = [
            ref
            for ref in sorted(saleslayer.live_product_refs())
            if saleslayer.product_by_ref(ref)["prod_stat"] != "R"  # type: ignore[index]
        ][:40]
        await engine.upsert_many("product", {ref: {"status": "review"} for ref in refs})
        saleslayer.faults.update({"slow_seconds": 0.02, "path": "/Products("})
        saleslayer.stats = type(saleslayer.stats)()

        (report,) = await engine.push()
        (again,) = await engine.push()

    assert report.ok, report.problems
    assert report.pushed == len(refs)
    assert saleslayer.stats.by_route[PATCH] == len(refs), "each change sent once"
    assert 1 < saleslayer.stats.max_in_flight <= PUSH_CONCURRENCY
    assert again.pushed == 0
    assert all(saleslayer.product_by_ref(ref)["prod_stat"] == "R" for ref in refs)  # type: ignore[index]


class Crash(Exception):
    """The process dying at a chosen point (the engine records it as an internal error)."""


SALYNC_KEY = "sk_test_concurrent_push_01"
ADJUSTMENTS = "POST /v1/stock/adjustments"


async def test_a_crash_mid_push_resends_only_what_was_not_recorded_and_applies_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many writes in flight, the process dies after recording the first answer: that one is
    durable and never sent again; every other write is sent again under its own idempotency
    key, so the platform applies each sale exactly once."""
    emulator = SalyncEmulator(
        products=40, seed=3, plan="pro", api_keys=(SALYNC_KEY,), rate_limit=False
    )
    async with emulator.running():
        connection = {
            "plugin": "salync",
            "base_url": emulator.base_url,
            "api_key": SALYNC_KEY,
            "rate_limits": "none",
            "push": ["stock_adjustment"],
        }
        config = write_config(tmp_path, {"inv": connection})
        ws = emulator.workspace
        skus = [p.sku for p in ws.products.values() if not p.has_variants and ws.on_hand(p.id)]
        before = {sku: emulator.stock_on_hand(sku) for sku in skus}
        sales = {
            f"till-{n}": {"sku": sku, "type": "sale", "quantity": 1, "reference": f"till {n}"}
            for n, sku in enumerate(skus)
        }
        record = outbox.record_results

        def dying(store: Any, name: str, sent: Any, payloads: Any) -> Any:
            record(store, name, sent[:1], payloads)  # the first answer's transaction commits
            raise Crash  # and the process dies before the next one

        async with Engine.open(config) as engine:
            await engine.sync(push=False)
            await engine.upsert_many("stock_adjustment", sales)
            emulator.faults.update({"slow_seconds": 0.02, "path": "/stock/adjustments"})
            monkeypatch.setattr(outbox, "record_results", dying)
            (crashed,) = await engine.push()
            acked = "SELECT count(*) FROM outbox WHERE status = 'acked'"
            recorded = engine.store.conn.execute(acked).fetchone()[0]
        monkeypatch.setattr(outbox, "record_results", record)
        first_sends = emulator.stats.by_route[ADJUSTMENTS]

        async with Engine.open(config) as engine:  # the restarted process
            (report,) = await engine.push()
            statuses = engine.store.conn.execute("SELECT DISTINCT status FROM outbox").fetchall()

    assert not crashed.ok, "the push died (the engine reports it as an internal error)"
    assert recorded == 1
    assert first_sends > recorded, "more writes were sent than recorded before the crash"
    assert report.ok, report.problems
    assert report.pushed == len(sales) - recorded
    resent = emulator.stats.by_route[ADJUSTMENTS] - first_sends
    assert resent == len(sales) - recorded, "only the unrecorded writes go again"
    assert emulator.applied_writes[ADJUSTMENTS] == len(sales), "each sale applied once"
    assert {sku: emulator.stock_on_hand(sku) for sku in skus} == {
        sku: count - 1 for sku, count in before.items()
    }
    assert statuses == [("acked",)]
