"""A new user's first minutes: `salync init`, the two emulators its comments name, `salync sync`.

The emulators run as `salync emulate` starts them (their default keys and plan), in a thread of
the test process, on the ports the test gives `salync init`.
"""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_support import invoke, serving
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core.cli.setup_commands import EMULATOR_DEFAULTS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def defaults(cls: type[Any]) -> dict[str, Any]:
    return {n: p.default for n, p in inspect.signature(cls).parameters.items()}


def test_the_starter_config_names_what_the_emulators_accept_by_default() -> None:
    assert defaults(SalesLayerEmulator)["api_key"] == EMULATOR_DEFAULTS["pim_key"]
    assert defaults(SalyncEmulator)["api_keys"] == (EMULATOR_DEFAULTS["inventory_key"],)
    assert defaults(SalyncEmulator)["plan"] == EMULATOR_DEFAULTS["inventory_plan"]


def test_init_then_the_emulators_then_sync(tmp_path: Path) -> None:
    pim_port, inventory_port = free_port(), free_port()
    env = {"SALYNC_SECRET_KEY": ""}
    ports = ["--pim-port", str(pim_port), "--inventory-port", str(inventory_port)]

    init = invoke(["init", "--dir", str(tmp_path), *ports], env)
    text = (tmp_path / "salync.toml").read_text("utf-8")
    config = str(tmp_path / "salync.toml")
    with serving(SalesLayerEmulator(), SalyncEmulator(), ports=[pim_port, inventory_port]):
        synced = invoke(["sync", "--config", config, "--no-progress"], env)
        status = invoke(["status", "--config", config], env)

    assert init.exit_code == 0, init.output
    assert f"salync emulate saleslayer --port {pim_port}" in text
    assert f"salync emulate salync --port {inventory_port}" in text
    assert synced.exit_code == 0, synced.output
    assert "problem" not in synced.stdout
    assert status.exit_code == 0, status.output
    assert "product" in status.stdout


def test_an_emulator_says_its_url_key_and_plan_when_it_starts() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "salync_core", "emulate", "salync", "--no-rate-limit"],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = announcement(process)

    assert lines[0].startswith("http://127.0.0.1:")
    assert lines[0].endswith("/v1")
    assert lines[1:4] == ["accepts api_key: sk_test_1", "plan: growth", "rate limits: off"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ["salla"],
            [
                "accepts client_id: salla-client, client_secret: salla-secret",
                "signs webhooks with: salla-webhook-secret",
            ],
        ),
        (
            ["saleslayer", "--api", "1.18"],
            ["accepts connector_code: ", "accepts import_code: "],
        ),
    ],
)
def test_an_oauth_or_signed_emulator_says_what_it_accepts(
    arguments: list[str], expected: list[str]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "salync_core", "emulate", *arguments, "--products", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = announcement(process)

    assert lines[0].startswith("http://127.0.0.1:")
    for start in expected:
        assert any(line.startswith(start) for line in lines[1:]), lines


def announcement(process: subprocess.Popen[str]) -> list[str]:
    """The lines an emulator prints at start, up to its last one, then stop it."""
    with process:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n")]
        while lines[-1] != "stop with Ctrl-C" and lines[-1:] != [""]:
            lines.append(process.stdout.readline().rstrip("\n"))
        process.terminate()
    return lines
