"""A clock that can run faster than real time, so daily quotas and minute bursts test quickly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class ScaledClock:
    """Platform time: starts at ``start`` (default: now) and runs ``scale`` times faster.

    With ``scale=60`` a platform minute lasts one real second and a day 24 real minutes. Every
    duration the emulator reports (``Retry-After``, window resets) is in platform seconds; a
    client configured with the same ``time_scale`` divides them back into real seconds.
    """

    def __init__(self, scale: float = 1.0, start: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._origin_real = time.monotonic()
        self._origin = (start or datetime.now(UTC)).timestamp()

    def time(self) -> float:
        """Platform time as a UNIX timestamp."""
        return self._origin + (time.monotonic() - self._origin_real) * self.scale

    def now(self) -> datetime:
        """Platform time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Jump platform time forward (tests: "the next day")."""
        self._origin += seconds

    def seconds_to_midnight(self) -> float:
        """Platform seconds until the next midnight UTC."""
        now = self.now()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - now).total_seconds()
