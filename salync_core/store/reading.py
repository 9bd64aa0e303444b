"""Reading canonical records out of the mirror."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson


def iter_records(
    conn: sqlite3.Connection, entity: str, *, deleted: bool = False, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Records of ``entity`` as ``{"ref": key, **fields}`` in key order; with ``deleted``,
    tombstoned ones too, each with a ``deleted`` flag."""
    sql = "SELECT key, fields, deleted FROM records WHERE entity = ?"
    if not deleted:
        sql += " AND deleted = 0"
    sql += " ORDER BY key"
    params: tuple[Any, ...] = (entity,)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    for key, fields, is_deleted in conn.execute(sql, params):
        record = {"ref": key, **orjson.loads(fields)}
        if deleted:
            record["deleted"] = bool(is_deleted)
        yield record


def get_fields(conn: sqlite3.Connection, entity: str, key: str) -> dict[str, Any] | None:
    """The fields of one live record, or ``None``."""
    row = conn.execute(
        "SELECT fields FROM records WHERE entity = ? AND key = ? AND deleted = 0", (entity, key)
    ).fetchone()
    return None if row is None else dict(orjson.loads(row[0]))
