"""Writing pages in a second process: the same mirror as writing them in-process, first sync and
changes after; a writer that dies is a clear problem and the next sync goes on from the last
committed page; a cancelled sync leaves no process behind; a policy hook registered only in
the host's process keeps the pages in-process, where it can decide."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from orjson import loads
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, saleslayer_connection, sl_write

from salync_core import Engine, hookimpl, plugins
from salync_core.conflicts.policies import FieldDecision
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

IN_WRITER = {"write_process": True, "map_processes": 0}
IN_PROCESS = {"write_process": False, "map_processes": 0}


def config_in(directory: Path, emulator: SalesLayerEmulator, sync: dict[str, Any]) -> Path:
    directory.mkdir(exist_ok=True)
    return write_config(
        directory,
        {"pim": saleslayer_connection(emulator)},
        sync=sync,
        policies={"default": "manual"},
    )


def mirror(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Records (fields, clocks, tombstones), what the connection holds, the change log, the
    open conflicts and the dead letters."""
    read = engine.store.reader.execute
    records = read("SELECT entity, key, fields, clocks, deleted, seq FROM records ORDER BY 1, 2")
    return {
        "records": [(*row[:3], local_edit_time_left_out(row[3]), *row[4:]) for row in records],
        "id_map": read(
            "SELECT connection, entity, key, external_id, base, diverged FROM id_map"
            " ORDER BY entity, key"
        ).fetchall(),
        "changes": read("SELECT seq, entity, key, op, fields, origin FROM changes").fetchall(),
        "conflicts": read("SELECT entity, key, field FROM conflicts ORDER BY 1, 2, 3").fetchall(),
        "dead": read(
            "SELECT connection, stream, reason FROM dead_letters ORDER BY 1, 2, 3"
        ).fetchall(),
    }


def local_edit_time_left_out(clocks: str) -> list[Any]:
    """Clocks as stored, without the time of the host's edits (made a moment apart)."""
    return [
        [origin, None if origin == "local" else ts, *rest] for origin, ts, *rest in loads(clocks)
    ]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_writer_process_builds_the_same_mirror_as_writing_in_process(
    saleslayer: SalesLayerEmulator, tmp_path: Path
) -> None:
    saleslayer.corrupt("Products", 7, "prod_ref", None)  # a dead letter
    here = config_in(tmp_path / "here", saleslayer, IN_PROCESS)
    there = config_in(tmp_path / "there", saleslayer, IN_WRITER)

    async with Engine.open(here) as in_process, Engine.open(there) as in_writer:
        for engine in (in_process, in_writer):
            await engine.sync()
            await engine.upsert("product", "PRD-000005", {"status": "draft"})
        product = saleslayer.product_by_ref("PRD-000005")
        assert product is not None
        edit = {"prod_stat": "I"}  # the same field on both sides: a conflict
        await sl_write(saleslayer.base_url, "PATCH", f"/Products({product['prod_id']})", edit)
        saleslayer.delete("Products", 9)
        for engine in (in_process, in_writer):
            await engine.sync()

        assert in_writer.page_writer is not None
        assert in_writer.page_writer.pages > 0
        assert in_process.page_writer is None
        assert mirror(in_writer) == mirror(in_process)
        assert mirror(in_process)["conflicts"]
        assert mirror(in_process)["dead"]


async def test_a_writer_that_dies_is_a_problem_and_the_next_sync_goes_on(
    tmp_path: Path,
) -> None:
    saleslayer = SalesLayerEmulator(products=1000, seed=1, api_key=SL_KEY, rate_limit=False)
    saleslayer.faults.slow_seconds = 0.05  # the kill lands while later pages are still read

    async with (
        saleslayer.running(),
        Engine.open(config_in(tmp_path, saleslayer, IN_WRITER)) as engine,
    ):

        class KillTheWriter:
            def page_done(
                self, connection: str, stream: str, items: int, total: int | None
            ) -> None:
                assert engine.page_writer is not None
                for pid in engine.page_writer.pids():
                    os.kill(pid, signal.SIGKILL)

        (report,) = await engine.sync(streams=["products"], progress=KillTheWriter())
        said = "; ".join(str(p) for p in report.problems)
        assert "the writer process died" in said, (said, report.streams)

        saleslayer.faults.slow_seconds = 0
        (report,) = await engine.sync(streams=["products"])
        assert report.ok, report.problems
        assert len(list(engine.records("product"))) == 1000


def wait_until_gone(writer: Any) -> None:
    """Until the killed process is reaped (blocking: a few milliseconds)."""
    deadline = time.monotonic() + 10
    while writer.pids() and time.monotonic() < deadline:
        time.sleep(0.01)


async def test_a_writer_that_died_between_two_syncs_is_replaced_by_the_next(
    saleslayer: SalesLayerEmulator, tmp_path: Path
) -> None:
    async with Engine.open(config_in(tmp_path, saleslayer, IN_WRITER)) as engine:
        await engine.sync()
        assert engine.page_writer is not None
        (pid,) = engine.page_writer.pids()
        os.kill(pid, signal.SIGKILL)
        wait_until_gone(engine.page_writer)
        body = {"prod_stat": "I"}
        assert await sl_write(saleslayer.base_url, "PATCH", "/Products(3)", body) == 204

        (report,) = await engine.sync(full=True)

        assert report.ok, report.problems
        assert engine.get("product", "PRD-000003").status == "inactive"


async def test_a_cancelled_sync_leaves_no_writer_process_and_a_consistent_mirror(
    saleslayer: SalesLayerEmulator, tmp_path: Path
) -> None:
    saleslayer.faults.slow_seconds = 0.05
    writers: list[int] = []
    config = config_in(tmp_path, saleslayer, IN_WRITER)

    async with Engine.open(config) as engine:

        class CancelAfterFirstPage:
            def __init__(self, scope: anyio.CancelScope) -> None:
                self.scope = scope

            def page_done(
                self, connection: str, stream: str, items: int, total: int | None
            ) -> None:
                assert engine.page_writer is not None
                writers.extend(engine.page_writer.pids())
                self.scope.cancel()

        with anyio.move_on_after(600) as scope:
            await engine.sync(progress=CancelAfterFirstPage(scope))
        assert scope.cancelled_caught
        status = engine.store.reader.execute("SELECT status FROM runs").fetchall()
        assert status == [("cancelled",)]

    assert writers
    assert not [pid for pid in writers if alive(pid)]
    async with Engine.open(config) as engine:  # the committed pages, and the rest next time
        (report,) = await engine.sync()
        assert report.ok, report.problems
        assert len(list(engine.records("product"))) == 250


class StatusFromThePim:
    @hookimpl
    def decide_field(
        self, entity: str, field: str, origin: str, platform: str, current: Any, incoming: Any
    ) -> FieldDecision | None:
        return FieldDecision.ACCEPT if field == "status" else None


@pytest.fixture
def hook_in_this_process() -> Iterator[None]:
    plugins.register_module(StatusFromThePim(), "test-status-from-the-pim")
    try:
        yield
    finally:
        plugins.unregister("test-status-from-the-pim")


@pytest.mark.usefixtures("hook_in_this_process")
async def test_a_hook_registered_in_process_keeps_the_pages_in_process(
    saleslayer: SalesLayerEmulator, tmp_path: Path
) -> None:
    async with Engine.open(config_in(tmp_path, saleslayer, IN_WRITER)) as engine:
        (report,) = await engine.sync()
        writer = engine.page_writer

    assert report.ok, report.problems
    assert writer is not None
    assert writer.pages == 0
    assert "test-status-from-the-pim" in (writer.unavailable or "")


def test_ctrl_c_on_the_process_group_stops_a_sync_with_a_writer_in_one_line(
    tmp_path: Path,
) -> None:
    """Ctrl-C in a terminal reaches every process of the group, the writer too: it keeps
    writing its page, the engine stops it, and the command says one line and exits 130."""
    salync = [sys.executable, "-m", "salync_core"]
    emulate = [*salync, "emulate", "saleslayer", "--products", "300", "--no-rate-limit"]
    with subprocess.Popen([*emulate, "--api-key", SL_KEY], stdout=subprocess.PIPE, text=True) as em:
        assert em.stdout is not None
        url = em.stdout.readline().strip()
        try:
            faults = url.removesuffix("/rest/Catalog") + "/_emulator/faults"
            body = json.dumps({"slow_seconds": 0.3}).encode()
            request = urllib.request.Request(
                faults, data=body, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=10).close()
            connection = {"plugin": "saleslayer", "base_url": url, "api_key": SL_KEY}
            config = write_config(tmp_path, {"pim": connection}, sync={"write_process": True})
            sync = subprocess.Popen(
                [*salync, "sync", "--config", str(config), "--no-progress"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a terminal's process group of its own
            )
            deadline = time.monotonic() + 120
            while not committed(tmp_path / "salync.db"):
                assert sync.poll() is None, sync.communicate()
                assert time.monotonic() < deadline, "no page committed within two minutes"
                time.sleep(0.05)

            os.killpg(sync.pid, signal.SIGINT)
            stdout, stderr = sync.communicate(timeout=120)
            assert stdout == ""
        finally:
            em.terminate()

    assert sync.returncode == 130, stderr
    assert stderr.splitlines() == [
        "cancelled (SIGINT): stopped at the last committed page; "
        "run the command again to go on from there"
    ]
    assert not group_members(sync.pid)


def committed(mirror: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{mirror}?mode=ro", uri=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM records").fetchone()[0])
    except sqlite3.Error:
        return False


def group_members(group: int) -> list[int]:
    """Live processes of a process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                found.append(int(entry.name))
    return found
