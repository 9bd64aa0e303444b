"""The outbox's statements: where each connection's push cursor stands, what changed since, the
writes queued for it, and their acknowledgement, retry or burial. The planning and delivery
rules live in :mod:`salync_core.engine.outbox`; this module only reads and writes rows."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import orjson

from salync_core.store.bases import decode_base, encode_base
from salync_core.store.database import Transaction, to_json

_IN_KEYS = "key IN (SELECT value FROM json_each(?))"

QueuedWrite = tuple[int, str, str]
"""``(outbox id, op, fields JSON)`` of a pending write."""
DueRow = tuple[
    int,
    str,
    str,
    Literal["upsert", "delete"],
    str,
    str,
    int,
    str | None,
    dict[str, Any] | None,
    str | None,
]
"""``(id, entity, key, op, fields, idempotency key, attempts, external id, base, receipt)``;
the base is the connection's whole base, decoded (``None`` when it holds nothing)."""
Acknowledged = tuple[int, str, str, str | None, dict[str, Any]]
"""``(outbox id, entity, key, external id, base)`` of an acknowledged write."""
PlanningRow = tuple[dict[str, Any], bool, dict[str, Any] | None]
"""``(fields, deleted, base)`` of one record: the base is what the connection last held of
it, decoded (``None`` when it holds nothing). The base may be ``fields`` itself: read only."""


def push_position(conn: sqlite3.Connection, connection: str) -> int:
    """The change-log sequence number the connection's pushes are planned up to."""
    row = conn.execute(
        "SELECT seq FROM push_cursors WHERE connection = ?", (connection,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def pending_targets(
    conn: sqlite3.Connection, connection: str, since: int, entities: Sequence[str]
) -> list[tuple[str, str]]:
    """``(entity, key)`` of records changed after ``since`` or holding a refused value."""
    marks = ",".join("?" * len(entities))
    changed = conn.execute(
        f"SELECT DISTINCT entity, key FROM changes WHERE seq > ? AND entity IN ({marks})",
        (since, *entities),
    ).fetchall()
    diverged = conn.execute(
        f"SELECT entity, key FROM id_map WHERE connection = ? AND diverged = 1"
        f" AND entity IN ({marks})",
        (connection, *entities),
    ).fetchall()
    return list(dict.fromkeys([*changed, *diverged]))


def mark_planned(txn: Transaction, connection: str) -> None:
    """Move the connection's push cursor to the transaction's last change; nothing diverges."""
    txn.conn.execute(
        "INSERT INTO push_cursors (connection, seq) VALUES (?, ?)"
        " ON CONFLICT (connection) DO UPDATE SET seq = excluded.seq",
        (connection, txn.last_seq),
    )
    txn.conn.execute(
        "UPDATE id_map INDEXED BY id_map_diverged SET diverged = 0"  # not all the primary key
        " WHERE connection = ? AND diverged = 1",
        (connection,),
    )


def records_to_plan(
    conn: sqlite3.Connection, connection: str, entity: str, keys: Sequence[str]
) -> dict[str, PlanningRow]:
    """``key -> (fields, deleted, base)`` of the mirror's records among ``keys``, in one query,
    each record's JSON decoded once (planning reads tens of thousands of them)."""
    rows = conn.execute(
        "SELECT r.key, r.fields, r.deleted, m.key IS NOT NULL, m.base FROM records r"
        " LEFT JOIN id_map m ON m.connection = ? AND m.entity = r.entity AND m.key = r.key"
        f" WHERE r.entity = ? AND r.{_IN_KEYS}",
        (connection, entity, to_json(keys)),
    )
    planning: dict[str, PlanningRow] = {}
    for key, text, deleted, held, stored in rows:
        fields = orjson.loads(text)
        planning[key] = (fields, bool(deleted), decode_base(stored, fields) if held else None)
    return planning


def queued_writes(
    conn: sqlite3.Connection, connection: str, entity: str, keys: Sequence[str]
) -> dict[str, list[QueuedWrite]]:
    """``key -> pending writes``, oldest first, of the records among ``keys``; a write the
    platform queued (it has a receipt) was sent already and is never replaced."""
    queued: dict[str, list[QueuedWrite]] = {}
    for row_id, key, op, fields in conn.execute(
        "SELECT id, key, op, fields FROM outbox WHERE connection = ? AND entity = ?"
        f" AND status = 'pending' AND receipt IS NULL AND {_IN_KEYS} ORDER BY id",
        (connection, entity, to_json(keys)),
    ):
        queued.setdefault(key, []).append((row_id, op, fields))
    return queued


def replace_writes(
    txn: Transaction,
    stale: Iterable[int],
    writes: Iterable[tuple[str, str, str, str, str, str]],
) -> None:
    """Drop the ``stale`` pending rows and queue ``writes``:
    ``(connection, entity, key, op, fields JSON, idempotency key)``."""
    txn.conn.executemany("DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id in stale])
    txn.conn.executemany(
        "INSERT INTO outbox (connection, entity, key, op, fields, idempotency_key, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*write, txn.now) for write in writes],
    )


def due_writes(conn: sqlite3.Connection, connection: str, now: float, limit: int) -> list[DueRow]:
    """Pending rows whose next attempt is due at ``now``, oldest first, with the connection's
    external id and base of each record. A write waits while an older one of the same record
    is queued by the platform (its base is not known until that one is confirmed)."""
    rows = conn.execute(
        "SELECT o.id, o.entity, o.key, o.op, o.fields, o.idempotency_key, o.attempts,"
        " m.external_id, m.base, o.receipt, m.key IS NOT NULL, r.fields FROM outbox o"
        " LEFT JOIN id_map m ON m.connection = o.connection AND m.entity = o.entity"
        " AND m.key = o.key LEFT JOIN records r ON r.entity = o.entity AND r.key = o.key"
        " WHERE o.connection = ? AND o.status = 'pending' AND o.next_attempt_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM outbox q WHERE q.connection = o.connection"
        " AND q.entity = o.entity AND q.key = o.key AND q.status = 'pending'"
        " AND q.receipt IS NOT NULL AND q.id < o.id) ORDER BY o.id LIMIT ?",
        (connection, now, limit),
    ).fetchall()
    return [
        (*row[:8], _held(row[8], record) if held else None, row[9]) for *row, held, record in rows
    ]


def _held(stored: str | None, record: str | None) -> dict[str, Any]:
    return decode_base(stored, None if record is None else orjson.loads(record))


def next_due_at(conn: sqlite3.Connection, connection: str) -> float | None:
    """When the connection's earliest pending row is due, or ``None`` when nothing is pending."""
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM outbox WHERE connection = ? AND status = 'pending'",
        (connection,),
    ).fetchone()
    return None if row[0] is None else float(row[0])


def acknowledge(txn: Transaction, connection: str, acked: Sequence[Acknowledged]) -> None:
    """Mark rows acknowledged and make what they sent the connection's base (one statement per
    table for a whole batch: a bulk platform acknowledges tens of thousands at once). The base
    is stored as its differences from the record (``store/bases.py``)."""
    records: dict[tuple[str, str], str] = {}
    by_entity: dict[str, list[str]] = {}
    for _, entity, key, _, _ in acked:
        by_entity.setdefault(entity, []).append(key)
    for entity, keys in by_entity.items():
        for key, fields in txn.conn.execute(
            f"SELECT key, fields FROM records WHERE entity = ? AND {_IN_KEYS}",
            (entity, to_json(keys)),
        ):
            records[entity, key] = fields
    txn.conn.executemany(
        "UPDATE outbox SET status = 'acked', acked_at = ?, attempts = attempts + 1 WHERE id = ?",
        [(txn.now, row_id) for row_id, *_ in acked],
    )
    txn.conn.executemany(
        "INSERT INTO id_map (connection, entity, key, external_id, base, diverged, seen_at)"
        " VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (connection, entity, key) DO UPDATE SET"
        " external_id = coalesce(excluded.external_id, external_id), base = excluded.base",
        [
            (connection, entity, key, ext_id, _stored(base, records.get((entity, key))), txn.now)
            for _, entity, key, ext_id, base in acked
        ],
    )


def _stored(base: dict[str, Any], fields: str | None) -> str | None:
    """``id_map.base`` for the whole ``base`` against the record's fields JSON."""
    return encode_base(base, None if fields is None else orjson.loads(fields))


def reschedule(txn: Transaction, row_id: int, at: float, message: str) -> None:
    """Count a failed attempt and try the row again at ``at``."""
    txn.conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
        " WHERE id = ?",
        (at, message, row_id),
    )


def bury(txn: Transaction, row_id: int, message: str) -> None:
    """Count a last failed attempt and never send the row again on its own."""
    txn.conn.execute(
        "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
        (message, row_id),
    )


def hold_queued(
    txn: Transaction, row_id: int, receipt: str, message: str, shortest: float, longest: float
) -> None:
    """Keep a write the platform queued pending with its receipt, no attempt counted; it is
    asked about again after half its age so far, between ``shortest`` and ``longest`` seconds."""
    txn.conn.execute(
        "UPDATE outbox SET receipt = :receipt, last_error = :message,"
        " queued_at = coalesce(queued_at, :now), next_attempt_at = :now"
        " + min(:longest, max(:shortest, (:now - coalesce(queued_at, :now)) / 2)) WHERE id = :id",
        {
            "receipt": receipt,
            "message": message,
            "now": time.time(),
            "longest": longest,
            "shortest": shortest,
            "id": row_id,
        },
    )
