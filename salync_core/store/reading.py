"""Reading canonical records out of the mirror."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson


def iter_records(
    conn: sqlite3.Connection,
    entity: str,
    *,
    deleted: bool = False,
    limit: int | None = None,
    batch: int = 500,
) -> Iterator[dict[str, Any]]:
    """Records of ``entity`` as ``{"ref": key, **fields}`` in key order; with ``deleted``,
    tombstoned ones too, each with a ``deleted`` flag.

    Read ``batch`` keys at a time, each batch by a query of its own, so no statement stays open
    while the caller holds the iterator: an open one would pin the reader to an old snapshot."""
    sql = "SELECT key, fields, deleted FROM records WHERE entity = ? AND key > ?"
    if not deleted:
        sql += " AND deleted = 0"
    sql += " ORDER BY key LIMIT ?"
    after, left = "", limit
    while left is None or left > 0:
        size = batch if left is None else min(batch, left)
        rows = conn.execute(sql, (entity, after, size)).fetchall()
        for key, fields, is_deleted in rows:
            record = {"ref": key, **orjson.loads(fields)}
            if deleted:
                record["deleted"] = bool(is_deleted)
            yield record
        if len(rows) < size:
            return
        after = rows[-1][0]
        if left is not None:
            left -= len(rows)


def get_fields(conn: sqlite3.Connection, entity: str, key: str) -> dict[str, Any] | None:
    """The fields of one live record, or ``None``."""
    row = conn.execute(
        "SELECT fields FROM records WHERE entity = ? AND key = ? AND deleted = 0", (entity, key)
    ).fetchone()
    return None if row is None else dict(orjson.loads(row[0]))
