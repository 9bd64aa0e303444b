"""Pushes go out concurrently, within the connection's limits, and each change still reaches
the platform exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import saleslayer_connection

from salync_core import Engine
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
