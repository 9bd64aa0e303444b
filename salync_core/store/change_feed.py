"""The change feed's statements: reading the change log, the consumers' positions, and
forgetting the tombstones everyone has passed."""

from __future__ import annotations

import sqlite3
from typing import Any

from salync_core.store.database import Transaction

ChangeRow = tuple[int, str, str, str, str | None, str, str, str | None]
"""``(seq, entity, key, op, changed names JSON, origin, at, current fields JSON)``."""


def changes_after(
    conn: sqlite3.Connection, since: int, limit: int, entity: str | None = None
) -> list[ChangeRow]:
    """Change-log rows after ``since``, oldest first, with the record's current fields."""
    sql = (
        "SELECT c.seq, c.entity, c.key, c.op, c.fields, c.origin, c.at, r.fields FROM changes c"
        " LEFT JOIN records r ON r.entity = c.entity AND r.key = c.key WHERE c.seq > ?"
    )
    params: tuple[Any, ...] = (since,)
    if entity is not None:
        sql += " AND c.entity = ?"
        params += (entity,)
    return conn.execute(sql + " ORDER BY c.seq LIMIT ?", (*params, limit)).fetchall()


def add_consumer(txn: Transaction, name: str, start: int) -> int:
    """Register a consumer at ``start`` unless it exists; returns its position."""
    txn.conn.execute(
        "INSERT INTO consumers (name, seq, registered_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO NOTHING",
        (name, start, txn.now),
    )
    row = txn.conn.execute("SELECT seq FROM consumers WHERE name = ?", (name,)).fetchone()
    return int(row[0])


def advance_consumer(txn: Transaction, name: str, seq: int) -> bool:
    """Move a consumer's position to ``seq`` unless it is further; ``False`` if no such one."""
    updated = txn.conn.execute(
        "UPDATE consumers SET seq = max(seq, ?) WHERE name = ?", (seq, name)
    ).rowcount
    return bool(updated)


def consumer_positions(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT seq FROM consumers")]


def forget_tombstones(txn: Transaction, horizon: int) -> int:
    """Drop deleted records (and their id maps) tombstoned at or before ``horizon``."""
    conn = txn.conn
    gone = conn.execute("SELECT entity, key FROM tombstones WHERE seq <= ?", (horizon,)).fetchall()
    conn.executemany("DELETE FROM records WHERE entity = ? AND key = ? AND deleted = 1", gone)
    conn.executemany("DELETE FROM id_map WHERE entity = ? AND key = ?", gone)
    conn.execute("DELETE FROM tombstones WHERE seq <= ?", (horizon,))
    return len(gone)
