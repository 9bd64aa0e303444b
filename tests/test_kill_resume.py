"""A sync killed with SIGKILL mid-way resumes from its last committed page: nothing lost,
no change-log row written twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core import Engine
from salync_core.testing.config import write_config
from support import SL_KEY, count, live_refs

pytestmark = pytest.mark.anyio


def committed_products(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM records WHERE entity = 'product'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


async def test_a_killed_sync_resumes_from_its_last_committed_page(tmp_path: Path) -> None:
    emulator = SalesLayerEmulator(products=3000, seed=3, api_key=SL_KEY, rate_limit=False)
    async with emulator.running() as base_url:
        emulator.faults.slow_seconds = 0.05  # 30 pages take long enough to be killed mid-way
        config = write_config(tmp_path, {"pim": {"plugin": "saleslayer", "base_url": base_url, "api_key": SL_KEY}})
        db = tmp_path / "salync.db"
        sync = subprocess.Popen(
            [sys.executable, "-m", "salync_core", "sync", "--config", str(config), "--no-progress"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while committed_products(db) < 500 and time.monotonic() < deadline:
                await anyio.sleep(0.02)
            os.kill(sync.pid, signal.SIGKILL)
        finally:
            sync.wait(timeout=10)
        assert sync.returncode == -signal.SIGKILL
        applied_before_kill = committed_products(db)
        assert 500 <= applied_before_kill < 3000, "killed mid-way, after some pages committed"

        emulator.faults.slow_seconds = 0.0
        emulator.stats.by_route.clear()
        async with Engine.open(config) as engine:
            (report,) = await engine.sync()

            assert report.ok, report.problems
            assert live_refs(engine, "product") == emulator.live_product_refs()
            assert count(engine, "SELECT count(*) FROM changes WHERE entity = 'product'") == 3000
            assert count(
                engine, "SELECT count(*) FROM (SELECT key FROM changes GROUP BY entity, key HAVING count(*) > 1)"
            ) == 0
            resumed_pages = emulator.stats.by_route["GET /rest/Catalog/Products"]
            assert resumed_pages <= 30 - applied_before_kill // 100 + 1
            assert report.stream("variants").skipped == "read with products"
