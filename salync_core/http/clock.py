"""The platform's clock as the client sees it: time-scaled, and set by the server's ``Date``.

Two readings serve two purposes:

* :meth:`PlatformClock.elapsed` is monotonic platform seconds since the client started. Rate
  windows use it, so a correction of the wall-clock estimate never stretches or shrinks one.
* :meth:`PlatformClock.time` is the platform's UNIX time: the local UTC clock at start, run
  ``scale`` times faster, plus an offset learnt from ``Date`` headers. The day boundary of a
  daily quota, ``X-RateLimit-Reset`` and HTTP-date ``Retry-After`` values are read against it,
  so a client and a time-scaled emulator agree on when the day rolls over.

A ``Date`` header has one-second resolution and is stamped somewhere between our send and our
receipt, so at receipt the server's time lies in ``[date, date + 1 + round trip]``. The offset
moves only when the estimate falls outside that interval, and then to its nearest edge: no
jitter from every response, and a wrong clock is corrected by the first answer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class PlatformClock:
    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be positive")
        self.scale = scale
        self._start_real = time.monotonic()
        self._start_wall = time.time()

    def elapsed(self) -> float:
        """Monotonic platform seconds since this clock was made."""
        return (time.monotonic() - self._start_real) * self.scale

    def time(self) -> float:
        """Platform UNIX time (the server's, once a ``Date`` header has been seen)."""
        return self._start_wall + self.elapsed()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def next_midnight(self) -> float:
        """Platform UNIX time of the next midnight UTC."""
        day = self.now().date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()

    def real_seconds(self, platform_seconds: float) -> float:
        """How long ``platform_seconds`` last in real time."""
        return platform_seconds / self.scale

    def observe(self, server_date: datetime, sent: float, received: float) -> float:
        """Correct the estimate with a ``Date`` header seen on an answer sent/received at these
        :meth:`elapsed` readings; returns the correction in platform seconds."""
        low = server_date.timestamp()
        high = low + 1.0 + (received - sent)
        estimate = self._start_wall + received
        correction = max(low - estimate, 0.0) + min(high - estimate, 0.0)
        self._start_wall += correction
        return correction
