"""When each connection of an account is next due (pure: facts in, times out).

A connection is due ``interval`` seconds after its last sync started (a full round: webhook
events drained, the platform read, changes pushed); at once when it never synced; at once for a
short round when webhook events wait for it (they are applied, then what they changed is pushed:
a burst of events never turns into whole-catalog reads) or local edits wait to be pushed; not
before the resume time of a daily quota that paused it (waiting work does not override a
quota); never while it needs a reconnect (it is parked until someone runs ``salync connect``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from attrs import frozen

from salync_core.store.schedule import MirrorSchedule


@frozen
class ConnectionDue:
    name: str
    due_at: float | None
    """UNIX time; ``None``: parked (needs a reconnect)."""
    why: str


def parse_time(text: str | None) -> float | None:
    """A stored ISO time (``...Z`` or ``+00:00``) as UNIX time, ``None`` if unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def connections_due(
    connections: Sequence[str],
    schedule: MirrorSchedule,
    inbox: Mapping[str, int],
    interval: float,
    now: float,
) -> list[ConnectionDue]:
    """Each connection's next due time and why."""
    found: list[ConnectionDue] = []
    for name in connections:
        if name in schedule.needs_reconnect:
            found.append(ConnectionDue(name, None, "needs reconnect"))
            continue
        last = schedule.last_sync.get(name)
        if last is None:
            found.append(ConnectionDue(name, now, "never synced"))
            continue
        paused = parse_time(last.paused_until) if last.status == "paused" else None
        if paused is not None:
            found.append(ConnectionDue(name, paused, "paused by its daily quota"))
            continue
        started = parse_time(last.started_at) or now
        if started + interval <= now:
            found.append(ConnectionDue(name, started + interval, "interval"))
        elif inbox.get(name):  # apply the events now; the platform is read at the interval
            found.append(ConnectionDue(name, now, "webhook events"))
        elif name in schedule.local_waiting:  # a push, early
            found.append(ConnectionDue(name, now, "local edits"))
        else:
            found.append(ConnectionDue(name, started + interval, "interval"))
    return found


def next_due(due: Sequence[ConnectionDue]) -> float | None:
    """The earliest due time of an account, ``None`` if every connection is parked."""
    times = [d.due_at for d in due if d.due_at is not None]
    return min(times) if times else None
