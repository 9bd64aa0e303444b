"""A mistake in salync.toml stops the command with exit 2 and one clear line, before any mirror
file is created; reading commands never create a mirror where there is none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from salync_core.testing.config import write_config

ENV = {**os.environ, "SALYNC_LOAD_PLUGINS": "saleslayer,salync"}


def salync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salync_core", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=120,
        check=False,
    )


MISTAKES = {
    "unknown-plugin": ("sync", {"plugin": "saleslayr"}, "did you mean 'saleslayer'?"),
    "bad-plan": ("sync", {"plugin": "salync", "plan": "starter"}, "expected one of 'growth'"),
    "typo": ("status", {"plugin": "salync", "plna": "pro"}, "unknown key 'plna'; did you mean"),
}


@pytest.mark.parametrize(("command", "settings", "message"), MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_exit_2_before_the_mirror_is_created(
    tmp_path: Path, command: str, settings: dict[str, str], message: str
) -> None:
    write_config(tmp_path, {"inv": {"base_url": "http://127.0.0.1:9/v1", **settings}})

    result = salync(command, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "[connections.inv]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "salync.db").exists()


def test_status_on_a_mistyped_store_path_creates_no_mirror(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {"pim": {"plugin": "saleslayer", "base_url": "http://127.0.0.1:9/x"}},
        store={"path": "salync-mirorr.db"},
    )

    result = salync("status", cwd=tmp_path)

    assert result.returncode == 2
    assert "salync-mirorr.db: no mirror here; check [store] path" in result.stderr
    assert not (tmp_path / "salync-mirorr.db").exists()
