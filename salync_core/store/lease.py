"""The writer lease: which run may write a mirror, with a fencing token kept in the mirror.

The OS lock on ``<mirror>.lock`` (:mod:`salync_core.store.lock`) already keeps two processes on
one machine from writing at once. A fleet on a cluster needs more: Dask retries an account's
task when it believes a worker lost, while the first attempt may still be running (a network
partition, a stalled process). So a run may also hold a *lease*: a row in the mirror naming its
holder, an expiry, and a *fencing token* that grows by one at every acquire. The run's
:class:`~salync_core.store.database.Store` carries the token (:attr:`Store.fence`) and checks
it inside every write transaction, right after ``BEGIN IMMEDIATE`` took SQLite's write lock: a
holder whose lease was taken over fails with :class:`~salync_core.errors.Fenced` and its
transaction rolls back. Because the check and the takeover are both write transactions on the
same file, they are serialised by SQLite itself: once a new holder has its token, no write of
an older holder can commit. At most one writer per mirror, whatever the scheduler believes.

Expiry is compared with the wall clock of whoever acquires; every contender for one mirror runs
on the machine whose disk holds it (see ``docs/scaling.md``), so they share that clock.

:class:`WriterLease` is what a run uses: acquire (waiting for an expired or released lease),
renew in the background while the run lasts (a run longer than the TTL keeps its lease),
release at the end.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator

import anyio
from attrs import define

from salync_core.errors import Fenced, MirrorBusy
from salync_core.store.database import Store

logger = logging.getLogger("salync.lease")

DEFAULT_TTL = 30.0
"""Seconds a lease lasts without renewal: how long a dead holder keeps an account waiting."""

_STATE_SQL = "SELECT holder, token, expires_at FROM writer_lease WHERE id = 1"


@define(frozen=True)
class LeaseState:
    """The lease row as stored: ``holder`` is ``None`` when released."""

    holder: str | None
    token: int
    expires_at: float

    def free_for(self, holder: str, now: float) -> bool:
        return self.holder is None or self.holder == holder or self.expires_at <= now


@define(frozen=True)
class Fence:
    """The token a run holds; :meth:`check` runs inside each of its write transactions."""

    path: str
    holder: str
    token: int

    def check(self, conn: sqlite3.Connection) -> None:
        """Raise :class:`Fenced` unless the lease still carries this token and holder."""
        holder, token, _expires = conn.execute(_STATE_SQL).fetchone()
        if token != self.token or holder != self.holder:
            current = f"{holder} (token {token})" if holder else f"a later holder (token {token})"
            raise Fenced(self.path, self.holder, self.token, current)


def state(conn: sqlite3.Connection) -> LeaseState:
    """The lease as committed (for ``status`` and tests)."""
    holder, token, expires_at = conn.execute(_STATE_SQL).fetchone()
    return LeaseState(holder, int(token), float(expires_at))


def acquire(store: Store, holder: str, ttl: float, now: float | None = None) -> int | None:
    """Take the lease for ``holder`` if it is free, expired or already ``holder``'s; returns the
    new fencing token (one more than the last one handed out), or ``None`` when another holder
    has it. Blocking: call it through :meth:`Store.run`."""
    now = time.time() if now is None else now
    with store.write() as txn:
        if not state(txn.conn).free_for(holder, now):
            return None
        txn.conn.execute(
            "UPDATE writer_lease SET holder = ?, token = token + 1, expires_at = ?,"
            " acquired_at = ? WHERE id = 1",
            (holder, now + ttl, txn.now),
        )
        return state(txn.conn).token


def renew(store: Store, fence: Fence, ttl: float, now: float | None = None) -> bool:
    """Push the expiry ``ttl`` seconds ahead; ``False`` when the lease is no longer ``fence``'s
    (an expired lease nobody took yet is still ours, and renewing it is safe)."""
    now = time.time() if now is None else now
    with store.write() as txn:
        updated = txn.conn.execute(
            "UPDATE writer_lease SET expires_at = ? WHERE id = 1 AND holder = ? AND token = ?",
            (now + ttl, fence.holder, fence.token),
        ).rowcount
    return updated == 1


def release(store: Store, fence: Fence) -> bool:
    """Give the lease up (the token stays, so the next holder's is higher); ``False`` when it
    was no longer ours."""
    with store.write() as txn:
        released = txn.conn.execute(
            "UPDATE writer_lease SET holder = NULL, expires_at = 0"
            " WHERE id = 1 AND holder = ? AND token = ?",
            (fence.holder, fence.token),
        ).rowcount
    return released == 1


class WriterLease:
    """A run's hold on a mirror's writer lease.

    ::

        lease = WriterLease("dask:worker-1:pid 4242:ab12")
        async with Engine.open(config) as engine, lease.hold(engine.store):
            await engine.sync()

    ``holder`` must be unique per attempt (a retried task gets a new one): two attempts sharing
    a holder id would share the lease. ``wait`` is how long :meth:`hold` waits for another
    holder's lease to be released or to expire (default: the TTL and a bit, so a dead holder's
    lease is always outlived), then raises :class:`MirrorBusy`.
    """

    def __init__(self, holder: str, ttl: float = DEFAULT_TTL, *, wait: float | None = None) -> None:
        if ttl <= 0:
            raise ValueError("a lease's ttl must be positive")
        self.holder = holder
        self.ttl = ttl
        self.wait = ttl * 1.5 + 1.0 if wait is None else wait
        self.fence: Fence | None = None
        self.lost: str | None = None
        """Why the lease was lost while held (a renewal found another holder), else ``None``."""

    @property
    def token(self) -> int | None:
        return None if self.fence is None else self.fence.token

    @contextlib.asynccontextmanager
    async def hold(self, store: Store) -> AsyncIterator[Fence]:
        """Acquire, fence ``store``'s write transactions with the token, renew every third of
        the TTL while the body runs, then release and unfence."""
        fence = await self._acquire(store)
        self.fence, self.lost = fence, None
        store.fence = fence
        failed: Exception | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._renew_while_held, store, fence)
                try:
                    yield fence
                except Exception as exc:  # raised as itself below, not in an ExceptionGroup
                    failed = exc
                finally:
                    group.cancel_scope.cancel()
            if failed is not None:
                raise failed
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    released = await store.run(release, store, fence)
                except Fenced as exc:
                    released, self.lost = False, self.lost or str(exc)
                except sqlite3.Error:
                    released = True  # expires by itself; the run's writes said what failed
                    logger.debug("releasing the writer lease of %s failed", self.holder)
                if not released and self.lost is None:
                    self.lost = f"{store.path}: the writer lease of {self.holder} was taken over"
                store.fence = None

    async def _acquire(self, store: Store) -> Fence:
        path = str(store.path)
        deadline = anyio.current_time() + self.wait
        while True:  # at least one try, even with no wait at all
            token = await store.run(acquire, store, self.holder, self.ttl)
            if token is not None:
                logger.debug("%s: writer lease token %d for %s", path, token, self.holder)
                return Fence(path, self.holder, token)
            left = deadline - anyio.current_time()
            if left <= 0:
                break
            await anyio.sleep(min(1.0, self.ttl / 4, left))
        current = await store.run(state, store.conn)
        raise MirrorBusy(path, f"writer lease holder {current.holder} (token {current.token})")

    async def _renew_while_held(self, store: Store, fence: Fence) -> None:
        while True:
            await anyio.sleep(self.ttl / 3)
            try:
                still_ours = await store.run(renew, store, fence, self.ttl)
            except Fenced as exc:  # renew's own write found the new token first
                still_ours, self.lost = False, str(exc)
            except sqlite3.Error:  # busy or failing disk: try again; writes will tell
                logger.debug("renewing the writer lease of %s failed", self.holder, exc_info=True)
                continue
            if not still_ours:
                current = await store.run(state, store.conn)
                self.lost = self.lost or (
                    f"{store.path}: the writer lease of {self.holder} (token {fence.token}) "
                    f"was taken over by {current.holder} (token {current.token})"
                )
                logger.warning("%s", self.lost)
                return
