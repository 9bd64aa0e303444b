"""Which webhook events the mirror has applied (``webhook_events``), written in the event's
own page transaction so that an event is applied once however often it is delivered, whichever
process applies it, and whatever crashed in between."""

from __future__ import annotations

import sqlite3

from salync_core.store.database import Transaction


def claim_event(txn: Transaction, connection: str, event_id: str) -> bool:
    """Record the event as applied; ``False`` if the mirror had applied it already."""
    cursor = txn.conn.execute(
        "INSERT OR IGNORE INTO webhook_events (connection, event_id, received_at) VALUES (?, ?, ?)",
        (connection, event_id, txn.now),
    )
    return cursor.rowcount == 1


def is_applied(conn: sqlite3.Connection, connection: str, event_id: str) -> bool:
    """Whether the mirror has applied the event (a read; the claim is what counts)."""
    row = conn.execute(
        "SELECT 1 FROM webhook_events WHERE connection = ? AND event_id = ?",
        (connection, event_id),
    ).fetchone()
    return row is not None
