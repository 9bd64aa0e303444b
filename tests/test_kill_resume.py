"""A sync killed with SIGKILL mid-way resumes from its last committed page: nothing lost,
no change-log row written twice."""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, count, live_refs

from salync_core import Engine
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


def committed_products(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return int(
                conn.execute("SELECT count(*) FROM records WHERE entity = 'product'").fetchone()[0]
            )
        except sqlite3.OperationalError:
            return 0


async def test_a_killed_sync_resumes_from_its_last_committed_page(tmp_path: Path) -> None:
    emulator = SalesLayerEmulator(products=3000, seed=3, api_key=SL_KEY, rate_limit=False)
    async with emulator.running() as base_url:
        emulator.faults.slow_seconds = 0.05  # 30 pages take long enough to be killed mid-way
        config = write_config(
            tmp_path, {"pim": {"plugin": "saleslayer", "base_url": base_url, "api_key": SL_KEY}}
        )
        db = tmp_path / "salync.db"
        command = [sys.executable, "-m", "salync_core", "sync", "--config", str(config)]
        async with await anyio.open_process([*command, "--no-progress"]) as sync:
            with anyio.fail_after(30):
                while committed_products(db) < 500:  # noqa: ASYNC110 - polling another process's file
                    await anyio.sleep(0.02)
            sync.send_signal(signal.SIGKILL)
            assert await sync.wait() == -signal.SIGKILL
        applied_before_kill = committed_products(db)
        assert 500 <= applied_before_kill < 3000, "killed mid-way, after some pages committed"

        emulator.faults.slow_seconds = 0.0
        emulator.stats.by_route.clear()
        async with Engine.open(config) as engine:
            (report,) = await engine.sync()

            assert report.ok, report.problems
            assert live_refs(engine, "product") == emulator.live_product_refs()
            assert count(engine, "SELECT count(*) FROM changes WHERE entity = 'product'") == 3000
            repeated = "SELECT entity, key FROM changes GROUP BY entity, key HAVING count(*) > 1"
            assert count(engine, f"SELECT count(*) FROM ({repeated})") == 0
            resumed_pages = emulator.stats.by_route["GET /rest/Catalog/Products"]
            assert resumed_pages <= 30 - applied_before_kill // 100 + 1
            assert report.stream("variants").skipped == "read with products"
