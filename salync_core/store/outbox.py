"""The outbox's statements: where each connection's push cursor stands, what changed since, the
writes queued for it, and their acknowledgement, retry or burial. The planning and delivery
rules live in :mod:`salync_core.engine.outbox`; this module only reads and writes rows."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import orjson

from salync_core.store.base_view import BaseView
from salync_core.store.bases import ABSENT, DELETED_MARK, decode_base, encode_base
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
    Mapping[str, Any],
    str | None,
]
"""``(id, entity, key, op, fields, idempotency key, attempts, external id, base, receipt)``;
the base is the connection's whole base, decoded when first read (empty when it holds
nothing), read-only."""
_NOTHING: Mapping[str, Any] = {}
Acknowledged = tuple[int, str, str, str | None, dict[str, Any] | None]
"""``(outbox id, entity, key, external id, fields sent)`` of an acknowledged write; ``None``
for a deletion."""
PlanningRow = tuple[dict[str, Any], bool, bool, dict[str, Any] | None]
"""``(fields, deleted, held, differences)`` of one record: whether the connection holds it,
and its stored base decoded (``None``: the base is the record's fields; see
``store/bases.py``). Only the fields named there can differ from what the connection holds."""


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
) -> Iterator[tuple[str, PlanningRow]]:
    """``(key, (fields, deleted, held, differences))`` of the mirror's records among ``keys``,
    in one query, each record's JSON decoded once. Consume each row before the next: planning
    reads tens of thousands, and holding them all decoded costs more in garbage collection
    than the decoding itself."""
    loads = orjson.loads
    for key, text, deleted, held, stored in conn.execute(
        "SELECT r.key, r.fields, r.deleted, m.key IS NOT NULL, m.base FROM records r"
        " LEFT JOIN id_map m ON m.connection = ? AND m.entity = r.entity AND m.key = r.key"
        f" WHERE r.entity = ? AND r.{_IN_KEYS}",
        (connection, entity, to_json(keys)),
    ):
        yield (
            key,
            (loads(text), bool(deleted), bool(held), None if stored is None else loads(stored)),
        )


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


def due_writes(
    conn: sqlite3.Connection, connection: str, now: float, limit: int
) -> Iterator[DueRow]:
    """Pending rows whose next attempt is due at ``now``, oldest first, with the connection's
    external id and base of each record. A write waits while an older one of the same record
    is queued by the platform (its base is not known until that one is confirmed)."""
    for *row, held, record in conn.execute(
        "SELECT o.id, o.entity, o.key, o.op, o.fields, o.idempotency_key, o.attempts,"
        " m.external_id, m.base, o.receipt, m.key IS NOT NULL, r.fields FROM outbox o"
        " LEFT JOIN id_map m ON m.connection = o.connection AND m.entity = o.entity"
        " AND m.key = o.key LEFT JOIN records r ON r.entity = o.entity AND r.key = o.key"
        " WHERE o.connection = ? AND o.status = 'pending' AND o.next_attempt_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM outbox q WHERE q.connection = o.connection"
        " AND q.entity = o.entity AND q.key = o.key AND q.status = 'pending'"
        " AND q.receipt IS NOT NULL AND q.id < o.id) ORDER BY o.id LIMIT ?",
        (connection, now, limit),
    ):
        yield (*row[:8], BaseView(row[8], record) if held else _NOTHING, row[9])


def next_due_at(conn: sqlite3.Connection, connection: str) -> float | None:
    """When the connection's earliest pending row is due, or ``None`` when nothing is pending."""
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM outbox WHERE connection = ? AND status = 'pending'",
        (connection,),
    ).fetchone()
    return None if row[0] is None else float(row[0])


def acknowledge(txn: Transaction, connection: str, acked: Sequence[Acknowledged]) -> None:
    """Mark rows acknowledged and make what they sent the connection's base: what it held,
    with the fields sent overlaid (a deletion: deleted). One statement per table for a whole
    batch: a bulk platform acknowledges tens of thousands at once. The base is stored as its
    differences from the record (``store/bases.py``), worked out from the stored differences
    and the record's values of the fields sent, never the whole base."""
    sent_by: dict[str, dict[str, tuple[str | None, dict[str, Any] | None]]] = {}
    for _, entity, key, ext_id, sent in acked:
        sent_by.setdefault(entity, {})[key] = ext_id, sent
    txn.conn.execute(
        "UPDATE outbox SET status = 'acked', acked_at = ?, attempts = attempts + 1"
        " WHERE id IN (SELECT value FROM json_each(?))",
        (txn.now, to_json([row_id for row_id, *_ in acked])),
    )
    updates, inserts = [], []
    for entity, by_key in sent_by.items():
        for key, exists, held_id, stored, record in txn.conn.execute(
            "SELECT j.value, m.key IS NOT NULL, m.external_id, m.base, r.fields FROM json_each(?) j"
            " LEFT JOIN records r ON r.entity = ? AND r.key = j.value"
            " LEFT JOIN id_map m ON m.connection = ? AND m.entity = ? AND m.key = j.value",
            (to_json(list(by_key)), entity, connection, entity),
        ):
            ext_id, sent = by_key[key]
            base = _acked_base(sent, exists, stored, record)  # decoded and dropped in turn
            if not exists:
                inserts.append((connection, entity, key, ext_id, base, txn.now))
            elif base != stored or (ext_id is not None and ext_id != held_id):
                updates.append((ext_id, base, connection, entity, key))
    txn.conn.executemany(  # an unchanged row (it held what it was sent) is not written
        "UPDATE id_map SET external_id = coalesce(?, external_id), base = ?"
        " WHERE connection = ? AND entity = ? AND key = ?",
        updates,
    )
    txn.conn.executemany(
        "INSERT INTO id_map (connection, entity, key, external_id, base, diverged, seen_at)"
        " VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (connection, entity, key) DO UPDATE SET"
        " external_id = coalesce(excluded.external_id, external_id), base = excluded.base",
        inserts,
    )


def _acked_base(
    sent: dict[str, Any] | None, held: bool, stored: str | None, record: str | None
) -> str | None:
    """``id_map.base`` once the connection holds ``sent`` (``None``: it deleted the record)
    over what it held (``held``: whether it held anything; ``stored``: its ``id_map.base``,
    against the record's fields JSON ``record``)."""
    if sent is None:
        return to_json({DELETED_MARK: True})
    diff: dict[str, Any] = {} if stored is None else orjson.loads(stored)
    if not held or record is None or DELETED_MARK in diff:  # the whole base (store/bases.py)
        fields = None if record is None else orjson.loads(record)
        return encode_base({**(decode_base(stored, fields) if held else {}), **sent}, fields)
    mirror = orjson.loads(record)
    for name, value in sent.items():
        now = mirror.get(name, diff)  # diff: a sentinel no field value can be
        if value is now or (type(value) is type(now) and value == now):
            diff.pop(name, None)  # it holds what the mirror holds
        else:
            diff[name] = value
    absent = diff.pop(ABSENT, None)
    if absent:
        absent = [name for name in absent if name not in sent]
        if absent:
            diff[ABSENT] = absent
    return to_json(diff) if diff else None


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
