"""Stopping `salync sync` as people do: Ctrl-C, a service manager's SIGTERM, `kill -9`.

A real `salync sync` process reads a slow emulator; the signal arrives once at least one page
is committed. A stopped run keeps every committed page, records itself, and says so in one
line; a run killed outright is shown as `interrupted`, never `running` forever.
"""

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

import pytest
from cli_support import invoke
from support import SL_KEY

from salync_core.testing.config import write_config

SALYNC = [sys.executable, "-m", "salync_core"]


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[str]:
    """`salync emulate saleslayer` in its own process, answering every request after 0.3 s."""
    command = [*SALYNC, "emulate", "saleslayer", "--products", "300", "--no-rate-limit"]
    process = subprocess.Popen(
        [*command, "--api-key", SL_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    with process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        try:
            assert url.startswith("http://127.0.0.1:"), url
            admin = url.removesuffix("/rest/Catalog") + "/_emulator/faults"
            request = urllib.request.Request(
                admin,
                data=json.dumps({"slow_seconds": 0.3}).encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=10).close()
            yield url
        finally:
            process.terminate()


@pytest.fixture
def config(tmp_path: Path, slow_emulator: str) -> Path:
    return write_config(
        tmp_path, {"pim": {"plugin": "saleslayer", "base_url": slow_emulator, "api_key": SL_KEY}}
    )


def committed_records(mirror: Path) -> int:
    if not mirror.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{mirror}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def sync_until_a_page_is_committed(config: Path) -> subprocess.Popen[str]:
    """Start `salync sync` and return once the mirror holds a committed page."""
    process = subprocess.Popen(
        [*SALYNC, "sync", "--config", str(config), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    mirror = config.parent / "salync.db"
    deadline = time.monotonic() + 60
    while committed_records(mirror) == 0:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no page committed within a minute"
        time.sleep(0.05)
    return process


def last_run(config: Path) -> dict[str, Any]:
    """The connection's last run as `salync status --json` shows it."""
    result = invoke(["status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)["connections"]["pim"]["last_run"]
    return data


def assert_consistent(mirror: Path) -> None:
    """The file checks out, and each stream's cursor was saved with its pages."""
    with sqlite3.connect(mirror) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM cursors").fetchone()[0] >= 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_cancels_the_sync_in_one_line(config: Path, signum: signal.Signals) -> None:
    process = sync_until_a_page_is_committed(config)

    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    assert stderr.splitlines() == [
        f"cancelled ({signum.name}): stopped at the last committed page; "
        "run the command again to go on from there"
    ]
    assert stdout == ""
    assert_consistent(config.parent / "salync.db")
    assert last_run(config)["status"] == "cancelled"
    assert last_run(config)["finished_at"]


def test_a_killed_sync_is_shown_as_interrupted(config: Path) -> None:
    process = sync_until_a_page_is_committed(config)

    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)

    assert_consistent(config.parent / "salync.db")
    assert last_run(config)["status"] == "interrupted"
    assert last_run(config)["finished_at"] is None
