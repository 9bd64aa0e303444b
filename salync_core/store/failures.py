"""SQLite's errors said as what they mean for the mirror and what to do about them.

SQLite reports a full disk, a damaged file and a lock held by another program as
``sqlite3.OperationalError`` or ``sqlite3.DatabaseError`` with a terse message; a person needs
one line that names the mirror and the next step instead of a traceback.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_ENV = "SALYNC_BUSY_TIMEOUT_MS"
"""How long (milliseconds) to wait for another program's lock on the mirror (default 10 s)."""

REBUILD_HINT = (
    "restore it from a backup, or move it aside and run `salync sync --full` to rebuild it "
    "(secrets stored with `salync secrets set` must then be set again)"
)


def busy_timeout_ms() -> int:
    """The busy timeout, from ``SALYNC_BUSY_TIMEOUT_MS`` when it is a whole number."""
    value = os.environ.get(BUSY_TIMEOUT_ENV, "")
    return int(value) if value.isdigit() else 10_000


def kind(exc: sqlite3.Error) -> str:
    """``locked``, ``full``, ``damaged`` or ``other``."""
    text = str(exc).lower()
    extended = getattr(exc, "sqlite_errorcode", None)
    code = None if extended is None else extended & 0xFF
    if "locked" in text or "busy" in text or code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return "locked"
    if "full" in text or code == sqlite3.SQLITE_FULL:
        return "full"
    if (
        "malformed" in text
        or "not a database" in text
        or "corrupt" in text
        or code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    ):
        return "damaged"
    return "other"


def describe(path: Path | str, exc: sqlite3.Error) -> str:
    """One line: which mirror, what went wrong, what to do."""
    found = kind(exc)
    if found == "locked":
        return (
            f"{path}: the mirror is locked by another program (another salync process, the "
            "host app or a database tool holding a write); try again when it is done"
        )
    if found == "full":
        return (
            f"{path}: the mirror could not be written: the disk is full ({exc}); free some "
            "space and run again (nothing of the interrupted page was applied)"
        )
    if found == "damaged":
        return f"{path}: the mirror is damaged ({exc}); {REBUILD_HINT}"
    return f"{path}: the mirror failed: {exc}"
