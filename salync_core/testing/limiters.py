"""Server-side request limiters for emulators, all on a :class:`ScaledClock`.

Each ``hit()`` either admits a request (returns ``None``) or refuses it and returns the platform
seconds until a retry can succeed, which the emulator sends as ``Retry-After``.
"""

from __future__ import annotations

import math
from collections import deque

from salync_core.testing.clock import ScaledClock


class SlidingWindow:
    """At most ``limit`` requests in any ``seconds`` seconds (Sales Layer 2.0: 50 per 10 s)."""

    def __init__(self, limit: int, seconds: float, clock: ScaledClock) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self._hits: deque[float] = deque()

    def hit(self) -> float | None:
        now = self.clock.time()
        while self._hits and self._hits[0] <= now - self.seconds:
            self._hits.popleft()
        if len(self._hits) >= self.limit:
            return self._hits[0] + self.seconds - now
        self._hits.append(now)
        return None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - len(self._hits))


class FixedWindow:
    """At most ``limit`` requests per aligned window of ``seconds`` (a per-minute burst)."""

    def __init__(self, limit: int, seconds: float, clock: ScaledClock) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self._window = -1
        self.used = 0

    def _roll(self) -> float:
        now = self.clock.time()
        window = math.floor(now / self.seconds)
        if window != self._window:
            self._window, self.used = window, 0
        return now

    def hit(self) -> float | None:
        now = self._roll()
        if self.used >= self.limit:
            return self.reset_at - now
        self.used += 1
        return None

    @property
    def reset_at(self) -> float:
        """Platform UNIX time at which the current window ends."""
        self._roll()
        return (self._window + 1) * self.seconds

    @property
    def remaining(self) -> int:
        self._roll()
        return max(0, self.limit - self.used)


class DailyQuota(FixedWindow):
    """At most ``limit`` requests per UTC day; resets at midnight UTC."""

    def __init__(self, limit: int, clock: ScaledClock) -> None:
        super().__init__(limit, 86400.0, clock)


class LeakyBucket:
    """A bucket of ``capacity`` that leaks ``rate`` requests per second (Salla's limiter)."""

    def __init__(self, capacity: int, rate: float, clock: ScaledClock) -> None:
        self.capacity, self.rate, self.clock = capacity, rate, clock
        self.level = 0.0
        self._last = clock.time()

    def hit(self) -> float | None:
        now = self.clock.time()
        self.level = max(0.0, self.level - (now - self._last) * self.rate)
        self._last = now
        if self.level + 1 > self.capacity:
            return (self.level + 1 - self.capacity) / self.rate
        self.level += 1
        return None

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.capacity - self.level))
