"""Helpers of the CLI tests: running a command in this process, and emulators serving in a
thread meanwhile (click's CliRunner runs the command's own event loop on this thread)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from click.testing import CliRunner, Result

from salync_core.cli import main
from salync_core.testing.emulator import Emulator


def invoke(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    """Run `salync ARGS` in this process, as a person types it. The command configures the
    `salync` logger for a terminal (its own handler, no propagation); it is put back after, so
    later tests' caplog still sees the engine's records."""
    logger = logging.getLogger("salync")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        return CliRunner().invoke(main, list(args), env=env)
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


@contextmanager
def serving(*emulators: Emulator, ports: Sequence[int] = ()) -> Iterator[list[str]]:
    """Run emulators on an event loop in a thread of their own (on ``ports``, or free ones);
    yields their base URLs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result(timeout=30)

    try:
        for emulator, port in zip(emulators, [*ports] or [0] * len(emulators), strict=True):
            call(emulator.start("127.0.0.1", port))
        yield [emulator.base_url for emulator in emulators]
    finally:
        for emulator in emulators:
            call(emulator.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
