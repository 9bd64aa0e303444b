"""The processes Salync starts run on uvloop where it is installed; the library runs on
whatever loop its host gives it."""

from __future__ import annotations

import asyncio

import pytest

from salync_core import event_loop
from salync_core.cli.app import run

uvloop = pytest.importorskip("uvloop")


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_salync_command_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALYNC_UVLOOP", raising=False)

    assert run(loop_module).startswith("uvloop")


def test_salync_uvloop_0_keeps_asyncios_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALYNC_UVLOOP", "0")

    assert run(loop_module).startswith("asyncio")
    assert event_loop.backend_options() == {"use_uvloop": False}


@pytest.mark.anyio
async def test_the_library_keeps_its_hosts_loop() -> None:
    assert (await loop_module()).startswith("asyncio"), "the test's own loop, not uvloop"
