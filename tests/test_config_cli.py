"""A mistake in salync.toml stops the command with exit 2 and one clear line, before any mirror
file is created; reading commands never create a mirror where there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import invoke

from salync_core.testing.config import write_config

MISTAKES = {
    "unknown-plugin": ("sync", {"plugin": "saleslayr"}, "did you mean 'saleslayer'?"),
    "bad-plan": ("sync", {"plugin": "salync", "plan": "starter"}, "expected one of 'growth'"),
    "typo": ("status", {"plugin": "salync", "plna": "pro"}, "unknown key 'plna'; did you mean"),
    "push-typo": ("push", {"plugin": "salync", "pussh": ["product"]}, "did you mean 'push'?"),
}


@pytest.mark.parametrize(("command", "settings", "message"), MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_exit_2_before_the_mirror_is_created(
    tmp_path: Path, command: str, settings: dict[str, str], message: str
) -> None:
    config = write_config(tmp_path, {"inv": {"base_url": "http://127.0.0.1:9/v1", **settings}})

    result = invoke([command, "--config", str(config)])

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert f"{config}: [connections.inv]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "salync.db").exists()


def test_status_on_a_mistyped_store_path_creates_no_mirror(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {"pim": {"plugin": "saleslayer", "base_url": "http://127.0.0.1:9/x"}},
        store={"path": "salync-mirorr.db"},
    )

    result = invoke(["status", "--config", str(config)])

    assert result.exit_code == 2
    assert "salync-mirorr.db: no mirror here; check [store] path" in result.stderr
    assert not (tmp_path / "salync-mirorr.db").exists()
