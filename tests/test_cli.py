"""The `salync` command as a person runs it: real processes, a real emulator, exit codes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SL_KEY

from salync_core.testing.config import write_config

SALYNC = [sys.executable, "-m", "salync_core"]


def salync(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SALYNC, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """`salync emulate saleslayer` in its own process, as a plugin author would run it."""
    process = subprocess.Popen(
        [
            *SALYNC,
            "emulate",
            "saleslayer",
            "--products",
            "120",
            "--api-key",
            SL_KEY,
            "--no-rate-limit",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    with process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        try:
            assert url.startswith("http://127.0.0.1:"), url
            yield url
        finally:
            process.terminate()


@pytest.fixture
def config(tmp_path: Path, emulator_url: str) -> Path:
    return write_config(
        tmp_path, {"pim": {"plugin": "saleslayer", "base_url": emulator_url, "api_key": SL_KEY}}
    )


def test_sync_status_and_records(config: Path) -> None:
    synced = salync("sync", "--config", str(config), "--no-progress")
    assert synced.returncode == 0, synced.stderr
    assert "pim" in synced.stdout

    status = json.loads(salync("status", "--config", str(config), "--json").stdout)
    assert status["records"]["product"]["live"] == 120
    assert status["connections"]["pim"]["last_run"]["status"] == "ok"
    assert status["connections"]["pim"]["requests_today"]["requests"] >= 2

    lines = salync("records", "product", "--config", str(config), "--json").stdout.splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 120
    assert first["ref"] == "PRD-000001"
    assert set(first["title"]) == {"en", "es", "fr"}


def test_a_wrong_key_is_one_line_and_exit_code_1(tmp_path: Path, emulator_url: str) -> None:
    config = write_config(
        tmp_path,
        {"pim": {"plugin": "saleslayer", "base_url": emulator_url, "api_key": "wrong-key-123"}},
    )
    result = salync("sync", "--config", str(config), "--no-progress")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "pim" in result.stdout
    assert "wrong-key-123" not in result.stderr + result.stdout


def test_an_unreachable_host_names_the_connection(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "pim": {
                "plugin": "saleslayer",
                "base_url": "http://127.0.0.1:9/rest/Catalog",
                "api_key": SL_KEY,
                "retry_attempts": 2,
            }
        },
    )
    result = salync("sync", "--config", str(config), "--no-progress")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "pim" in result.stdout


def test_a_malformed_config_names_the_file_and_the_key(tmp_path: Path) -> None:
    config = tmp_path / "salync.toml"
    config.write_text("[connections.pim]\nplugin = 'saleslayer'\nbase_url = 42\n", encoding="utf-8")
    result = salync("sync", "--config", str(config))
    assert result.returncode == 2
    assert str(config) in result.stderr
    assert "base_url" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_writes_a_config_and_a_private_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SALYNC_SECRET_KEY"}
    result = salync("init", "--dir", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "salync.toml").exists()
    assert (tmp_path / "salync.key").stat().st_mode & 0o777 == 0o600
    again = salync("init", "--dir", str(tmp_path), env=env)
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_secrets_are_stored_encrypted_and_listed_by_name(tmp_path: Path, emulator_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SALYNC_SECRET_KEY"}
    env["PIM_KEY"] = SL_KEY
    assert salync("init", "--dir", str(tmp_path), env=env).returncode == 0
    config = write_config(tmp_path, {"pim": {"plugin": "saleslayer", "base_url": emulator_url}})

    stored = salync(
        "secrets", "set", "pim", "--from-env", "PIM_KEY", "--config", str(config), env=env
    )
    listed = salync("secrets", "list", "--config", str(config), env=env)
    synced = salync("-vv", "sync", "--config", str(config), "--no-progress", env=env)

    assert stored.returncode == 0, stored.stderr
    assert "pim: api_key" in listed.stdout
    assert synced.returncode == 0, synced.stdout + synced.stderr
    for output in (stored, listed, synced):
        assert SL_KEY not in output.stdout + output.stderr


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = salync("demo", "--dir", str(tmp_path), "--products", "60", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    for phase in ("first", "settle", "workday"):
        assert phase in result.stdout
    assert "owner:inventory" in result.stdout  # the explained product's cost came from Salync
    assert "problem" not in result.stdout
    assert (tmp_path / "salync.db").exists()
    status = json.loads(
        salync("status", "--config", str(tmp_path / "salync.toml"), "--json").stdout
    )
    assert status["connections"]["inventory"]["outbox"] == {"pending": 0, "dead": 0}


def test_explain_and_conflicts_from_the_command_line(tmp_path: Path, emulator_url: str) -> None:
    config = write_config(
        tmp_path,
        {"pim": {"plugin": "saleslayer", "base_url": emulator_url, "api_key": SL_KEY}},
        policies={"product": {"title": "manual"}},
    )
    assert salync("sync", "--config", str(config), "--no-progress").returncode == 0
    db = tmp_path / "salync.db"
    opened = sqlite3.connect(db)
    with opened:  # a conflict as a sync would open it, written straight into the mirror
        opened.execute(
            "INSERT INTO conflicts (entity, key, field, candidates, created_at) VALUES"
            " ('product', 'PRD-000001', 'title', ?, '2026-11-23T12:00:00Z')",
            (json.dumps({"pim": {"en": "A"}, "local": {"en": "B"}}),),
        )
    opened.close()

    explained = json.loads(
        salync("explain", "product", "PRD-000001", "--config", str(config), "--json").stdout
    )
    listed = salync("conflicts", "list", "--config", str(config))
    wrong = salync("conflicts", "resolve", "1", "--value", '"just text"', "--config", str(config))
    resolved = salync("conflicts", "resolve", "1", "--take", "local", "--config", str(config))
    table = salync("explain", "product", "PRD-000001", "--config", str(config))

    assert {f["field"]: f["origin"] for f in explained["fields"]}["title"] == "pim"
    assert explained["open_conflicts"] == [1]
    assert "PRD-000001" in listed.stdout
    assert wrong.returncode == 1
    assert "expected a {locale: text} map" in wrong.stderr
    assert resolved.returncode == 0, resolved.stderr
    assert "resolved" in resolved.stdout
    assert "manual:resolved" in table.stdout
