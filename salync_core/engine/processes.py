"""Stopping the process pools of the page writer and the mapper pool without ever hanging.

``ProcessPoolExecutor.shutdown(wait=True)`` waits for every worker to exit. A worker killed at
the wrong moment (while it held the pool's call-queue lock) can leave the others blocked on that
lock for good, and the wait with them. So a pool is stopped with a bounded wait: workers get
``STOP_SECONDS`` to finish the page in hand and exit, and whatever is still alive then is killed.
"""

from __future__ import annotations

import concurrent.futures
import time
from multiprocessing.process import BaseProcess

import anyio

STOP_SECONDS = 30.0
"""How long stopping waits for a worker to finish the page in hand."""


def _workers(executor: concurrent.futures.ProcessPoolExecutor) -> list[BaseProcess]:
    processes = getattr(executor, "_processes", None) or {}
    return list(processes.values())


def _stop(executor: concurrent.futures.ProcessPoolExecutor, grace: float) -> None:
    workers = _workers(executor)
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join(1.0)


async def stop_pool(
    executor: concurrent.futures.ProcessPoolExecutor, grace: float = STOP_SECONDS
) -> None:
    """Stop ``executor``'s workers (shielded from cancellation, bounded in time)."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_stop, executor, grace)


def discard_pool(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    """Drop a pool one of whose workers died: its other workers are killed, not waited for."""
    _stop(executor, 0.0)
