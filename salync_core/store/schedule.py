"""What a fleet reads to decide when an account is due: read-only, never creating a file.

The fleet keeps no state of its own: when each connection last synced and how that ended
(``runs``), whether it needs a reconnect (the credentials table), whether local edits wait to be
pushed (``changes`` after the push cursor, pending ``outbox`` rows) and whether webhook events
wait in the inbox beside the mirror. Everything is read through a ``mode=ro`` connection that is
closed at once, so an idle account holds no SQLite handle and ``fleet status`` never creates a
mirror.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from attrs import frozen

from salync_core.store.credentials import NEEDS_RECONNECT, stored_names
from salync_core.store.inbox import inbox_path

BUSY_TIMEOUT_MS = 2000


@frozen
class LastSync:
    """The last sync run of one connection, as the mirror recorded it."""

    started_at: str
    finished_at: str | None
    status: str
    paused_until: str | None
    error: str | None


@frozen
class MirrorSchedule:
    """What the mirror says about each connection's schedule."""

    last_sync: dict[str, LastSync]
    needs_reconnect: dict[str, str]
    """Connection name -> why (its stored reason, which holds no secret)."""
    local_waiting: frozenset[str]
    """Pushing connections with local edits (or planned writes) not yet delivered."""


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to ``path``, or ``None`` if the file does not exist."""
    if not path.is_file():
        yield None
        return
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        yield conn
    finally:
        conn.close()


def mirror_schedule(
    mirror: Path, connections: Sequence[str], pushing: Sequence[str]
) -> MirrorSchedule:
    """The schedule facts of a mirror (empty for a mirror not created yet)."""
    with read_only(mirror) as conn:
        if conn is None or not _has_table(conn, "runs"):
            return MirrorSchedule({}, {}, frozenset())
        return MirrorSchedule(
            _last_syncs(conn, connections),
            _needs_reconnect(conn, connections),
            frozenset(_local_waiting(conn, pushing)),
        )


def inbox_waiting(mirror: Path) -> dict[str, int]:
    """Pending webhook events per connection in the inbox beside ``mirror``."""
    with read_only(inbox_path(mirror)) as conn:
        if conn is None or not _has_table(conn, "events"):
            return {}
        rows = conn.execute(
            "SELECT connection, count(*) FROM events WHERE status = 'pending' GROUP BY connection"
        )
        return {str(name): int(n) for name, n in rows}


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _last_syncs(conn: sqlite3.Connection, connections: Sequence[str]) -> dict[str, LastSync]:
    found: dict[str, LastSync] = {}
    for name in connections:
        row = conn.execute(
            "SELECT started_at, finished_at, status, stats, error FROM runs"
            " WHERE connection = ? AND kind = 'sync' ORDER BY id DESC LIMIT 1",
            (name,),
        ).fetchone()
        if row is not None:
            stats: dict[str, Any] = orjson.loads(row[3] or "{}")
            paused = stats.get("paused_until")
            found[name] = LastSync(
                row[0], row[1], row[2], paused if isinstance(paused, str) else None, row[4]
            )
    return found


def _needs_reconnect(conn: sqlite3.Connection, connections: Sequence[str]) -> dict[str, str]:
    """Connections whose grant is gone; the reason's text is encrypted, so it is not read."""
    if not _has_table(conn, "connections"):
        return {}
    return {
        name: "its authorization is gone; run `salync connect " + name + "`"
        for name in connections
        if NEEDS_RECONNECT in stored_names(conn, name)
    }


def _local_waiting(conn: sqlite3.Connection, pushing: Sequence[str]) -> set[str]:
    waiting: set[str] = set()
    for name in pushing:
        pending = conn.execute(
            "SELECT 1 FROM outbox WHERE connection = ? AND status = 'pending' LIMIT 1", (name,)
        ).fetchone()
        newer = conn.execute(
            "SELECT 1 FROM changes WHERE origin != ?"
            " AND seq > coalesce((SELECT seq FROM push_cursors WHERE connection = ?), 0) LIMIT 1",
            (name, name),
        ).fetchone()
        if pending is not None or newer is not None:
            waiting.add(name)
    return waiting
