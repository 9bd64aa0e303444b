"""The cursor of the ``listings`` stream: one watermark per channel, and the pass in progress.

Salync lists listing states per channel (``GET /channels/{id}/listings``), so a pass first
lists the channels, then reads each channel's listings changed since *that channel's*
watermark, one page at a time. A channel seen for the first time has no watermark and is read
whole, so a channel added later never loses the listings it had before it was first seen.
While a pass runs, ``pending`` holds the channels still to read (the current one first) and
``next`` the page token within it, so a stopped sync resumes at its last committed page. A
channel's watermark becomes the pass's start once its listings are read; watermarks never move
backwards. Pure: no I/O, like :class:`~salync_core.state.cursors.WatermarkCursor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from attrs import Factory, evolve, frozen

from salync_core.converters import format_datetime, parse_datetime
from salync_core.state.cursors import OVERLAP


@frozen
class ListingsCursor:
    since: dict[str, str] = Factory(dict)
    """Channel id -> listings changed at or after this are not yet read."""
    pass_start: str | None = None
    """Where the pass in progress began; None when no pass is in progress."""
    pending: tuple[str, ...] = ()
    """Channels the pass in progress has still to read, the current one first."""
    next: str | None = None
    """The page token within the current channel."""

    @property
    def in_progress(self) -> bool:
        return self.pass_start is not None

    @property
    def current(self) -> str | None:
        """The channel to read next, or None when no pass is in progress."""
        return self.pending[0] if self.pending else None

    def start(self, channels: Sequence[str], platform_now: datetime) -> ListingsCursor:
        """Begin a pass over ``channels`` at the platform's time (no-op while one runs).

        Watermarks of channels that no longer exist are dropped."""
        if self.in_progress:
            return self
        kept = {c: s for c, s in self.since.items() if c in channels}
        begun = format_datetime(platform_now - OVERLAP)
        return ListingsCursor(kept, begun, tuple(dict.fromkeys(channels)))._settled()

    def advance(self, next_token: str | None) -> ListingsCursor:
        """After a page of the current channel: go on at ``next_token``, or finish the channel
        (its watermark becomes the pass's start) and move to the next one."""
        if next_token is not None:
            return evolve(self, next=next_token)
        channel, rest = self.pending[0], self.pending[1:]
        assert self.pass_start is not None
        since = {**self.since, channel: _later(self.since.get(channel), self.pass_start)}
        return ListingsCursor(since, self.pass_start, rest)._settled()

    def _settled(self) -> ListingsCursor:
        """A pass with nothing left to read is complete."""
        return self if self.pending else ListingsCursor(self.since)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": dict(self.since),
            "pass_start": self.pass_start,
            "pending": list(self.pending),
            "next": self.next,
        }

    @classmethod
    def from_json(cls, data: Any) -> ListingsCursor:
        """Read a stored cursor; anything unreadable starts over from scratch."""
        if not isinstance(data, dict):
            return cls()
        since: Any = data.get("since")
        pending: Any = data.get("pending")
        scalars = (data.get("pass_start"), data.get("next"))
        valid = (
            isinstance(since, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in since.items())
            and isinstance(pending, list)
            and all(isinstance(c, str) for c in pending)
            and all(v is None or isinstance(v, str) for v in scalars)
        )
        if not valid:
            return cls()
        if scalars[0] is None:
            return cls(since)
        return cls(since, scalars[0], tuple(pending), scalars[1])._settled()


def _later(old: str | None, new: str) -> str:
    if old is None or parse_datetime(new) > parse_datetime(old):
        return new
    return old
