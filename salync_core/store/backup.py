"""Consistent copies of an account's SQLite files, to move an account or to back it up.

A mirror in WAL mode keeps committed pages in its ``-wal`` file until a checkpoint, so a plain
``cp`` of ``salync.db`` can miss committed transactions or catch a half-written page. SQLite's
online backup API copies a live database as of one transaction, while writers go on.

An account has two such files: the inbox (webhook deliveries not yet applied) and the mirror.
:func:`backup_mirror` copies the inbox *first*: an event applied between the two copies is then
pending in the inbox copy and already in the mirror copy's ledger (``webhook_events``), so it is
skipped when applied again, never lost. See ``docs/scaling.md`` (moving an account).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from salync_core.errors import StoreError
from salync_core.store.inbox import inbox_path


def backup_database(source: Path, destination: Path) -> None:
    """Copy the SQLite database ``source`` to ``destination`` (a new file, mode 0600) as of
    one transaction, with SQLite's online backup API."""
    if destination.exists():
        raise StoreError(f"{destination}: already exists; copy to a new path")
    try:
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        reading = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            writing = sqlite3.connect(destination)
            try:
                reading.backup(writing)  # one step: one read transaction, a consistent copy
            finally:
                writing.close()
        finally:
            reading.close()
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{source}: cannot copy to {destination}: {exc}") from exc


def backup_mirror(mirror: Path, directory: Path) -> list[Path]:
    """Copy a mirror and its inbox (when there is one) into ``directory`` under their own
    names, the inbox first; returns the files written. The lock files are not copied (they
    only say who holds a lock now); ``salync.toml`` and the secret key are the host's to
    copy."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    inbox = inbox_path(mirror)
    if inbox.is_file():
        backup_database(inbox, directory / inbox.name)
        written.append(directory / inbox.name)
    backup_database(mirror, directory / mirror.name)
    written.append(directory / mirror.name)
    return written
