"""A host app that cancels a sync (a timeout, a shutdown) gets a consistent mirror and a run
recorded as ``cancelled``; the next sync goes on from the last committed page."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import count, live_refs

from salync_core import Engine
from salync_core.store import Store

pytestmark = pytest.mark.anyio


class CancelAfterFirstPage:
    """Progress that cancels the host's scope once a page is committed (no timing involved)."""

    def __init__(self, scope: anyio.CancelScope) -> None:
        self.scope = scope
        self.pages = 0

    def page_done(self, connection: str, stream: str, items: int, total: int | None) -> None:
        self.pages += 1
        self.scope.cancel()


async def test_move_on_after_around_sync_records_the_run_cancelled(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    saleslayer.faults.slow_seconds = 0.05  # so the cancel lands while a request is in flight
    config = sl_config()

    async with Engine.open(config) as engine:
        with anyio.move_on_after(600) as scope:
            await engine.sync(progress=CancelAfterFirstPage(scope))
        assert scope.cancelled_caught

        runs = engine.store.conn.execute(
            "SELECT status, finished_at FROM runs ORDER BY id"
        ).fetchall()
        assert [status for status, _ in runs] == ["cancelled"]
        assert runs[0][1] is not None
        assert count(engine, "SELECT count(*) FROM cursors") == 1  # the committed page's
        assert count(engine, "SELECT count(*) FROM records") >= 1

        saleslayer.faults.slow_seconds = 0
        reports = await engine.sync()

    assert [r.status for r in reports] == ["ok"]
    async with Engine.open(config) as engine:
        assert len(live_refs(engine, "product")) == 250


async def test_closing_the_store_waits_for_the_call_in_its_worker_thread(tmp_path: Path) -> None:
    """Closing the connection under a running statement crashed the process (Ctrl-C while a
    page was being written): close() now waits for the worker's call to end."""
    store = Store(tmp_path / "salync.db")
    busy = threading.Event()
    results: list[Any] = []

    def page_write() -> None:
        busy.set()
        time.sleep(0.2)  # still writing when the main thread closes the store
        results.append(store.conn.execute("SELECT count(*) FROM records").fetchone())

    async with anyio.create_task_group() as tg:
        tg.start_soon(store.run, page_write)
        await anyio.to_thread.run_sync(busy.wait)
        store.close()

    assert results == [(0,)]
