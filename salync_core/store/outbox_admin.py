"""What a person does with what went wrong: list the outbox and the dead letters, and send or
apply them again once the cause is fixed (``salync outbox``, ``salync dead-letters``).

A rejected push is buried (``status = 'dead'``) and never planned again on its own, because the
record did not change. :func:`requeue_dead` makes it pending again with its own idempotency key
(a write the platform refused was not applied, so the retry is the same write); if the record
changed meanwhile, the next plan replaces it with the current values as it does for any pending
write. A push's dead letter (stream ``push:ENTITY``, page = the record's key) goes away with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from salync_core.store.database import Transaction

PUSH_PREFIX = "push:"
"""Dead letters of rejected pushes have stream ``push:ENTITY`` and the record's key as page."""

_OUTBOX_COLUMNS = (
    "id",
    "connection",
    "entity",
    "key",
    "op",
    "fields",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "acked_at",
)
_LETTER_COLUMNS = ("id", "connection", "stream", "page", "reason", "raw", "run_id", "created_at")


def _where(
    filters: Sequence[tuple[str, Any]], ids: Sequence[int] | None = None
) -> tuple[str, list[Any]]:
    clauses = [f"{column} = ?" for column, value in filters if value is not None]
    params: list[Any] = [value for _, value in filters if value is not None]
    if ids:
        clauses.append(f"id IN ({','.join('?' * len(ids))})")
        params.extend(ids)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_outbox(
    conn: sqlite3.Connection,
    connection: str | None = None,
    statuses: Sequence[str] = ("pending", "dead"),
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Outbox rows of the given statuses, oldest first."""
    where, params = _where([("connection", connection)])
    marks = ",".join("?" * len(statuses))
    where += (" AND" if where else " WHERE") + f" status IN ({marks})"
    rows = conn.execute(
        f"SELECT {', '.join(_OUTBOX_COLUMNS)} FROM outbox{where} ORDER BY id LIMIT ?",
        (*params, *statuses, limit),
    ).fetchall()
    return [dict(zip(_OUTBOX_COLUMNS, row, strict=True)) for row in rows]


def requeue_dead(txn: Transaction, connection: str | None, ids: Sequence[int] = ()) -> int:
    """Make dead outbox rows (all of them, or of one connection, or these ids) pending again,
    due now, and drop their dead letters; returns how many."""
    where, params = _where([("connection", connection)], ids)
    where += (" AND" if where else " WHERE") + " status = 'dead'"
    rows = txn.conn.execute(
        f"SELECT id, connection, entity, key FROM outbox{where}", params
    ).fetchall()
    txn.conn.executemany(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0,"
        " last_error = NULL WHERE id = ?",
        [(row_id,) for row_id, *_ in rows],
    )
    txn.conn.executemany(
        "DELETE FROM dead_letters WHERE connection = ? AND stream = ? AND page = ?",
        [(name, PUSH_PREFIX + entity, key) for _, name, entity, key in rows],
    )
    return len(rows)


def requeue_push_letter(txn: Transaction, letter: dict[str, Any]) -> int:
    """Re-queue the dead push a push dead letter stands for; returns how many rows."""
    entity = str(letter["stream"]).removeprefix(PUSH_PREFIX)
    ids = [
        row_id
        for (row_id,) in txn.conn.execute(
            "SELECT id FROM outbox WHERE connection = ? AND entity = ? AND key = ?"
            " AND status = 'dead'",
            (letter["connection"], entity, letter["page"]),
        )
    ]
    if not ids:  # nothing left to re-queue (already retried, or planned again since)
        forget_letters(txn, [int(letter["id"])])
        return 0
    return requeue_dead(txn, str(letter["connection"]), ids)


def dead_letters(
    conn: sqlite3.Connection,
    connection: str | None = None,
    ids: Sequence[int] = (),
    limit: int | None = 100,
) -> list[dict[str, Any]]:
    """Dead letters, oldest first: all, of one connection, or these ids."""
    where, params = _where([("connection", connection)], ids)
    sql = f"SELECT {', '.join(_LETTER_COLUMNS)} FROM dead_letters{where} ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [dict(zip(_LETTER_COLUMNS, row, strict=True)) for row in conn.execute(sql, params)]


def forget_letters(txn: Transaction, ids: Sequence[int]) -> None:
    txn.conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])
