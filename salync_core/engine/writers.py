"""Who may write where: one engine per mirror across processes, one push per connection.

Two pushes that both read the pending outbox rows would both send them, and platforms without
idempotency keys (Sales Layer creates) would then hold every new item twice. So a sync, push or
reconcile holds the mirror's OS lock (:class:`~salync_core.store.lock.MirrorLock`) for its whole
run, and inside one engine each connection's push runs alone: a second push waits, then finds
nothing left to send.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio

from salync_core.errors import MirrorBusy
from salync_core.store.lock import MirrorLock

logger = logging.getLogger("salync.engine")

POLL_SECONDS = 0.1


def log_wait(holder: str) -> None:
    logger.warning("waiting for %s to finish with the mirror", holder)


class Writers:
    """The engine's write locks: the mirror's (re-entrant within the engine, so a sync's own
    push and concurrent calls on one engine share it) and one per connection."""

    def __init__(self, mirror: Path) -> None:
        self.mirror = mirror
        self._lock = MirrorLock(mirror)
        self._users = 0
        self._taking = anyio.Lock()
        self._connections: dict[str, anyio.Lock] = {}
        self.opening = anyio.Lock()
        """Held while a connection's HTTP client is opened, so it is opened once."""

    @contextlib.asynccontextmanager
    async def mirror_lock(
        self, wait: float | None, on_wait: Callable[[str], None] = log_wait
    ) -> AsyncIterator[None]:
        """Hold the mirror's lock; waits up to ``wait`` seconds (``None``: as long as it takes)
        for another holder, then raises :class:`MirrorBusy` naming it."""
        async with self._taking:
            if not self._lock.held:
                await self._acquire(wait, on_wait)
            self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                self._lock.release()

    async def _acquire(self, wait: float | None, on_wait: Callable[[str], None]) -> None:
        told = False
        with anyio.move_on_after(wait):
            while not self._lock.try_acquire():
                if not told and wait != 0:
                    on_wait(self._lock.holder())
                    told = True
                await anyio.sleep(POLL_SECONDS)
            return
        raise MirrorBusy(str(self.mirror), self._lock.holder())

    def connection(self, name: str) -> anyio.Lock:
        """The lock one connection's push holds."""
        lock = self._connections.get(name)
        if lock is None:
            lock = self._connections[name] = anyio.Lock()
        return lock
