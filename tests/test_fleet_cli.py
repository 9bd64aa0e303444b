"""`salync fleet run` and `salync fleet status` as people run them: real processes against an
emulator serving many accounts."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pytest
from cli_support import invoke, serving
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

FLEET = [sys.executable, "-m", "salync_core", "fleet"]


def write_accounts(root: Path, emulator: SalesLayerEmulator, count: int) -> list[Path]:
    directories = []
    for i in range(count):
        directory = root / f"shop{i:02d}"
        directory.mkdir()
        write_config(directory, {"pim": emulator.account_options(i)}, sync={"interval": "1h"})
        directories.append(directory)
    return directories


def sync_runs(directory: Path) -> int:
    uri = (directory / "salync.db").resolve().as_uri() + "?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM runs WHERE kind = 'sync'").fetchone()[0])


async def test_two_fleet_processes_never_both_sync_one_account(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=20, seed=1, rate_limit=False, accounts=12)
    pim.faults.update({"slow_seconds": 0.05})  # long enough for the two to overlap
    async with pim.running():
        directories = write_accounts(tmp_path, pim, 12)
        command = [*FLEET, "run", "--accounts", str(tmp_path), "--once", "--concurrency", "3"]
        results: list[subprocess.CompletedProcess[bytes]] = []

        async def one_process() -> None:
            results.append(await anyio.run_process(command, check=False))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one_process)
            tg.start_soon(one_process)

    for result in results:
        assert result.returncode == 0, result.stderr.decode()
        assert b"Traceback" not in result.stderr
    lines = b"".join(r.stdout for r in results).decode().splitlines()
    synced = [line.split(":")[0] for line in lines if ": ok" in line]
    assert sorted(synced) == [d.name for d in directories], "each account synced by one of them"
    said = [line for line in lines if line.startswith("shop")]
    others = [line for line in said if ": busy" in line or ": not_due" in line]
    assert len(others) + len(synced) == len(said), lines  # the other one said why it did not
    for directory in directories:
        assert sync_runs(directory) == 1, directory.name


async def test_processes_split_the_accounts_and_each_is_synced_once(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=5, seed=1, rate_limit=False, accounts=8)
    async with pim.running():
        directories = write_accounts(tmp_path, pim, 8)
        command = [*FLEET, "run", "--accounts", str(tmp_path), "--once", "--processes", "3"]
        result = await anyio.run_process(command, check=False)

    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    synced = sorted(line.split(":")[0] for line in lines if ": ok" in line)
    assert synced == [d.name for d in directories], lines
    assert sum(" accounts ran: " in line for line in lines) == 3, "one summary per process"
    for directory in directories:
        assert sync_runs(directory) == 1, directory.name


def test_shards_partition_the_accounts() -> None:
    from salync_core import Account
    from salync_core.fleet.shards import in_shard, parse_shard

    accounts = [Account(f"shop{n:03d}", Path(f"shop{n:03d}")) for n in range(200)]
    shards = [in_shard(accounts, k, 3) for k in range(3)]
    assert sorted(a.name for shard in shards for a in shard) == [a.name for a in accounts]
    assert all(shards), "every process gets some of 200 accounts"
    assert parse_shard("2/3") == (2, 3)
    with pytest.raises(ValueError, match="0 <= K < N"):
        parse_shard("3/3")


def test_run_once_exits_non_zero_naming_each_failed_account(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=3, seed=1, rate_limit=False, accounts=3)
    with serving(pim):
        write_accounts(tmp_path, pim, 3)
        wrong = tmp_path / "wrong"
        wrong.mkdir()
        secret = "sl-test-key-acct999"  # no such account: 401
        write_config(wrong, {"pim": {**pim.account_options(0), "api_key": secret}})
        result = invoke(["fleet", "run", "--accounts", str(tmp_path), "--once"])

    assert result.exit_code == 1, result.output
    [failed] = [line for line in result.output.splitlines() if line.startswith("wrong: failed")]
    assert "401" in failed
    assert secret not in result.output
    assert sum(": ok" in line for line in result.output.splitlines()) == 3


def test_run_once_names_an_account_whose_configuration_does_not_load(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=3, seed=1, rate_limit=False, accounts=2)
    with serving(pim):
        write_accounts(tmp_path, pim, 2)
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "salync.toml").write_text('[connections.pim]\nbase_url = "http://127.0.0.1:1"\n')
        result = invoke(["fleet", "run", "--accounts", str(tmp_path), "--once"])

    assert result.exit_code == 1, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("broken: failed")]
    assert "missing required key 'plugin'" in line
    assert sum(": ok" in line for line in result.output.splitlines()) == 2


def test_status_shows_every_account_and_creates_nothing(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=3, seed=1, rate_limit=False, accounts=2)
    with serving(pim):
        ran, never = write_accounts(tmp_path, pim, 2)
        (never / "salync.toml").rename(tmp_path / "aside.toml")
        assert invoke(["fleet", "run", "--accounts", str(tmp_path), "--once"]).exit_code == 0
        (tmp_path / "aside.toml").rename(never / "salync.toml")
        result = invoke(["fleet", "status", "--accounts", str(tmp_path), "--json"])
        table = invoke(["fleet", "status", "--accounts", str(tmp_path)])

    assert result.exit_code == 0, result.output
    rows = {row["account"]: row for row in orjson.loads(result.output)}
    assert rows[ran.name]["last_status"] == "ok"
    assert rows[ran.name]["next_due"] > rows[ran.name]["last_run"]
    assert rows[never.name]["last_status"] == "never run"
    assert not (never / "salync.db").exists()
    assert ran.name in table.output


async def test_sigterm_stops_the_fleet_at_a_committed_page(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=300, seed=1, rate_limit=False, accounts=2)
    pim.faults.update({"slow_seconds": 0.2})
    async with pim.running():
        directories = write_accounts(tmp_path, pim, 2)
        async with await anyio.open_process([*FLEET, "run", "--accounts", str(tmp_path)]) as fleet:
            with anyio.fail_after(30):
                while not any(committed(d) for d in directories):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            fleet.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                code = await fleet.wait()
            assert fleet.stderr is not None
            stderr = (await fleet.stderr.receive()).decode()

    assert code == 130
    assert stderr.strip().startswith("cancelled (SIGTERM)")
    assert len(stderr.strip().splitlines()) == 1


def committed(directory: Path) -> bool:
    mirror = directory / "salync.db"
    if not mirror.exists():
        return False
    try:
        uri = mirror.resolve().as_uri() + "?mode=ro"
        with sqlite3.connect(uri, uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM records").fetchone()[0]) > 0
    except sqlite3.Error:
        return False
