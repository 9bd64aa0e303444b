"""Mapping in worker processes: the same mirror as mapping in-process, bad items still go to
dead letters, a dead worker is a clear problem (never a hang), a cancelled sync leaves no
process behind, and one pool serves many engines (a fleet starts it once).

One pool is shared by the whole module: starting a worker imports the engine and the plugins,
which costs about a second.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, saleslayer_connection

from salync_core import Engine
from salync_core.engine.mapper_pool import MapperPool, MappingSpec
from salync_core.engine.report import RunReport
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

IN_WORKERS = {"map_processes": 1}
IN_PROCESS = {"map_processes": 0}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[MapperPool]:
    async with MapperPool(1) as shared:
        yield shared


def mirror(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """What the mirror holds of each record: fields, per-field clocks (origin, source time),
    tombstones, and what the connection holds (external id, base)."""
    read = engine.store.reader.execute
    return {
        "records": read("SELECT * FROM records ORDER BY entity, key").fetchall(),
        "id_map": read(
            "SELECT connection, entity, key, external_id, base, diverged FROM id_map"
            " ORDER BY entity, key"
        ).fetchall(),
        "changes": read("SELECT seq, entity, key, op, fields, origin FROM changes").fetchall(),
    }


def rejected(report: RunReport) -> int:
    return sum(stream.rejected for stream in report.streams)


def config_in(directory: Path, emulator: SalesLayerEmulator, sync: dict[str, Any]) -> Path:
    directory.mkdir(exist_ok=True)
    return write_config(directory, {"pim": saleslayer_connection(emulator)}, sync=sync)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_mapping_in_a_worker_builds_the_same_mirror_as_in_process(
    saleslayer: SalesLayerEmulator, tmp_path: Path, pool: MapperPool
) -> None:
    saleslayer.corrupt("Products", 7, "prod_ref", None)  # bad items go to dead letters
    saleslayer.corrupt("Products", 8, "prod_title", "not a map of cultures")
    pages_before = pool.pages

    async with Engine.open(config_in(tmp_path / "in", saleslayer, IN_PROCESS)) as engine:
        (local,) = await engine.sync()
        expected = mirror(engine)
    async with Engine.open(
        config_in(tmp_path / "out", saleslayer, IN_WORKERS), mapper_pool=pool
    ) as engine:
        (remote,) = await engine.sync()
        assert mirror(engine) == expected
        products = len(list(engine.records("product")))
        dead = engine.store.reader.execute("SELECT count(*) FROM dead_letters").fetchone()[0]

    assert pool.pages > pages_before  # the worker mapped them
    assert rejected(remote) == rejected(local) == dead == 2
    assert remote.totals().received == local.totals().received
    assert products == 248


async def test_one_pool_serves_two_engines_and_outlives_them(
    saleslayer: SalesLayerEmulator, tmp_path: Path, pool: MapperPool
) -> None:
    async with (
        Engine.open(config_in(tmp_path / "a", saleslayer, IN_WORKERS), mapper_pool=pool) as a,
        Engine.open(config_in(tmp_path / "b", saleslayer, IN_WORKERS), mapper_pool=pool) as b,
    ):
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.sync)
            tg.start_soon(b.sync)
        workers = pool.pids()
        assert len(live_products(a)) == len(live_products(b)) == 250

    assert workers
    assert pool.pids() == workers  # the same worker, still up for the next engine


def live_products(engine: Engine) -> list[dict[str, Any]]:
    return list(engine.records("product"))


async def test_a_worker_that_dies_is_a_problem_of_the_run_not_a_hang(
    tmp_path: Path, pool: MapperPool
) -> None:
    saleslayer = SalesLayerEmulator(products=1000, seed=1, api_key=SL_KEY, rate_limit=False)
    saleslayer.faults.slow_seconds = 0.05  # the kill lands while later pages are still read

    class KillTheWorker:
        def page_done(self, connection: str, stream: str, items: int, total: int | None) -> None:
            for pid in pool.pids():
                os.kill(pid, signal.SIGKILL)

    async with saleslayer.running():
        config = config_in(tmp_path, saleslayer, IN_WORKERS)
        async with Engine.open(config, mapper_pool=pool) as engine:
            (report,) = await engine.sync(streams=["products"], progress=KillTheWorker())
            said = "; ".join(str(p) for p in report.problems)
            assert "a mapping worker process died" in said, (said, report.streams)

            saleslayer.faults.slow_seconds = 0
            (report,) = await engine.sync(streams=["products"])  # a fresh worker goes on

    assert report.ok, report.problems
    assert pool.pids()


async def test_a_cancelled_sync_leaves_no_worker_process_behind(
    saleslayer: SalesLayerEmulator, tmp_path: Path
) -> None:
    saleslayer.faults.slow_seconds = 0.05
    workers: list[int] = []

    class CancelAfterFirstPage:
        def __init__(self, scope: anyio.CancelScope, engine: Engine) -> None:
            self.scope, self.engine = scope, engine

        def page_done(self, connection: str, stream: str, items: int, total: int | None) -> None:
            assert self.engine.mapper_pool is not None
            workers.extend(self.engine.mapper_pool.pids())
            self.scope.cancel()

    async with Engine.open(config_in(tmp_path, saleslayer, IN_WORKERS)) as engine:
        with anyio.move_on_after(600) as scope:
            await engine.sync(progress=CancelAfterFirstPage(scope, engine))
        assert scope.cancelled_caught

    assert workers
    assert not [pid for pid in workers if alive(pid)]


async def test_auto_maps_a_small_pass_in_process_without_starting_a_worker(
    sl_config: Callable[..., Path],
) -> None:
    async with Engine.open(sl_config(sync={"map_processes": "auto"})) as engine:
        (report,) = await engine.sync()
        pool = engine.mapper_pool

    assert report.ok
    assert pool is None or (pool.pages == 0 and pool.pids() == [])


async def test_a_platform_workers_cannot_load_maps_in_process(pool: MapperPool) -> None:
    spec = MappingSpec(
        plugin="not-installed",
        platform_type="tests:Nowhere",
        name="odd",
        base_url="http://127.0.0.1:1",
        options={},
        locale="en",
        directory=".",
        key="not-installed",
    )

    assert not await pool.wait_ready(spec)
    assert "no platform plugin named 'not-installed'" in (pool.unavailable(spec) or "")
