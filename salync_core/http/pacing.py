"""Pacing: a slot is acquired before every request so a sync inside the limits never sees a 429.

Three sources of limits are combined by taking the stricter (the longest wait):

* the platform's declared :class:`~salync_core.platform.Limits`: one sliding log per window,
  and a daily count (seeded with the requests already made today) that resets at midnight UTC
  in platform time;
* ``X-RateLimit-Limit/Remaining/Reset`` headers, believed only when they are sane; for a
  ``leaky`` bucket (:attr:`Limits.bucket`) the reset is when the bucket is empty again, so the
  remaining count grows steadily until then (the leak rate is what the headers imply:
  ``(limit - remaining) / (reset - now)``) and a request goes as soon as one unit has leaked;
* ``X-RateLimit-Burst-Limit/-Burst-Remaining/-Burst-Reset``, a fixed window (see
  :class:`BurstWindow`): while one is known it replaces the declared sliding log of the same
  size, so every request the server's window still admits goes now instead of when the
  stricter sliding estimate allows;
* a hold after a 429, so concurrent requests do not all run into the same wall.

A slot in a sliding log is stamped when its request *completes*, not when it starts. The
server counts a request when it arrives, which is some time after we send it and before we
hear back; stamping at completion is the latest that arrival can be, so the window we keep is
never ahead of the server's, whatever the latency. A slot in flight blocks its window.

Everything here is in platform seconds (see :mod:`salync_core.http.clock`).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

import anyio
from attrs import define

from salync_core.errors import QuotaExhausted, RateLimitedError
from salync_core.http.clock import PlatformClock
from salync_core.platform import Limits, Window

log = logging.getLogger("salync.http")

DAY = 86400.0
RESET_TOLERANCE = 300.0
"""Platform seconds within which a reset time "points at" midnight UTC or a header reset."""
CLOCK_MARGIN = 1.0
"""Platform seconds added to a wait for a server-clock instant: a ``Date`` header (our clock
estimate) and ``X-RateLimit-Reset`` both have one-second resolution."""


@define
class Slot:
    stamp: float = math.inf
    """:meth:`PlatformClock.elapsed` at completion; infinite while the request is in flight."""


class SlidingLog:
    """At most ``window.requests`` slots whose stamps are within ``window.seconds``."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self._slots: list[Slot] = []

    def wait(self, now: float) -> float:
        """Platform seconds until a slot is free (infinite if every slot is in flight)."""
        self._slots = [s for s in self._slots if s.stamp + self.window.seconds > now]
        if len(self._slots) < self.window.requests:
            return 0.0
        return min(s.stamp for s in self._slots) + self.window.seconds - now

    def take(self, slot: Slot) -> None:
        self._slots.append(slot)


@define
class HeaderBucket:
    """The bucket a server describes with ``X-RateLimit-*`` headers."""

    limit: int
    remaining: int
    reset_at: float
    """Platform UNIX time."""
    daily: bool
    observed_at: float = 0.0
    """Platform UNIX time of the answer that described it."""
    leak: float = 0.0
    """Requests per platform second that free up before the reset (a leaky bucket)."""

    def available(self, now: float) -> float:
        """Requests the bucket admits at ``now`` (a leaky bucket refills as it drains)."""
        if not self.leak:
            return self.remaining
        return min(self.limit, self.remaining + (now - self.observed_at) * self.leak)


def parse_bucket(
    headers: Mapping[str, str], now: float, next_midnight: float, daily_limit: int | None
) -> HeaderBucket | None:
    """The bucket the headers describe, or ``None`` if any of them is missing or implausible:
    a lying header may cost us a 429, never a hot loop or a day-long sleep."""
    try:
        limit = int(headers["X-RateLimit-Limit"])
        remaining = int(headers["X-RateLimit-Remaining"])
        reset_at = float(headers["X-RateLimit-Reset"])
    except (KeyError, ValueError):
        return None
    if limit <= 0 or remaining < 0 or not now < reset_at <= now + DAY + RESET_TOLERANCE:
        return None
    daily = abs(reset_at - next_midnight) <= RESET_TOLERANCE or limit == daily_limit
    return HeaderBucket(limit, min(remaining, limit), reset_at, daily, now)


BURST_HEADERS = (
    "X-RateLimit-Burst-Limit",
    "X-RateLimit-Burst-Remaining",
    "X-RateLimit-Burst-Reset",
)
BURST_MARGIN = 2 * CLOCK_MARGIN
"""Platform seconds past a burst reset before the new window is used: our estimate of the
server's clock may run ahead of it by a ``Date`` header's second plus a round trip."""
BURST_HORIZON = 3600.0
"""Platform seconds: a burst window that claims to end later than this is not believed."""


@define
class BurstWindow:
    """A fixed window the server describes with ``X-RateLimit-Burst-*`` headers: ``remaining``
    requests may go now and ``limit`` come back at once at the reset.

    No public Salync source documents these headers (API-FACTS §4.1 found no rate-limit headers
    at all); they are the Salync emulator's own (its per-minute burst, aligned on the platform
    minute). A platform that does not send them is paced exactly as before."""

    limit: int
    remaining: int
    reset_at: float | None
    """Platform UNIX time; ``None`` once the window has turned and no answer has yet said
    when the new one ends."""


def parse_burst(headers: Mapping[str, str], now: float) -> BurstWindow | None:
    """The burst window the headers describe, or ``None`` if any is missing or implausible."""
    try:
        limit, remaining = (int(headers[name]) for name in BURST_HEADERS[:2])
        reset_at = float(headers[BURST_HEADERS[2]])
    except (KeyError, ValueError):
        return None
    if limit <= 0 or remaining < 0 or not now < reset_at <= now + BURST_HORIZON:
        return None
    return BurstWindow(limit, min(remaining, limit), reset_at)


class DailyCount:
    """Requests sent in the current platform day; it resets when the date changes."""

    def __init__(self, clock: PlatformClock, used: int) -> None:
        self.clock = clock
        self.day = clock.now().date()
        self.used = used

    def rebase(self) -> None:
        """The clock was corrected: the requests counted so far were on the server's today."""
        self.day = self.clock.now().date()

    def current(self) -> int:
        today = self.clock.now().date()
        if today != self.day:
            self.day, self.used = today, 0
        return self.used


class Pacer:
    """Hands out request slots for one connection."""

    def __init__(
        self,
        limits: Limits,
        clock: PlatformClock,
        *,
        connection: str,
        max_wait: float,
        requests_today: int = 0,
    ) -> None:
        self.limits, self.clock, self.connection = limits, clock, connection
        self.max_wait = max_wait
        self._logs = [SlidingLog(w) for w in limits.windows]
        self._daily = DailyCount(clock, requests_today)
        self._bucket: HeaderBucket | None = None
        self._burst: BurstWindow | None = None
        self._hold_until = 0.0
        self._exhausted_until = 0.0
        self._in_flight = 0
        self._released: anyio.Event | None = None

    async def acquire(self) -> Slot:
        """A slot for one request; raises :class:`QuotaExhausted` instead of waiting for a day,
        and :class:`RateLimitedError` instead of sleeping longer than ``max_wait``."""
        while True:
            wait = self._wait()
            if wait <= 0:
                return self._take()
            await self._sleep(wait)

    def release(self, slot: Slot) -> None:
        """The slot's request has completed (answered or failed)."""
        slot.stamp = self.clock.elapsed()
        self._in_flight -= 1
        if self._released is not None:
            self._released.set()
            self._released = None

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429, for every concurrent request)."""
        self._hold_until = max(self._hold_until, self.clock.elapsed() + seconds)

    def exhaust(self, resume_at: float) -> None:
        """The platform said the daily quota is used up until ``resume_at`` (UNIX time)."""
        self._exhausted_until = max(self._exhausted_until, resume_at)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from an answer's ``X-RateLimit-*`` headers (call before releasing its slot)."""
        now = self.clock.time()
        self._observe_burst(headers, now)
        if "X-RateLimit-Limit" not in headers:
            return  # most answers say nothing: skip working out the next midnight
        bucket = parse_bucket(headers, now, self.clock.next_midnight(), self.limits.daily)
        if bucket is None:
            return
        bucket.remaining -= max(0, self._in_flight - 1)  # sent since, not yet counted there
        old = self._bucket
        if self.limits.bucket == "leaky" and not bucket.daily:
            # empty by the reset, a whole second, read on our estimate of the server's clock
            # (up to a second and a round trip off): the margins keep the rate a floor
            drained_in = bucket.reset_at + 1 + 2 * CLOCK_MARGIN - now
            bucket.leak = (bucket.limit - bucket.remaining) / drained_in
        elif old is not None and old.reset_at > now and abs(old.reset_at - bucket.reset_at) < 1:
            bucket.remaining = min(bucket.remaining, old.remaining)
        self._bucket = bucket

    def _observe_burst(self, headers: Mapping[str, str], now: float) -> None:
        burst = parse_burst(headers, now)
        if burst is None:
            return
        burst.remaining -= max(0, self._in_flight - 1)  # sent since, not yet counted there
        old, reset_at = self._burst, burst.reset_at or 0.0
        if old is not None and old.reset_at is not None and abs(old.reset_at - reset_at) < 1:
            burst.remaining = min(burst.remaining, old.remaining)  # an earlier answer, same window
        self._burst = burst

    def clock_corrected(self, correction: float) -> None:
        """A ``Date`` header moved the platform clock by ``correction`` seconds; a large move
        (a different server clock, not drift) re-dates today's count instead of resetting it."""
        if abs(correction) > RESET_TOLERANCE:
            self._daily.rebase()

    def points_at_reset(self, resume_at: float) -> bool:
        """Whether a wait until ``resume_at`` is a daily quota's (midnight or a header reset)."""
        resets = [self.clock.next_midnight()]
        if self._bucket is not None:
            resets.append(self._bucket.reset_at)
        return any(abs(resume_at - reset) <= RESET_TOLERANCE for reset in resets)

    # internals --------------------------------------------------------------------------

    def _wait(self) -> float:
        self._check_quota()
        now = self.clock.elapsed()
        waits = [self._hold_until - now, self._bucket_wait()]
        burst = self._burst_wait()
        if burst is not None:
            waits.append(burst)
        # a known burst window is the server's own count of the window the plan declares
        replaced = self._burst.limit if self._burst is not None else None
        waits.extend(log.wait(now) for log in self._logs if log.window.requests != replaced)
        return max(waits)

    def _burst_wait(self) -> float | None:
        """Platform seconds until the burst window admits a request; ``None`` when no burst
        window is known (the declared sliding logs pace alone)."""
        burst, now = self._burst, self.clock.time()
        if burst is None:
            return None
        if burst.reset_at is not None and burst.reset_at + BURST_MARGIN <= now:
            # a new window: a request still in flight may yet arrive and be counted in it
            burst.remaining, burst.reset_at = burst.limit - self._in_flight, None
        if burst.remaining >= 1:
            return 0.0
        if burst.reset_at is not None:
            return self._limited_wait(burst.reset_at + BURST_MARGIN - now)
        if self._in_flight:
            return math.inf  # the next answer says when this window ends
        self._burst = None  # no answer said: the declared windows pace again
        return None

    def _limited_wait(self, wait: float) -> float:
        if self.clock.real_seconds(wait) > self.max_wait:
            raise RateLimitedError(
                f"the server's rate limit resets in {wait:.0f} s, longer than max_wait",
                connection=self.connection,
                status=429,
            )
        return wait

    def _check_quota(self) -> None:
        now = self.clock.time()
        if now < self._exhausted_until:
            self._stop(self._exhausted_until)
        daily = self.limits.daily
        if daily is not None and self._daily.current() >= daily:
            self._stop(self.clock.next_midnight())

    def _bucket_wait(self) -> float:
        bucket, now = self._bucket, self.clock.time()
        if bucket is None or bucket.available(now) >= 1 or bucket.reset_at + CLOCK_MARGIN <= now:
            return 0.0
        if bucket.leak:
            return (1 - bucket.available(now)) / bucket.leak
        if bucket.daily:
            self._stop(bucket.reset_at)
        return self._limited_wait(bucket.reset_at + CLOCK_MARGIN - now)

    def _stop(self, resume_at: float) -> None:
        self._exhausted_until = max(self._exhausted_until, resume_at)
        raise QuotaExhausted(self.connection, datetime.fromtimestamp(resume_at, UTC))

    def _take(self) -> Slot:
        slot = Slot()
        for window in self._logs:
            window.take(slot)
        self._daily.used += 1
        if self._bucket is not None:
            self._bucket.remaining -= 1
        if self._burst is not None:
            self._burst.remaining -= 1
        self._in_flight += 1
        return slot

    async def _sleep(self, wait: float) -> None:
        if self._released is None:
            self._released = anyio.Event()
        event = self._released
        timeout = self.clock.real_seconds(wait) if math.isfinite(wait) else None
        log.debug("%s: pacing, waiting %.3f s for a request slot", self.connection, timeout or 0)
        with anyio.move_on_after(timeout):
            await event.wait()

    def idle(self) -> bool:
        """Whether forgetting this pacer loses nothing a new one would not know: no request
        in flight, no hold or quota pause ahead, every window's slots expired, no daily count
        and no bucket or burst window the server described still running."""
        now, wall = self.clock.elapsed(), self.clock.time()
        return (
            self._in_flight == 0
            and self._hold_until <= now
            and self._exhausted_until <= wall
            and all(log.wait(now) == 0 and not log._slots for log in self._logs)
            and (self.limits.daily is None or self._daily.current() == 0)
            and (self._bucket is None or self._bucket.reset_at <= wall)
            and (self._burst is None or (self._burst.reset_at or 0.0) <= wall)
        )


PacerKey = tuple[str, str, str]
"""(platform, base URL, credential fingerprint)."""


def credential_fingerprint(secret: str | None) -> str:
    """A short hash naming a credential without revealing it (never the secret itself)."""
    if not secret:
        return "anonymous"
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class PacerRegistry:
    """One pacer per (platform, base URL, credential) for every client made while it is
    active (:data:`SHARED_PACERS`): accounts of a fleet that share an API key, or one store's
    bucket, then draw from one set of windows and one daily count, as the server counts them.
    Clients of different credentials keep their own pacers, as before."""

    def __init__(self) -> None:
        self._pacers: dict[PacerKey, Pacer] = {}

    def __len__(self) -> int:
        return len(self._pacers)

    def pacer(self, key: PacerKey, make: Callable[[], Pacer]) -> Pacer:
        found = self._pacers.get(key)
        if found is None:
            found = self._pacers[key] = make()
        return found

    def prune(self) -> int:
        """Forget the pacers with nothing left to remember (see :meth:`Pacer.idle`), so idle
        accounts cost nothing here; returns how many were forgotten."""
        idle = [key for key, pacer in self._pacers.items() if pacer.idle()]
        for key in idle:
            del self._pacers[key]
        return len(idle)


SHARED_PACERS: ContextVar[PacerRegistry | None] = ContextVar("salync_shared_pacers", default=None)
"""The registry clients made in this context share pacers through (``None``: each client has
its own, the single-account default)."""


def shared_pacer(
    platform: str, base_url: str, secret: str | None, make: Callable[[], Pacer]
) -> Pacer:
    """The pacer of this (platform, base URL, credential) in the active registry, else a new one."""
    registry = SHARED_PACERS.get()
    if registry is None:
        return make()
    return registry.pacer((platform, base_url, credential_fingerprint(secret)), make)
