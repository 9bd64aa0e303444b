"""Reads of ``id_map``, what each connection holds: its external ids and which of its records
it has delivered lately, for deletions by external id, reconciliation and sweeps."""

from __future__ import annotations

import sqlite3


def key_for_external_id(
    conn: sqlite3.Connection, connection: str, entity: str, external_id: str | None
) -> str | None:
    """The mirror's key of the record the connection calls ``external_id``, or ``None``."""
    row = conn.execute(
        "SELECT key FROM id_map WHERE connection = ? AND entity = ? AND external_id = ?",
        (connection, entity, external_id),
    ).fetchone()
    return None if row is None else str(row[0])


def unseen_since(
    conn: sqlite3.Connection, connection: str, entity: str, since: str
) -> tuple[list[str], int]:
    """Live records of ``entity`` from ``connection`` not delivered since ``since``, and how many
    live records of it the connection holds."""
    rows = conn.execute(
        "SELECT m.key, m.seen_at < ? FROM id_map m JOIN records r"
        " ON r.entity = m.entity AND r.key = m.key"
        " WHERE m.connection = ? AND m.entity = ? AND r.deleted = 0",
        (since, connection, entity),
    ).fetchall()
    return sorted(key for key, stale in rows if stale), len(rows)
