"""The conflicts table's statements, and the two reads ``explain`` makes of a record: its
fields with their clocks, and what each connection last held of it."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from salync_core.store.bases import HOLDERS, decode_base, preserve
from salync_core.store.database import Transaction, to_json
from salync_core.store.mirror import decode_clocks, encode_clocks

ConflictRow = tuple[int, str, str, str, str, str, str, str | None]
"""``(id, entity, key, field, candidates JSON, status, created_at, resolution JSON)``."""

_COLUMNS = "id, entity, key, field, candidates, status, created_at, resolution"


def conflict_rows(conn: sqlite3.Connection, status: str | None) -> list[ConflictRow]:
    """The conflicts, oldest first, only those with ``status`` when it is given."""
    sql = f"SELECT {_COLUMNS} FROM conflicts"
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status = ?"
        params = (status,)
    return conn.execute(sql + " ORDER BY id", params).fetchall()


def conflict_row(conn: sqlite3.Connection, conflict_id: int) -> ConflictRow | None:
    row: ConflictRow | None = conn.execute(
        f"SELECT {_COLUMNS} FROM conflicts WHERE id = ?", (conflict_id,)
    ).fetchone()
    return row


def settle_field(
    txn: Transaction, entity: str, key: str, field: str, value: Any, clock: tuple[str, float, str]
) -> None:
    """Give one field of a record ``value``, with the clock ``(origin, time, rule)`` and a new
    change-log row, as a write of that origin. Every connection's base keeps what it held
    (copy-on-write, ``store/bases.py``)."""
    origin, at, rule = clock
    row = txn.conn.execute(
        "SELECT fields, clocks FROM records WHERE entity = ? AND key = ?", (entity, key)
    ).fetchone()
    fields = orjson.loads(row[0])
    clocks = decode_clocks(row[1], fields)
    preserve(txn.conn, entity, {key: (fields, {field: value})}, None)
    seq = txn.next_seq()
    fields = {**fields, field: value}
    clocks[field] = [origin, at, seq, rule]
    txn.conn.execute(
        "UPDATE records SET fields = ?, clocks = ?, seq = ? WHERE entity = ? AND key = ?",
        (to_json(fields), encode_clocks(clocks, fields), seq, entity, key),
    )
    txn.conn.execute(
        "INSERT INTO changes (seq, entity, key, op, fields, origin, at)"
        " VALUES (?, ?, ?, 'upsert', ?, ?, ?)",
        (seq, entity, key, to_json([field]), origin, txn.now),
    )


def mark_resolved(txn: Transaction, conflict_id: int, resolution: dict[str, Any]) -> None:
    txn.conn.execute(
        "UPDATE conflicts SET status = 'resolved', resolution = ?, resolved_at = ? WHERE id = ?",
        (to_json(resolution), txn.now, conflict_id),
    )


def record_with_clocks(
    conn: sqlite3.Connection, entity: str, key: str
) -> tuple[dict[str, Any], dict[str, Any], bool, int] | None:
    """``(fields, clocks, deleted, seq)`` of a record in the mirror, or ``None``."""
    row = conn.execute(
        "SELECT fields, clocks, deleted, seq FROM records WHERE entity = ? AND key = ?",
        (entity, key),
    ).fetchone()
    if row is None:
        return None
    fields = orjson.loads(row[0])
    return fields, decode_clocks(row[1], fields), bool(row[2]), row[3]


def bases_of(
    conn: sqlite3.Connection, entity: str, key: str
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """``connection -> (external id, base)``: what each connection last held of a record."""
    return {
        connection: (
            external_id,
            decode_base(base, None if fields is None else orjson.loads(fields)),
        )
        for connection, external_id, base, fields in conn.execute(
            HOLDERS + "SELECT m.connection, m.external_id, m.base, r.fields FROM holders"
            " JOIN id_map m ON m.connection = holders.name"
            " LEFT JOIN records r ON r.entity = m.entity AND r.key = m.key"
            " WHERE m.entity = ? AND m.key = ? ORDER BY m.connection",
            (entity, key),
        )
    }
