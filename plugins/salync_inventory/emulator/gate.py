"""Who may call, how often, and what a retried write does: keys, plans, limits, idempotency.

Documented (API-FACTS §4.1, salync.com/docs/api): Bearer API keys, several per workspace, each
revocable, revoked keys permanently invalid; no API on the Starter plan; limits per key that reset
at midnight UTC, Growth 500/day and 20/minute, Pro 10,000/day and 200/minute; over the limit a
429 with ``Retry-After`` in seconds.

Derived (API-FACTS §4.2 and this emulator):

* the error codes ``unauthorized``, ``api_key_revoked``, ``plan_not_supported``,
  ``rate_limited``; the burst bucket is an aligned 60-second window;
* ``Retry-After`` names the binding bucket: seconds to midnight when the daily quota is spent,
  otherwise seconds to the end of the minute (rounded up, at least 1, platform seconds);
* headers ``X-RateLimit-Limit/-Remaining/-Reset`` (daily quota) and
  ``X-RateLimit-Burst-Limit/-Burst-Remaining/-Burst-Reset`` (minute window); ``-Reset`` is
  epoch seconds, platform time. A refused request consumes neither bucket. The burst headers
  are this emulator's own invention: no public source documents any rate-limit header for
  Salync (§4.1) and §4.2 derives only the three daily ones; the core's pacer reads them when
  present and paces on the declared plan when not;
* ``Idempotency-Key`` on POSTs, as Stripe does it: same key and same request within 24 platform
  hours replays the stored answer (``Idempotent-Replayed: true``) without side effects; same key
  with a different request (method, path or JSON body) is 409 ``idempotency_conflict``, as is a
  retry while the first request is still running. Answers of 500 and above are not stored, so a
  retry after a server error runs again. Keys are scoped to the API key.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Final, Literal

import orjson
from attrs import define

from salync_core.testing.clock import ScaledClock
from salync_core.testing.limiters import DailyQuota, FixedWindow
from salync_inventory.emulator.models import ApiError

Plan = Literal["starter", "growth", "pro"]
PLANS: Final = ("starter", "growth", "pro")
PLAN_LIMITS: Final = {"growth": (500, 20), "pro": (10_000, 200)}
"""Requests per day and per minute, per API key."""
IDEMPOTENCY_TTL: Final = 86_400.0
MAX_IDEMPOTENCY_KEY: Final = 255


class ApiKeys:
    """The workspace's API keys and whether each is still valid."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.revoked: set[str] = set()
        self.active: set[str] = set(keys)

    def add(self, key: str) -> None:
        if key in self.revoked:
            raise ValueError("a revoked key cannot be reused; generate a new one")
        self.active.add(key)

    def revoke(self, key: str) -> None:
        if key not in self.active:
            raise ValueError("no such active key")
        self.active.discard(key)
        self.revoked.add(key)

    def authenticate(self, authorization: str | None) -> str:
        """The key from ``Authorization: Bearer <key>``, or a 401."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key in self.revoked:
            raise ApiError(401, "api_key_revoked", "This API key has been revoked")
        if scheme.lower() != "bearer" or key not in self.active:
            raise ApiError(401, "unauthorized", "Missing or invalid API key")
        return key


@define
class KeyLimits:
    quota: DailyQuota
    burst: FixedWindow


class RateLimits:
    """Both buckets of every API key, on platform time."""

    def __init__(self, clock: ScaledClock, plan: Plan) -> None:
        self.clock = clock
        self.plan: Plan = plan
        self.enabled = True
        self.lying_headers = False
        """Report a full bucket whatever the truth, for testing clients that trust headers."""
        self.daily_limit: int | None = None
        """A custom plan's daily quota, overriding the plan's."""
        self.burst_limit: int | None = None
        self._by_key: dict[str, KeyLimits] = {}

    def for_key(self, key: str) -> KeyLimits:
        """The key's buckets, with the limits of the current plan (plans change at runtime)."""
        default_daily, default_burst = PLAN_LIMITS.get(self.plan, (0, 0))
        limits = self._by_key.get(key)
        if limits is None:
            limits = KeyLimits(DailyQuota(0, self.clock), FixedWindow(0, 60.0, self.clock))
            self._by_key[key] = limits
        limits.quota.limit = self.daily_limit if self.daily_limit is not None else default_daily
        limits.burst.limit = self.burst_limit if self.burst_limit is not None else default_burst
        return limits

    def admit(self, key: str) -> dict[str, str]:
        """Count one request and return the rate-limit headers, or refuse it with a 429."""
        if not self.enabled:
            return {}
        limits = self.for_key(key)
        now = self.clock.time()
        waits: list[tuple[float, str]] = []
        if limits.quota.remaining == 0:
            message = (
                f"Daily quota of {limits.quota.limit} requests used; it resets at midnight UTC"
            )
            waits.append((limits.quota.reset_at - now, message))
        if limits.burst.remaining == 0:
            message = f"Burst limit of {limits.burst.limit} requests per minute exceeded"
            waits.append((limits.burst.reset_at - now, message))
        if waits:
            wait, message = max(waits)
            headers = {**self.headers(limits), "Retry-After": str(max(1, math.ceil(wait)))}
            raise ApiError(429, "rate_limited", message, headers)
        limits.quota.hit()
        limits.burst.hit()
        return self.headers(limits)

    def headers(self, limits: KeyLimits) -> dict[str, str]:
        quota, burst = limits.quota, limits.burst
        lie = self.lying_headers
        return {
            "X-RateLimit-Limit": str(quota.limit),
            "X-RateLimit-Remaining": str(quota.limit if lie else quota.remaining),
            "X-RateLimit-Reset": str(int(quota.reset_at)),
            "X-RateLimit-Burst-Limit": str(burst.limit),
            "X-RateLimit-Burst-Remaining": str(burst.limit if lie else burst.remaining),
            "X-RateLimit-Burst-Reset": str(int(burst.reset_at)),
        }


@define
class StoredAnswer:
    fingerprint: str
    stored_at: float
    status: int | None = None
    """``None`` while the first request is still being handled."""
    body: bytes = b""
    content_type: str = "application/json"


class IdempotencyStore:
    """Answers to POSTs sent with an ``Idempotency-Key``, kept 24 platform hours."""

    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self._answers: dict[tuple[str, str], StoredAnswer] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        """The request's identity; JSON bodies compare by content, not by formatting."""
        try:
            canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
        except orjson.JSONDecodeError:
            canonical = body
        return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()

    def begin(self, scope: tuple[str, str], fingerprint: str) -> StoredAnswer | None:
        """The answer to replay, or ``None`` when this request should run (and is now claimed)."""
        if len(scope[1]) > MAX_IDEMPOTENCY_KEY or not scope[1].strip():
            message = f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            raise ApiError(400, "invalid_parameter", message)
        self._expire()
        stored = self._answers.get(scope)
        if stored is None:
            self._answers[scope] = StoredAnswer(fingerprint, self.clock.time())
            return None
        if stored.fingerprint != fingerprint:
            message = "This Idempotency-Key was already used with a different request"
            raise ApiError(409, "idempotency_conflict", message)
        if stored.status is None:
            message = "A request with this Idempotency-Key is still being processed"
            raise ApiError(409, "idempotency_conflict", message)
        return stored

    def finish(self, scope: tuple[str, str], status: int, body: bytes, content_type: str) -> None:
        """Keep the answer, unless it is a server error (which a retry should redo)."""
        stored = self._answers.get(scope)
        if stored is None:
            return
        if status >= 500:
            del self._answers[scope]
            return
        stored.status, stored.body, stored.content_type = status, body, content_type

    def abandon(self, scope: tuple[str, str]) -> None:
        self._answers.pop(scope, None)

    def _expire(self) -> None:
        cutoff = self.clock.time() - IDEMPOTENCY_TTL
        for scope in [s for s, answer in self._answers.items() if answer.stored_at < cutoff]:
            del self._answers[scope]
