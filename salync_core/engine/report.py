"""What a sync, reconcile or push run reports: per stream, per connection, and the problems."""

from __future__ import annotations

from typing import Any

from attrs import Factory, asdict, define

from salync_core.store.mirror import ApplyStats


@define
class Problem:
    """Something that went wrong, said plainly: where, and what."""

    connection: str
    stream: str
    message: str
    page: str = ""
    fatal: bool = False
    """The connection cannot go on (bad credentials, unreachable): later streams are skipped."""

    def __str__(self) -> str:
        message = self.message.removeprefix(f"{self.connection}: ")
        if not self.stream and message.startswith(f"[connections.{self.connection}]"):
            return message  # a configuration message names its connection already
        where = f"{self.connection}/{self.stream}" if self.stream else self.connection
        page = f" (page {self.page})" if self.page and self.page not in message else ""
        return f"{where}{page}: {message}"


@define
class StreamReport:
    """One stream of one connection."""

    stream: str
    pages: int = 0
    applied: ApplyStats = Factory(ApplyStats)
    rejected: int = 0
    deleted: int = 0
    missing_fetched: int = 0
    skipped: str = ""
    """Why the stream was not fetched (covered by another stream's full pass, not listable)."""
    finished: bool = False
    """Its pass was read to the end in this run (not stopped by an error, a quota, a cancel)."""


@define
class RunReport:
    """One connection's run (a sync, a reconcile, a push)."""

    connection: str
    kind: str = "sync"
    streams: list[StreamReport] = Factory(list)
    problems: list[Problem] = Factory(list)
    requests: int = 0
    seconds: float = 0.0
    paused_until: str | None = None
    """Set when a daily quota stopped the run; it resumes from its cursors after this time."""
    pushed: int = 0
    push_failed: int = 0
    cancelled: bool = False
    """Stopped from outside (Ctrl-C, SIGTERM, a host's cancel scope) at a committed page."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.cancelled

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.problems:
            return "failed"
        return "paused" if self.paused_until else "ok"

    def stream(self, name: str) -> StreamReport:
        for report in self.streams:
            if report.stream == name:
                return report
        report = StreamReport(name)
        self.streams.append(report)
        return report

    def totals(self) -> ApplyStats:
        total = ApplyStats()
        for report in self.streams:
            total.add(report.applied)
        return total

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [str(p) for p in self.problems]
        data["status"] = self.status
        return data
