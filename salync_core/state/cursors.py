"""The cursor of an incremental stream: a watermark plus the continuation of a pass.

A *pass* reads every item changed at or after ``since`` (everything, the first time). It begins
at the platform's own time, read from the first answer's ``Date`` header, less an overlap, so
neither clock skew nor items changed while the pass runs are ever missed; re-reading a few items
is harmless because resolution is idempotent. While a pass runs, ``next`` holds where it
continues (a ``@nextLink``, a page token), so a killed sync resumes at the last committed page.
When the pass completes, its start becomes the new ``since``. ``since`` never moves backwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from attrs import evolve, frozen

from salync_core.converters import format_datetime, parse_datetime

OVERLAP = timedelta(seconds=2)
"""How far before a pass's start the next pass re-reads: covers second-resolution timestamps."""


@frozen
class WatermarkCursor:
    since: str | None = None
    """Items changed at or after this were not yet read by a completed pass (None: read all)."""
    pass_start: str | None = None
    """Where the pass in progress began; None when no pass is in progress."""
    next: str | None = None
    """Where the pass in progress continues."""

    @property
    def in_progress(self) -> bool:
        return self.pass_start is not None

    def begin(self, platform_now: datetime) -> WatermarkCursor:
        """Start a pass at the platform's time (no-op while one is in progress)."""
        if self.in_progress:
            return self
        start = platform_now - OVERLAP
        if self.since is not None:
            start = max(start, parse_datetime(self.since))
        return evolve(self, pass_start=format_datetime(start), next=None)

    def advance(self, next_token: str | None) -> WatermarkCursor:
        """After a page: continue at ``next_token``, or complete the pass when it is None."""
        if next_token is not None:
            return evolve(self, next=next_token)
        return WatermarkCursor(since=self.pass_start or self.since)

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "pass_start": self.pass_start, "next": self.next}

    @classmethod
    def from_json(cls, data: Any) -> WatermarkCursor:
        """Read a stored cursor; anything unreadable starts over from scratch."""
        if not isinstance(data, dict):
            return cls()
        values = {k: data.get(k) for k in ("since", "pass_start", "next")}
        if not all(v is None or isinstance(v, str) for v in values.values()):
            return cls()
        return cls(**values)
