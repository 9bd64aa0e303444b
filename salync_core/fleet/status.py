"""``salync fleet status``: each account's last run, next due time and problems, read-only.

Nothing here creates or writes a file: a mirror not created yet is "never run".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from salync_core.config import load_config
from salync_core.errors import SalyncError
from salync_core.fleet.account import Account
from salync_core.fleet.due import connections_due, iso, next_due
from salync_core.store.schedule import inbox_waiting, mirror_schedule


def fleet_status(accounts: Sequence[Account], now: float | None = None) -> list[dict[str, Any]]:
    """One JSON-ready row per account (never a secret)."""
    moment = time.time() if now is None else now
    return [account_status(account, moment) for account in accounts]


def account_status(account: Account, now: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "account": account.name,
        "last_run": None,
        "last_status": "never run",
        "next_due": None,
        "paused_until": None,
        "needs_reconnect": [],
        "waiting": {"webhook_events": 0, "local_edits": []},
        "problems": [],
    }
    try:
        config = load_config(account.config_path)
        names = list(config.connections)
        pushing = [n for n, c in config.connections.items() if c.push]
        schedule = mirror_schedule(config.store_path, names, pushing)
        inbox = inbox_waiting(config.store_path)
    except SalyncError as exc:
        row["last_status"] = "failed"
        row["problems"] = [" ".join(str(exc).split())]
        return row
    except Exception as exc:  # a damaged mirror: one line, the other accounts go on
        row["last_status"] = "failed"
        row["problems"] = [f"{account.name}: cannot read its mirror ({type(exc).__name__})"]
        return row
    due = connections_due(names, schedule, inbox, config.sync_interval, now)
    runs = sorted(schedule.last_sync.items(), key=lambda item: item[1].started_at)
    if runs:
        row["last_run"] = runs[-1][1].started_at
        statuses = {last.status for _, last in runs}
        row["last_status"] = next(
            (s for s in ("failed", "paused", "running", "cancelled") if s in statuses), "ok"
        )
    row["next_due"] = iso(next_due(due))
    paused = [last.paused_until for _, last in runs if last.status == "paused"]
    row["paused_until"] = max((p for p in paused if p), default=None)
    row["needs_reconnect"] = sorted(schedule.needs_reconnect)
    row["waiting"] = {
        "webhook_events": sum(inbox.get(n, 0) for n in names),
        "local_edits": sorted(schedule.local_waiting),
    }
    problems = [f"{name}: {last.error}" for name, last in runs if last.error]
    problems += [f"{name}: {why}" for name, why in sorted(schedule.needs_reconnect.items())]
    row["problems"] = [" ".join(p.split()) for p in problems]
    return row
