"""The fleet on a real Dask ``LocalCluster`` (two worker processes, every socket on 127.0.0.1):
accounts converge, and a worker killed mid-sync costs nothing: Dask runs the round again, the
new attempt waits out the dead one's writer lease, resumes from the last committed page, and
pushes each local edit exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, live_refs, saleslayer_connection

from salync_core import Engine
from salync_core.fleet import AccountOutcome
from salync_core.fleet.dask import DaskFleet, local_cluster
from salync_core.fleet.due import connections_due, iso
from salync_core.store.schedule import LastSync, MirrorSchedule
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

LEASE_TTL = 2.0
"""Short, so the attempt after a killed one waits seconds, not the default half minute."""
PATCH = "PATCH /rest/Catalog/Products({id})"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One cluster for the module: starting one takes seconds."""
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    with local_cluster(workers=2, threads=1) as client:
        yield client


def mirror_state(db: Path) -> tuple[str | None, int, int]:
    """(lease holder, fencing token, change-log rows) as committed, read from outside."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        holder, token = conn.execute("SELECT holder, token FROM writer_lease").fetchone()
        (changes,) = conn.execute("SELECT count(*) FROM changes").fetchone()
    return holder, int(token), int(changes)


def test_a_connection_due_by_its_interval_is_synced_even_when_local_edits_wait() -> None:
    """Waiting local edits make a connection due *early* (a push alone); once its interval
    has passed it is due for a sync, which pushes after it (the PIM's edits are read too)."""
    last = LastSync(iso(1000.0) or "", iso(1001.0), "ok", None, None)
    schedule = MirrorSchedule({"pim": last}, {}, frozenset({"pim"}))

    (early,) = connections_due(["pim"], schedule, {}, interval=60, now=1030.0)
    (late,) = connections_due(["pim"], schedule, {}, interval=60, now=1090.0)

    assert (early.due_at, early.why) == (1030.0, "local edits")
    assert (late.due_at, late.why) == (1060.0, "interval")


async def test_a_worker_killed_mid_sync_loses_nothing_and_pushes_nothing_twice(
    tmp_path: Path, client: Any
) -> None:
    pim = SalesLayerEmulator(products=400, seed=7, api_key=SL_KEY, rate_limit=False)
    async with pim.running():
        account = tmp_path / "accounts" / "big-shop"
        account.mkdir(parents=True)
        connection = saleslayer_connection(pim, push=["product"], rate_limits="none")
        config = write_config(account, {"pim": connection}, sync={"interval": 0.5})
        db = account / "salync.db"

        # The account is in step; then the host edits 20 products and the PIM 300 others.
        async with Engine.open(config) as engine:
            await engine.sync(push=False)
            refs = sorted(pim.live_product_refs())
            edited_here = [r for r in refs if pim.product_by_ref(r)["prod_stat"] != "R"][:20]  # type: ignore[index]
            await engine.upsert_many("product", {ref: {"status": "review"} for ref in edited_here})
        await anyio.sleep(1.1)  # the PIM stamps edits in whole seconds, after the last pass
        edited_there = [r for r in refs if r not in edited_here][:300]
        for ref in edited_there:
            product = pim.product_by_ref(ref)
            assert product is not None
            renamed = {"prod_title": {"en": f"{ref} renamed in the PIM"}}
            pim.edit("Products", product["prod_id"], renamed)
        _holder, token_before, changes_before = mirror_state(db)
        pim.stats = type(pim.stats)()
        pim.faults.slow_seconds = 0.3  # every answer: the incremental pass takes seconds
        await anyio.sleep(0.6)  # the account's interval has passed: it is due for a sync

        outcomes: list[AccountOutcome] = []

        async def run_fleet() -> None:
            fleet = DaskFleet(tmp_path / "accounts", client, concurrency=2, lease_ttl=LEASE_TTL)
            outcomes.extend(await fleet.run_due())

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_fleet)
            with anyio.fail_after(30):  # until a page of the incremental pass is committed
                while (state := mirror_state(db))[2] <= changes_before or state[0] is None:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            holder = state[0]
            assert holder is not None
            assert holder.startswith("dask tcp://127.0.0.1:"), holder
            pid = int(holder.split(" pid ")[1].split()[0])
            assert pid in client.run(os.getpid).values(), "the round runs in a worker process"
            assert pim.stats.by_route[PATCH] == 0, "killed mid-sync, before its push"
            os.kill(pid, signal.SIGKILL)
            pim.faults.slow_seconds = 0.0

        (outcome,) = outcomes
        assert outcome.status == "ok", outcome.problems
        holder, token, _changes = mirror_state(db)
        assert holder is None
        assert token == token_before + 2, "the killed attempt's lease, then the retry's"

        async with Engine.open(config) as engine:
            for ref in edited_there:
                assert engine.get("product", ref).title["en"] == f"{ref} renamed in the PIM"
            repeated = engine.store.conn.execute(
                "SELECT count(*) FROM (SELECT key FROM changes WHERE seq > ? AND origin = 'pim'"
                " GROUP BY entity, key HAVING count(*) > 1)",
                (changes_before,),
            ).fetchone()[0]
            assert repeated == 0, "no page was applied twice"
            pending = engine.store.conn.execute(
                "SELECT count(*) FROM outbox WHERE status != 'acked'"
            ).fetchone()[0]
            assert pending == 0
        assert all(pim.product_by_ref(ref)["prod_stat"] == "R" for ref in edited_here)  # type: ignore[index]
        assert pim.stats.by_route[PATCH] == len(edited_here), "each local edit sent once"


async def test_salync_fleet_run_dask_converges_every_account_on_the_cluster(
    tmp_path: Path, client: Any
) -> None:
    pim = SalesLayerEmulator(products=20, seed=2, rate_limit=False, accounts=3)
    async with pim.running():
        for i in range(3):
            (tmp_path / f"shop{i}").mkdir()
            write_config(tmp_path / f"shop{i}", {"pim": pim.account_options(i)})
        scheduler = client.scheduler.address
        assert scheduler.startswith("tcp://127.0.0.1:")
        command = [sys.executable, "-m", "salync_core", "fleet", "run", "--once"]
        result = await anyio.run_process(
            [*command, "--accounts", str(tmp_path), "--dask", scheduler], check=False
        )

        assert result.returncode == 0, result.stderr.decode()
        lines = sorted(line for line in result.stdout.decode().splitlines() if ": ok" in line)
        assert [line.split(":")[0] for line in lines] == ["shop0", "shop1", "shop2"]
        for i in range(3):
            async with Engine.open(tmp_path / f"shop{i}" / "salync.toml") as engine:
                with pim.as_account(i):
                    assert live_refs(engine, "product") == pim.live_product_refs()
            holder, token, _changes = mirror_state(tmp_path / f"shop{i}" / "salync.db")
            assert (holder, token) == (None, 1), "a Dask round held the lease, then let it go"
