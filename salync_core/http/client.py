"""The HTTP client every platform plugin shares: one per connection.

The client owns auth and policy. For each attempt it acquires a slot from the
:class:`~.pacing.Pacer`, signs the request (:mod:`.auth`), sends it through the
:class:`~.transport.Transport`, learns the server's clock and rate-limit headers, counts it
(:class:`Usage`) and classifies the answer (:mod:`.classify`): return it, refresh the
credentials once, wait and retry (:mod:`.retry`), or raise the mapped error. Every message
names the connection and masks every secret the client knows.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

import anyio
import orjson
from attrs import define

from salync_core.errors import (
    AuthError,
    BadResponseError,
    QuotaExhausted,
    RateLimitedError,
    TransportError,
    UnreachableError,
)
from salync_core.http.auth import Auth, TokenStore, make_auth
from salync_core.http.classify import Action, Verdict, classify, platform_message
from salync_core.http.clock import PlatformClock
from salync_core.http.pacing import Pacer, shared_pacer
from salync_core.http.response import Response, Usage, UsageBook
from salync_core.http.retry import RetryPolicy, backoff, parse_retry_after
from salync_core.http.transport import Outgoing, Timeouts, Transport, describe, safe_url
from salync_core.http.urls import check_url_security, resolve
from salync_core.platform import Credentials, Limits
from salync_core.secrets import redactor

__all__ = ["HttpClient", "Timeouts"]

log = logging.getLogger("salync.http")
NO_LIMITS = Limits()
DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()
Outcome = Response | UnreachableError


@define
class _Retry:
    """An attempt failed in a way that may pass if it is sent again."""

    error: TransportError
    retry_after: float | None = None
    """Platform seconds the server asked us to wait, when it said so usably."""
    throttled: bool = False


@define
class _Tries:
    attempt: int = 1
    """The attempt under the retry policy; a resend after a refresh is not a new one."""
    sent: int = 0
    """Everything sent for this request, the resend after a refresh included."""
    refreshed: bool = False
    throttles: int = 0
    """429s answered so far; they do not count as attempts."""
    throttled_for: float = 0.0
    """Real seconds waited for 429s so far, bounded by ``RetryPolicy.throttle_budget``."""


class HttpClient:
    """Paced, authenticated, retrying HTTP for one connection; use it as an async context
    manager or call :meth:`close`. ``credentials`` may be
    :class:`~salync_core.http.auth.OAuth2Credentials` (then ``token_store`` is required)."""

    def __init__(
        self,
        *,
        connection: str,
        base_url: str,
        credentials: Credentials,
        limits: Limits = NO_LIMITS,
        time_scale: float = 1.0,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        requests_today: int = 0,
        token_store: TokenStore | None = None,
        ca_file: str | None = None,
        user_agent: str = "salync-core/0.1",
        platform: str = "",
    ) -> None:
        self.connection, self.retry = connection, retry
        self.base_url = check_url_security(base_url, connection=connection)
        if isinstance(token_url := getattr(credentials, "token_url", None), str):
            check_url_security(token_url, connection=connection)
        self._clock = PlatformClock(time_scale)
        secret = credentials.secret.reveal() if credentials.secret is not None else None
        self._pacer = shared_pacer(  # shared only inside a fleet (pacing.SHARED_PACERS)
            platform or connection,
            str(self.base_url),
            secret,
            lambda: Pacer(
                limits,
                self._clock,
                connection=connection,
                max_wait=retry.max_wait,
                requests_today=requests_today,
            ),
        )
        self._auth: Auth = make_auth(credentials, token_store, self._clock, connection)
        self._transport = Transport(connection, timeouts, ca_file, user_agent)
        self._usage = UsageBook()
        self._rng = random.Random()
        self._register_secrets()

    @property
    def time_scale(self) -> float:
        """How much faster than real time the platform's clock runs (1 outside tests)."""
        return self._clock.scale

    @property
    def usage(self) -> Usage:
        """Counters for the client's whole life (:meth:`take_usage` does not reset them)."""
        return self._usage.total

    def take_usage(self) -> dict[date, Usage]:
        """Counters per platform day since the last call, for the engine to write to the usage
        ledger in the same transaction as a page."""
        return self._usage.take()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send a request and return its 2xx answer; anything else ends in the mapped
        :class:`~salync_core.errors.TransportError` (or :class:`QuotaExhausted`)."""
        body = None if json is None else orjson.dumps(json)
        _, response = await self._exchange(self._prepare(method, url, params, body, headers), False)
        return response

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, Response]:
        """GET and parse JSON; a body that does not parse (truncated, a proxy's HTML page) is
        retried like a 5xx, then raised as :class:`BadResponseError`."""
        return await self._exchange(self._prepare("GET", url, params, None, headers), True)

    # the retry loop -------------------------------------------------------------------

    def _prepare(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> Outgoing:
        target = resolve(self.base_url, url, params, connection=self.connection)
        merged = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            merged.setdefault("Content-Type", "application/json")
        return Outgoing(method.upper(), target, body, merged)

    async def _exchange(self, request: Outgoing, parse: bool) -> tuple[Any, Response]:
        tries = _Tries()
        while True:
            auth, generation = await self._auth.headers(self._transport.post_form)
            outcome = self._judge(request, await self._attempt(request, auth, tries), parse)
            if isinstance(outcome, tuple):
                return outcome
            if isinstance(outcome, AuthError):
                await self._reauth(outcome, generation, tries)
                continue
            await self._back_off(outcome, tries)
            if outcome.throttled:
                tries.throttles += 1
            else:
                tries.attempt += 1

    async def _attempt(self, request: Outgoing, auth: Mapping[str, str], tries: _Tries) -> Outcome:
        slot = await self._pacer.acquire()
        sent = self._clock.elapsed()
        try:
            outcome = await self._transport.send(request, auth)
            if isinstance(outcome, Response):
                self._learn(outcome, sent)
        finally:
            self._pacer.release(slot)
        tries.sent += 1
        self._count(request, outcome, tries.sent)
        return outcome

    def _judge(
        self, request: Outgoing, outcome: Outcome, parse: bool
    ) -> tuple[Any, Response] | _Retry | AuthError:
        """The value to return, a failure worth retrying, or an :class:`AuthError` a refresh
        may fix; raises a failure that retrying cannot fix."""
        if isinstance(outcome, UnreachableError):
            return _Retry(outcome)
        verdict = classify(outcome.status, outcome.body)
        if verdict.action is Action.OK:
            return self._accept(outcome, parse)
        error = self._error(verdict, request, outcome)
        if verdict.action is Action.RETRY:
            wait = parse_retry_after(outcome.headers.get("Retry-After"), self._clock.time())
            return _Retry(error, wait, throttled=verdict.error is RateLimitedError)
        if verdict.reauth and isinstance(error, AuthError):
            return error
        raise error

    def _accept(self, response: Response, parse: bool) -> tuple[Any, Response] | _Retry:
        if not parse:
            return None, response
        try:
            return response.json(), response
        except BadResponseError as exc:
            return _Retry(exc)

    async def _reauth(self, error: AuthError, generation: int, tries: _Tries) -> None:
        """Refresh the credentials once per request after a 401; a second 401 is final."""
        if tries.refreshed or not self._auth.can_refresh:
            raise error
        tries.refreshed = True
        log.info("%s; refreshing the credentials", error)
        await self._auth.refresh(generation, self._transport.post_form)
        self._register_secrets()

    async def _back_off(self, failure: _Retry, tries: _Tries) -> None:
        """Sleep before the next attempt, or raise when waiting is pointless or too long."""
        delay = self._delay(failure, tries)
        if failure.throttled:
            self._pacer.hold(delay * self._clock.scale)
            tries.throttled_for += delay
            log.info("%s; waiting %.2f s (throttled, not counted as a retry)", failure.error, delay)
        else:
            log.info(
                "%s; retry %d of %d in %.2f s",
                failure.error,
                tries.attempt,
                self.retry.attempts - 1,
                delay,
            )
        await anyio.sleep(delay)

    def _delay(self, failure: _Retry, tries: _Tries) -> float:
        """Real seconds to wait: Retry-After when usable, else backoff (never below ``base``
        after a 429, so an unusable Retry-After cannot make a hot loop). Errors end after
        ``attempts``; 429s after ``throttle_budget`` seconds of waiting in all."""
        wait = self._retry_after(failure)
        if failure.throttled:
            if wait is None:
                wait = backoff(self.retry, tries.throttles, self._rng, self.retry.base)
            if tries.throttled_for + wait > self.retry.throttle_budget:
                self._throttled_too_long(failure, tries)
            return wait
        if tries.attempt >= self.retry.attempts:
            raise failure.error
        if wait is not None:
            return wait
        return backoff(self.retry, tries.attempt - 1, self._rng)

    def _throttled_too_long(self, failure: _Retry, tries: _Tries) -> None:
        error = failure.error
        raise type(error)(
            f"{error.url} still answered {error.status} after {tries.throttles + 1} "
            f"rate-limited answers: rate limited for {tries.throttled_for:.0f} s, the most "
            f"one request waits (throttle_budget {self.retry.throttle_budget:.0f} s)",
            connection=self.connection,
            status=error.status,
            url=error.url,
        ) from error

    def _retry_after(self, failure: _Retry) -> float | None:
        """The server's Retry-After in real seconds; raises if it is longer than ``max_wait``."""
        if failure.retry_after is None:
            return None
        wait = self._clock.real_seconds(failure.retry_after)
        if wait > self.retry.max_wait:
            self._wait_too_long(failure, failure.retry_after)
        return wait

    def _wait_too_long(self, failure: _Retry, retry_after: float) -> None:
        """A wait beyond ``max_wait``: the daily quota if it ends at a reset, else give up."""
        resume_at = self._clock.time() + retry_after
        if failure.throttled and self._pacer.points_at_reset(resume_at):
            self._pacer.exhaust(resume_at)
            raise QuotaExhausted(self.connection, datetime.fromtimestamp(resume_at, UTC))
        error = failure.error
        raise type(error)(
            f"{error.url} answered {error.status} with Retry-After "
            f"{retry_after:.0f} s, longer than max_wait ({self.retry.max_wait:.0f} s)",
            connection=self.connection,
            status=error.status,
            url=error.url,
        ) from error

    # bookkeeping ----------------------------------------------------------------------

    def _learn(self, response: Response, sent: float) -> None:
        """Take the server's clock and rate-limit headers from an answer."""
        server_time = response.server_time
        if server_time is not None:
            correction = self._clock.observe(server_time, sent, self._clock.elapsed())
            self._pacer.clock_corrected(correction)
        self._pacer.observe(response.headers)

    def _count(self, request: Outgoing, outcome: Outcome, sent: int) -> None:
        """Count an attempt on the server's day (its ``Date``), else on ours."""
        usage = Usage(requests=1, retries=int(sent > 1), bytes_out=len(request.body or b""))
        status = "no answer"
        if isinstance(outcome, Response):
            usage.throttled, usage.bytes_in = int(outcome.status == 429), len(outcome.body)
            day, status = (outcome.server_time or self._clock.now()).date(), str(outcome.status)
        else:
            day = self._clock.now().date()
        self._usage.record(day, usage)
        if log.isEnabledFor(logging.DEBUG):  # describe() masks secrets: not for nothing
            log.debug("%s: %s -> %s (attempt %d)", self.connection, describe(request), status, sent)

    def _error(self, verdict: Verdict, request: Outgoing, response: Response) -> TransportError:
        kind = verdict.error or TransportError
        message = redactor.redact(platform_message(response.body)) or "no message"
        what = "was rejected with" if verdict.action is Action.REJECT else "answered"
        return kind(
            f"{describe(request)} {what} {response.status}: {message}",
            connection=self.connection,
            status=response.status,
            url=safe_url(request),
        )

    def _register_secrets(self) -> None:
        for secret in self._auth.secrets():
            redactor.add(secret)
