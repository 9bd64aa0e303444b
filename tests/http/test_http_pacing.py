"""Pacing against servers that enforce their limits: declared windows, daily quotas, rate-limit
headers (honest and lying), and the platform clock taken from ``Date`` headers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from aiohttp import web

from salync_core.errors import QuotaExhausted
from salync_core.http import HttpClient, RetryPolicy
from salync_core.http.clock import PlatformClock
from salync_core.platform import Credentials, Limits, Window
from salync_core.secrets import Secret
from salync_core.testing import DailyQuota, Emulator, FixedWindow, ScaledClock, SlidingWindow
from salync_core.testing.emulator import json_response

KEY = Credentials("header", "X-API-KEY", Secret("k-pacing"))
NO_RETRY = RetryPolicy(attempts=1, base=0.01, cap=0.01, max_wait=2.0)

Limiter = SlidingWindow | FixedWindow | DailyQuota
HeaderMaker = Callable[["Limited"], dict[str, str]]


class Limited(Emulator):
    """``/items`` behind limiters; a refused request gets 429. ``headers`` adds rate-limit
    headers to every answer."""

    name = "limited"

    def __init__(self, clock: ScaledClock, *limiters: Limiter, headers: HeaderMaker | None = None):
        super().__init__(clock=clock)
        self.limiters = limiters
        self.headers = headers
        self.in_flight = self.most_in_flight = 0

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/items", self.items)

    async def items(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await anyio.sleep(0.002)
            refused = [wait for lim in self.limiters if (wait := lim.hit()) is not None]
            headers = self.headers(self) if self.headers else {}
            if refused:
                headers["Retry-After"] = str(max(1, round(max(refused))))
                return self.error_response(429, "rate_limited", "Too many requests", headers)
            return json_response({"ok": True}, headers=headers)
        finally:
            self.in_flight -= 1


def client_for(emulator: Emulator, limits: Limits | None = None, **kwargs: Any) -> HttpClient:
    return HttpClient(
        connection="shop",
        base_url=emulator.base_url,
        credentials=KEY,
        limits=limits or Limits(),
        time_scale=emulator.clock.scale,
        retry=kwargs.pop("retry", NO_RETRY),
        **kwargs,
    )


FIVE_PER_SECOND = Limits(windows=(Window(5, 1.0),))


@pytest.mark.anyio
async def test_a_sliding_window_is_never_exceeded_and_costs_no_more_than_it_must() -> None:
    clock = ScaledClock(4.0)  # a platform second lasts 0.25 s
    server = Limited(clock, SlidingWindow(5, 1.0, clock))
    async with server.running(), client_for(server, FIVE_PER_SECOND) as client:
        start = time.monotonic()
        for _ in range(20):
            await client.get_json("items")
        elapsed = time.monotonic() - start
    assert server.stats.by_status == {200: 20}
    assert 0.75 <= elapsed < 1.1  # 3 full windows are the theoretical minimum


@pytest.mark.anyio
async def test_concurrent_requests_share_the_window() -> None:
    clock = ScaledClock(4.0)
    server = Limited(clock, SlidingWindow(5, 1.0, clock))
    async with server.running(), client_for(server, FIVE_PER_SECOND) as client:
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(client.get_json, "items")
        elapsed = time.monotonic() - start
    assert server.stats.by_status == {200: 20}
    assert server.most_in_flight <= 5
    assert 0.75 <= elapsed < 1.1


@pytest.mark.anyio
async def test_the_stricter_of_several_windows_wins() -> None:
    clock = ScaledClock(20.0)
    server = Limited(clock, SlidingWindow(4, 1.0, clock), SlidingWindow(6, 10.0, clock))
    limits = Limits(windows=(Window(4, 1.0), Window(6, 10.0)))
    async with server.running(), client_for(server, limits) as client:
        start = time.monotonic()
        for _ in range(8):
            await client.get_json("items")
        elapsed = time.monotonic() - start
    assert server.stats.by_status == {200: 8}
    assert 0.5 <= elapsed < 0.8  # the 7th waits for the 10 s window: 0.5 s at 20x


@pytest.mark.anyio
async def test_the_declared_daily_quota_stops_before_sending() -> None:
    clock = ScaledClock(1.0)
    server = Limited(clock, DailyQuota(10, clock))
    limits = Limits(daily=10)
    async with server.running(), client_for(server, limits, requests_today=7) as client:
        for _ in range(3):
            await client.get_json("items")
        with pytest.raises(QuotaExhausted) as caught:
            await client.get_json("items")
    assert server.stats.requests == 3
    midnight = clock.now() + timedelta(seconds=clock.seconds_to_midnight())
    assert abs((caught.value.resume_at - midnight).total_seconds()) < 2
    assert caught.value.connection == "shop"


def daily_headers(server: Limited) -> dict[str, str]:
    quota = server.limiters[0]
    assert isinstance(quota, DailyQuota)
    return {
        "X-RateLimit-Limit": str(quota.limit),
        "X-RateLimit-Remaining": str(quota.remaining),
        "X-RateLimit-Reset": str(int(quota.reset_at)),
    }


@pytest.mark.anyio
async def test_a_daily_quota_announced_in_headers_stops_before_sending() -> None:
    clock = ScaledClock(1.0)
    server = Limited(clock, DailyQuota(5, clock), headers=daily_headers)
    async with server.running(), client_for(server) as client:
        for _ in range(5):
            await client.get_json("items")
        with pytest.raises(QuotaExhausted) as caught:
            await client.get_json("items")
        with pytest.raises(QuotaExhausted):
            await client.get_json("items")
    assert server.stats.by_status == {200: 5}
    midnight = clock.now() + timedelta(seconds=clock.seconds_to_midnight())
    assert abs((caught.value.resume_at - midnight).total_seconds()) < 2


def window_headers(server: Limited) -> dict[str, str]:
    window = server.limiters[0]
    assert isinstance(window, FixedWindow)
    return {
        "X-RateLimit-Limit": str(window.limit),
        "X-RateLimit-Remaining": str(window.remaining),
        "X-RateLimit-Reset": str(int(window.reset_at)),
    }


@pytest.mark.anyio
async def test_rate_limit_headers_pace_a_window_nobody_declared() -> None:
    clock = ScaledClock(20.0)
    server = Limited(clock, FixedWindow(3, 2.0, clock), headers=window_headers)
    async with server.running(), client_for(server) as client:
        for _ in range(9):
            await client.get_json("items")
    assert server.stats.by_status == {200: 9}


def burst_headers(server: Limited) -> dict[str, str]:
    window = server.limiters[0]
    assert isinstance(window, FixedWindow)
    return {
        "X-RateLimit-Burst-Limit": str(window.limit),
        "X-RateLimit-Burst-Remaining": str(window.remaining),
        "X-RateLimit-Burst-Reset": str(int(window.reset_at)),
    }


@pytest.mark.anyio
async def test_burst_headers_let_every_request_a_fixed_window_admits_go_at_once() -> None:
    """10 a minute in windows aligned on the minute, starting 15 s before one ends: the first
    10 go at once, the next 10 as soon as the minute turns, the last 5 a minute later. A
    sliding log of 10 a minute would hold each ten a whole minute after the ten before."""
    clock = ScaledClock(120.0, start=datetime(2031, 3, 4, 12, 0, 45, tzinfo=UTC))
    server = Limited(clock, FixedWindow(10, 60.0, clock), headers=burst_headers)
    limits = Limits(windows=(Window(10, 60.0),))
    async with server.running(), client_for(server, limits) as client:
        started = clock.time()
        async with anyio.create_task_group() as tg:
            for _ in range(25):
                tg.start_soon(client.get_json, "items")
        platform_seconds = clock.time() - started
    assert server.stats.by_status == {200: 25}
    sliding_minimum = 2 * 60.0
    assert platform_seconds < sliding_minimum  # the last five go about 77 s in


LIES = [
    {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"},
    {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999999999"},
    {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
    {"X-RateLimit-Limit": "-1", "X-RateLimit-Remaining": "-7", "X-RateLimit-Reset": "0"},
    {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1e400"},
    {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0"},
    {"X-RateLimit-Burst-Limit": "5", "X-RateLimit-Burst-Remaining": "0"},
    {
        "X-RateLimit-Burst-Limit": "5",
        "X-RateLimit-Burst-Remaining": "0",
        "X-RateLimit-Burst-Reset": "99999999999",
    },
    {
        "X-RateLimit-Burst-Limit": "0",
        "X-RateLimit-Burst-Remaining": "-1",
        "X-RateLimit-Burst-Reset": "soon",
    },
]


@pytest.mark.anyio
async def test_lying_headers_cause_neither_a_hot_loop_nor_a_long_sleep() -> None:
    lies = iter(LIES * 2)
    server = Limited(ScaledClock(1.0), headers=lambda _: dict(next(lies)))
    retry = RetryPolicy(attempts=3, base=0.01, cap=0.02, max_wait=0.5)
    async with server.running(), client_for(server, retry=retry) as client:
        start = time.monotonic()
        for _ in range(len(LIES) * 2):
            await client.get_json("items")
        elapsed = time.monotonic() - start
    assert server.stats.requests == len(LIES) * 2
    assert elapsed < 0.5


@pytest.mark.anyio
async def test_the_day_rolls_over_on_the_servers_clock_not_ours() -> None:
    start = datetime(2031, 3, 4, 23, 59, 56, tzinfo=UTC)  # another day than ours, near midnight
    clock = ScaledClock(20.0, start=start)
    server = Limited(clock, DailyQuota(3, clock))
    async with server.running(), client_for(server, Limits(daily=3)) as client:
        for _ in range(3):
            await client.get_json("items")
        with pytest.raises(QuotaExhausted) as caught:
            await client.get_json("items")
        assert caught.value.resume_at == datetime(2031, 3, 5, tzinfo=UTC)
        await anyio.sleep(clock.seconds_to_midnight() / clock.scale + 0.05)
        await client.get_json("items")
        assert set(client.take_usage()) == {start.date(), start.date() + timedelta(days=1)}
    assert server.stats.by_status == {200: 4}


def test_the_clock_moves_only_when_a_date_header_contradicts_it() -> None:
    clock = PlatformClock(1.0)
    here = clock.time()
    server = datetime.fromtimestamp(int(here) + 3600, UTC)  # the server runs an hour ahead
    assert clock.observe(server, 0.0, clock.elapsed()) == pytest.approx(3600, abs=1.1)
    assert clock.time() == pytest.approx(here + 3600, abs=1.1)
    now = clock.time()
    same = datetime.fromtimestamp(int(now), UTC)  # consistent with our estimate: no change
    assert clock.observe(same, clock.elapsed(), clock.elapsed()) == 0.0


def test_a_scaled_clock_runs_faster() -> None:
    clock = PlatformClock(100.0)
    before = clock.elapsed()
    time.sleep(0.02)
    assert clock.elapsed() - before == pytest.approx(2.0, abs=0.5)
    assert clock.real_seconds(50.0) == 0.5
