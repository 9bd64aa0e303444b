"""The fleet's schedule: one small entry per account, and which account goes next.

Fairness: an account holds at most one slot at a time, and among the accounts that are due the
one due longest goes first (ties: the one run least recently). An account that finishes and is
due again at once is due *now*, later than every account already waiting, so a big account
never runs twice while a small one that was due waits.

An entry is all an idle account costs: no engine, store, HTTP session or parsed configuration.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from attrs import define

from salync_core.fleet.account import Account
from salync_core.store.inbox import inbox_path

NEVER = math.inf


@define(slots=True)
class Entry:
    """One account's place in the schedule."""

    account: Account
    mirror: Path | None = None
    """Where its mirror is (known once its configuration was read)."""
    due_at: float = 0.0
    """UNIX time it next wants a run; :data:`NEVER` while parked (a reconnect, a bad config)."""
    last_run: float = 0.0
    running: bool = False
    status: str = "new"
    problems: tuple[str, ...] = ()
    runs: int = 0
    stamp: int = 0
    """The files' write stamp when last looked at (:func:`write_stamp`): when it changes while
    the account waits, it may have local edits, webhook events or a new configuration."""

    @property
    def parked(self) -> bool:
        return self.due_at == NEVER


def write_stamp(account: Account, mirror: Path | None) -> int:
    """A number that changes when the configuration, the mirror or the inbox beside it is
    written (their modification times, WAL files included): a few ``stat`` calls."""
    paths = [account.config_path]
    if mirror is not None:
        inbox = inbox_path(mirror)
        paths += [mirror, _wal(mirror), inbox, _wal(inbox)]
    return hash(tuple(_mtime(path) for path in paths))


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def next_up(entries: list[Entry], now: float, limit: int) -> list[Entry]:
    """Up to ``limit`` due accounts not running, the longest-waiting first."""
    due = [e for e in entries if not e.running and e.due_at <= now]
    due.sort(key=lambda e: (e.due_at, e.last_run, e.account.name))
    return due[: max(0, limit)]
