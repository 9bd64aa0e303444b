"""The webhook inbox: a small SQLite file of its own beside the mirror.

Why a separate file: the receiver must commit an event before it answers 2xx, and answer
well inside the platform's 30 s. The mirror's write lock is held for a whole page
transaction (a sync page, a reconcile sweep, a push batch, possibly in another process); an
insert into the mirror would queue behind every one of them. The inbox file is written only
by receivers (one short insert per delivery) and by the applier marking events done, so an
insert never waits for sync work. It runs ``synchronous = FULL``: after the 2xx the platform
will not send the event again, so the commit must survive a power cut, not only a killed
process.

Applying an event is recorded in the mirror itself (``webhook_events``, in the same
transaction as the event's records, see :mod:`salync_core.store.webhook_ledger`); the inbox's
``applied`` status is only bookkeeping, so a crash between the two commits applies nothing
twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import orjson
from attrs import frozen
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from salync_core.errors import StoreError
from salync_core.store.database import to_json, utc_now

T = TypeVar("T")

BUSY_TIMEOUT_MS = 2000
"""Other writers of this file hold its lock for one small insert or update at a time."""

migrations = Migrations("salync_inbox")


@migrations()
def m001_inbox(db: Database) -> None:
    """Received events, one row per (connection, event id), until applied and purged."""
    db.executescript(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            connection TEXT NOT NULL,
            event_id TEXT NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            body_sha256 TEXT NOT NULL,
            received_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'applied', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            error TEXT,
            UNIQUE (connection, event_id)
        );
        CREATE INDEX events_due ON events (status, next_attempt_at, id);
        """
    )


@frozen
class InboxEvent:
    """One received event waiting to be applied."""

    row: int
    connection: str
    event_id: str
    type: str
    data: Any
    attempts: int


@frozen
class Delivery:
    """One verified delivery's events, ``(event_id, type, data)``, and its body's hash."""

    connection: str
    events: Sequence[tuple[str, str, Any]]
    sha256: str


@frozen
class Received:
    """What one delivery added: events new to the inbox, and those it already held."""

    accepted: int
    duplicates: int


def inbox_path(mirror: Path) -> Path:
    """Where the inbox of the mirror ``salync.db`` lives: ``salync.inbox.db``."""
    return mirror.with_name(f"{mirror.stem}.inbox{mirror.suffix or '.db'}")


class Inbox:
    """The inbox file; calls take turns in one worker thread (:meth:`run`)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db = Database(self.conn)
            db.enable_wal()
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            migrations.apply(db)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the webhook inbox: {exc}") from exc
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    def beside(cls, mirror: Path) -> Inbox:
        return cls(inbox_path(mirror))

    def close(self) -> None:
        self.conn.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the inbox's own worker thread (never the mirror's)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def receive(self, deliveries: Sequence[Delivery]) -> list[Received]:
        """Commit the events of several deliveries in one transaction (one disk sync for all
        the deliveries that arrived together); an event id already held is a duplicate."""
        now = utc_now()
        results = []
        with self._transaction():
            for delivery in deliveries:
                before = self.conn.total_changes
                self.conn.executemany(
                    "INSERT OR IGNORE INTO events"
                    " (connection, event_id, type, data, body_sha256, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (delivery.connection, event_id, kind, to_json(data), delivery.sha256, now)
                        for event_id, kind, data in delivery.events
                    ],
                )
                accepted = self.conn.total_changes - before
                results.append(Received(accepted, len(delivery.events) - accepted))
        return results

    def due(self, connections: Sequence[str] | None, limit: int) -> list[InboxEvent]:
        """Pending events whose next attempt is due, oldest first."""
        sql = (
            "SELECT id, connection, event_id, type, data, attempts FROM events"
            " WHERE status = 'pending' AND next_attempt_at <= ?"
        )
        params: list[Any] = [time.time()]
        if connections is not None:
            sql += f" AND connection IN ({', '.join('?' * len(connections))})"
            params += connections
        rows = self.conn.execute(sql + " ORDER BY id LIMIT ?", (*params, limit)).fetchall()
        return [InboxEvent(r[0], r[1], r[2], r[3], orjson.loads(r[4]), r[5]) for r in rows]

    def mark_applied(self, rows: Sequence[int]) -> None:
        """Bookkeeping only (the mirror's ledger is what prevents a second apply), so this
        commit skips the disk sync that receiving pays for; the next received event's sync
        makes it durable too."""
        self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._transaction():
                self.conn.executemany(
                    "UPDATE events SET status = 'applied', error = NULL WHERE id = ?",
                    [(row,) for row in rows],
                )
        finally:
            self.conn.execute("PRAGMA synchronous = FULL")

    def postpone(self, row: int, error: str, delay: float) -> None:
        """A retriable failure (the platform unreachable): try again after ``delay`` seconds."""
        self.conn.execute(
            "UPDATE events SET attempts = attempts + 1, next_attempt_at = ?, error = ?"
            " WHERE id = ?",
            (time.time() + delay, error, row),
        )

    def fail(self, row: int, error: str) -> None:
        """An event that can never apply; kept with the reason for a person to look at."""
        self.conn.execute(
            "UPDATE events SET status = 'failed', attempts = attempts + 1, error = ? WHERE id = ?",
            (error, row),
        )

    def counts(self) -> dict[str, int]:
        """Events by status."""
        rows = self.conn.execute("SELECT status, count(*) FROM events GROUP BY status")
        return {str(status): int(n) for status, n in rows.fetchall()}

    def purge_applied(self, older_than: str) -> int:
        """Forget applied events received before ``older_than`` (the mirror keeps the ids)."""
        cursor = self.conn.execute(
            "DELETE FROM events WHERE status = 'applied' AND received_at < ?", (older_than,)
        )
        return cursor.rowcount
