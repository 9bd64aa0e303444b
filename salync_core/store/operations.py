"""The bookkeeping around a sync: cursors, runs, dead letters and the request ledger."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from salync_core.store.database import Transaction, to_json, utc_now


def get_cursor(conn: sqlite3.Connection, connection: str, stream: str) -> Any:
    """The stored cursor of a stream, or ``None`` when it was never synced."""
    row = conn.execute(
        "SELECT cursor FROM cursors WHERE connection = ? AND stream = ?", (connection, stream)
    ).fetchone()
    return None if row is None else orjson.loads(row[0])


def set_cursor(txn: Transaction, connection: str, stream: str, cursor: Any) -> None:
    txn.conn.execute(
        "INSERT INTO cursors (connection, stream, cursor, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (connection, stream) DO UPDATE SET cursor = excluded.cursor,"
        " updated_at = excluded.updated_at",
        (connection, stream, to_json(cursor), txn.now),
    )


def add_dead_letters(
    txn: Transaction,
    connection: str,
    stream: str,
    page: str,
    rejects: Iterable[tuple[Any, str]],
    run_id: int | None,
) -> int:
    """Keep rejected raw items with the reason; returns how many."""
    rows = [
        (connection, stream, page, _raw_text(raw), reason, run_id, txn.now)
        for raw, reason in rejects
    ]
    txn.conn.executemany(
        "INSERT INTO dead_letters (connection, stream, page, raw, reason, run_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def _raw_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw
    try:
        return orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(raw)


def start_run(conn: sqlite3.Connection, connection: str, kind: str) -> int:
    """Record a run as ``running``; its stats hold the process id until it finishes, so a run
    whose process died is told apart from one still going (``salync status``)."""
    cursor = conn.execute(
        "INSERT INTO runs (connection, kind, started_at, stats) VALUES (?, ?, ?, ?)",
        (connection, kind, utc_now(), to_json({"pid": os.getpid()})),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def finish_run(
    conn: sqlite3.Connection, run_id: int, status: str, stats: Mapping[str, Any], error: str | None
) -> None:
    conn.execute(
        "UPDATE runs SET finished_at = ?, status = ?, stats = ?, error = ? WHERE id = ?",
        (utc_now(), status, to_json(stats), error, run_id),
    )


def add_usage(txn: Transaction, connection: str, usage: Mapping[str, Mapping[str, int]]) -> None:
    """Add request counters, by UTC day, to the connection's ledger."""
    txn.conn.executemany(
        "INSERT INTO ledger (connection, day, requests, throttled, retries, bytes_in, bytes_out)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (connection, day) DO UPDATE SET"
        " requests = requests + excluded.requests, throttled = throttled + excluded.throttled,"
        " retries = retries + excluded.retries, bytes_in = bytes_in + excluded.bytes_in,"
        " bytes_out = bytes_out + excluded.bytes_out",
        [
            (
                connection,
                day,
                u.get("requests", 0),
                u.get("throttled", 0),
                u.get("retries", 0),
                u.get("bytes_in", 0),
                u.get("bytes_out", 0),
            )
            for day, u in usage.items()
        ],
    )


def requests_on(conn: sqlite3.Connection, connection: str, day: str) -> int:
    """Requests the ledger counts for a connection on a UTC day (``YYYY-MM-DD``)."""
    row = conn.execute(
        "SELECT requests FROM ledger WHERE connection = ? AND day = ?", (connection, day)
    ).fetchone()
    return 0 if row is None else int(row[0])
