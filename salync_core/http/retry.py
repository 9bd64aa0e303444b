"""How long to wait before sending again: exponential backoff with full jitter, and Retry-After.

Backoff durations are the client's own policy, in real seconds. ``Retry-After`` is the
platform's, in platform seconds; the client divides it by its time scale. Errors spend a count
of attempts; 429s spend a budget of waiting time (:attr:`RetryPolicy.throttle_budget`).
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from email.utils import parsedate_to_datetime

from attrs import frozen


@frozen
class RetryPolicy:
    """Bounds on retrying one request (durations in real seconds)."""

    attempts: int = 5
    """Attempts in all, the first one included."""
    base: float = 0.5
    """The first backoff ceiling, and the least wait after a 429 without a usable Retry-After."""
    cap: float = 30.0
    """The largest backoff ceiling."""
    max_wait: float = 120.0
    """The longest we sleep for one Retry-After; a longer one ends the request (quota signal
    or :class:`~salync_core.errors.RateLimitedError`) instead of holding a sync for hours."""
    throttle_budget: float = 300.0
    """The longest one request waits in all for 429s. A 429 says "later", not "broken", so it
    does not spend ``attempts`` (a burst of five is waited out); this bounds an endless one by
    time instead of by count."""


def backoff(policy: RetryPolicy, retry: int, rng: random.Random, floor: float = 0.0) -> float:
    """Full jitter: uniform between ``floor`` and ``min(cap, base * 2**retry)`` real seconds.

    Full jitter spreads concurrent clients apart best (AWS Architecture Blog, "Exponential
    Backoff And Jitter"); a 429 passes ``floor=base`` so it can never turn into a hot loop.
    """
    ceiling = min(policy.cap, policy.base * 2 ** min(retry, 32))
    return rng.uniform(floor, max(floor, ceiling))


def parse_retry_after(value: str | None, server_now: float) -> float | None:
    """Platform seconds to wait from a ``Retry-After`` header, or ``None`` if it is unusable.

    Accepts delay-seconds and HTTP dates (measured against ``server_now``, platform UNIX time).
    Zero, negative, non-finite and unparseable values are unusable: the caller falls back to
    backoff rather than trusting them into a hot loop.
    """
    if not value or not value.strip():
        return None
    seconds = _as_seconds(value.strip())
    if seconds is None:
        seconds = _as_date(value.strip(), server_now)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


def _as_seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _as_date(value: str, server_now: float) -> float | None:
    try:
        when: datetime = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - server_now
