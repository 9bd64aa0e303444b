"""A reconciliation's key scan, kept on disk beside the mirror instead of in memory.

A key scan lists every item a platform still has: at a million products with their variants,
2.5 million keys, which as Python sets held about 284 MB, twice the memory of the sync itself.
Here each page of keys goes into a scratch SQLite file (no journal, no fsync: it is thrown away
at the end), and what is gone and what is missing are read by joining it with the mirror,
attached read-only, so memory stays flat whatever the catalog's size.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from attrs import frozen

_SCHEMA = (
    # appended in the order listed; indexed once the scan is complete (one sort, not a b-tree
    # insert per key: a quarter of the CPU)
    "CREATE TABLE keys (entity TEXT NOT NULL, key TEXT NOT NULL, external_id TEXT)",
    "CREATE TABLE held (key TEXT PRIMARY KEY) WITHOUT ROWID",
)
# the live records of one entity a connection holds: id_map joined with records, read once
_HOLD_SQL = (
    "INSERT INTO held (key) SELECT m.key FROM mirror.id_map m JOIN mirror.records r"
    " ON r.entity = m.entity AND r.key = m.key"
    " WHERE m.connection = ? AND m.entity = ? AND r.deleted = 0"
)
_GONE_SQL = (
    "SELECT h.key FROM held h WHERE NOT EXISTS"
    " (SELECT 1 FROM keys s WHERE s.entity = ? AND s.key = h.key) ORDER BY h.key"
)
# a key listed twice (items moved between pages during the scan) counts as last listed
_MISSING_SQL = (
    "SELECT s.external_id FROM keys s WHERE s.entity = ?"
    " AND NOT EXISTS (SELECT 1 FROM held h WHERE h.key = s.key)"
    " AND s.rowid = (SELECT max(t.rowid) FROM keys t WHERE t.entity = s.entity AND t.key = s.key)"
    " AND s.external_id IS NOT NULL ORDER BY s.key"
)


@frozen
class Comparison:
    """One entity's scan against what a connection holds live in the mirror."""

    live: int
    """How many live records of the entity the connection holds."""
    gone: list[str]
    """Keys of those the scan did not list."""
    missing: list[str]
    """External ids the scan listed whose record the connection does not hold live."""


class KeyScan:
    """The keys one scan listed, by entity; use :func:`key_scan` to get one."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add(self, entity: str, keys: Sequence[tuple[str, str | None]]) -> None:
        """Record ``(key, external_id)`` pairs of ``entity`` (a later listing of a key wins)."""
        self._conn.execute("BEGIN")
        self._conn.executemany(
            "INSERT INTO keys (entity, key, external_id) VALUES (?, ?, ?)",
            [(entity, key, external_id) for key, external_id in keys],
        )
        self._conn.execute("COMMIT")

    def compare(self, connection: str, entity: str) -> Comparison:
        """What is gone and what is missing: the connection's live records of ``entity`` are
        read from the mirror once, into the scratch file, and both answers are joins there."""
        conn = self._conn
        conn.execute("CREATE INDEX IF NOT EXISTS keys_by_key ON keys (entity, key)")
        conn.execute("BEGIN")
        conn.execute("DELETE FROM held")
        live = conn.execute(_HOLD_SQL, (connection, entity)).rowcount
        conn.execute("COMMIT")
        gone = [key for (key,) in conn.execute(_GONE_SQL, (entity,))]
        missing = [external_id for (external_id,) in conn.execute(_MISSING_SQL, (entity,))]
        return Comparison(live, gone, missing)


@contextlib.contextmanager
def key_scan(mirror: Path) -> Iterator[KeyScan]:
    """A scratch scan beside ``mirror`` (``<mirror>.scan-<pid>``), removed when it ends.

    Its connection may be used from any one thread at a time (the store's worker thread)."""
    path = mirror.with_name(f"{mirror.name}.scan-{os.getpid()}")
    path.unlink(missing_ok=True)  # left by a process that was killed
    conn = sqlite3.connect(
        path.resolve().as_uri(), uri=True, check_same_thread=False, isolation_level=None
    )
    try:
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -8192"):
            conn.execute(f"PRAGMA {pragma}")
        for table in _SCHEMA:
            conn.execute(table)
        conn.execute("ATTACH DATABASE ? AS mirror", (mirror.resolve().as_uri() + "?mode=ro",))
        yield KeyScan(conn)
    finally:
        conn.close()
        path.unlink(missing_ok=True)
