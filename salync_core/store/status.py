"""Read-only summaries of the mirror for ``salync status`` and host apps."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from salync_core.errors import StoreError
from salync_core.store.credentials import NEEDS_RECONNECT, stored_names
from salync_core.store.database import utc_now
from salync_core.store.failures import REBUILD_HINT, describe


def _rows(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    return list(conn.execute(sql, params))


def check_integrity(conn: sqlite3.Connection, path: Path | str) -> None:
    """SQLite's quick check of the whole file; a damaged mirror raises :class:`StoreError`
    saying what to do."""
    try:
        found = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        raise StoreError(describe(path, exc)) from exc
    if found != ["ok"]:
        raise StoreError(f"{path}: the mirror is damaged ({'; '.join(found)}); {REBUILD_HINT}")


def status(conn: sqlite3.Connection, connections: list[str]) -> dict[str, Any]:
    """Everything ``salync status`` shows, as JSON-ready data (never any secret).

    A run still marked ``running`` whose process is gone (killed outright, the machine lost
    power) is shown as ``interrupted``: it committed what it committed, page by page, and the
    next sync goes on from there."""
    today = utc_now()[:10]
    return {
        "records": {
            entity: {"live": live, "deleted": deleted}
            for entity, live, deleted in _rows(
                conn,
                "SELECT entity, sum(deleted = 0), sum(deleted) FROM records"
                " GROUP BY entity ORDER BY entity",
            )
        },
        "last_seq": _rows(conn, "SELECT value FROM meta WHERE name = 'last_seq'")[0][0],
        "tombstones": _rows(conn, "SELECT count(*) FROM tombstones")[0][0],
        "open_conflicts": _rows(conn, "SELECT count(*) FROM conflicts WHERE status = 'open'")[0][0],
        "connections": {name: _connection(conn, name, today) for name in connections},
    }


def _connection(conn: sqlite3.Connection, name: str, today: str) -> dict[str, Any]:
    last = _rows(
        conn,
        "SELECT kind, started_at, finished_at, status, stats, error FROM runs"
        " WHERE connection = ? ORDER BY id DESC LIMIT 1",
        (name,),
    )
    ledger = _rows(
        conn,
        "SELECT requests, throttled, retries, bytes_in, bytes_out FROM ledger"
        " WHERE connection = ? AND day = ?",
        (name, today),
    )
    outbox = dict(
        _rows(
            conn,
            "SELECT status, count(*) FROM outbox WHERE connection = ? GROUP BY status",
            (name,),
        )
    )
    return {
        "last_run": None
        if not last
        else {
            "kind": last[0][0],
            "started_at": last[0][1],
            "finished_at": last[0][2],
            "status": _run_status(last[0][3], orjson.loads(last[0][4])),
            "stats": orjson.loads(last[0][4]),
            "error": last[0][5],
        },
        "cursors": {
            stream: orjson.loads(cursor)
            for stream, cursor in _rows(
                conn,
                "SELECT stream, cursor FROM cursors WHERE connection = ? ORDER BY stream",
                (name,),
            )
        },
        "dead_letters": _rows(
            conn, "SELECT count(*) FROM dead_letters WHERE connection = ?", (name,)
        )[0][0],
        "requests_today": dict(
            zip(
                ("requests", "throttled", "retries", "bytes_in", "bytes_out"),
                ledger[0] if ledger else (0, 0, 0, 0, 0),
                strict=True,
            )
        ),
        "outbox": {"pending": outbox.get("pending", 0), "dead": outbox.get("dead", 0)},
        "needs_reconnect": NEEDS_RECONNECT in stored_names(conn, name),
    }


def _run_status(recorded: str, stats: dict[str, Any]) -> str:
    if recorded == "running" and not _alive(stats.get("pid")):
        return "interrupted"
    return recorded


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False  # a run recorded before runs kept their pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def dead_letters(
    conn: sqlite3.Connection, connection: str | None, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest dead letters, optionally of one connection."""
    sql = "SELECT id, connection, stream, page, reason, raw, created_at FROM dead_letters"
    params: tuple[Any, ...] = ()
    if connection:
        sql += " WHERE connection = ?"
        params = (connection,)
    keys = ("id", "connection", "stream", "page", "reason", "raw", "created_at")
    return [
        dict(zip(keys, row, strict=True))
        for row in _rows(conn, sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    ]
