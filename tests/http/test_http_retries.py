"""Retries against a real server: Retry-After in every shape, faults, bounded attempts, and
the errors that end a request."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import orjson
import pytest
from aiohttp import web

from salync_core.errors import (
    BadResponseError,
    InsecureURLError,
    NotFoundError,
    QuotaExhausted,
    RateLimitedError,
    RejectedError,
    Retriable,
    ServerError,
    Skippable,
    UnreachableError,
)
from salync_core.http import HttpClient, RetryPolicy, Timeouts
from salync_core.platform import Credentials
from salync_core.secrets import Secret
from salync_core.testing import Emulator, ScaledClock
from salync_core.testing.emulator import json_response

KEY = Credentials("bearer", secret=Secret("tok-retry-secret"))
FAST = RetryPolicy(attempts=4, base=0.05, cap=0.1, max_wait=2.0)


class Scripted(Emulator):
    """``/items`` answers from a script of (status, body, headers), then 200 once it runs out."""

    name = "scripted"

    def __init__(self, *, clock: ScaledClock | None = None) -> None:
        super().__init__(clock=clock)
        self.script: deque[tuple[int, Any, dict[str, str]]] = deque()

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/v1/items", self.items)

    async def items(self, request: web.Request) -> web.Response:
        if not self.script:
            return json_response({"items": [1, 2, 3]})
        status, body, headers = self.script.popleft()
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return web.Response(status=status, body=raw, headers=headers)


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    emulator = Scripted(clock=ScaledClock(10.0))
    async with emulator.running():
        yield emulator


def client_for(emulator: Emulator, **kwargs: Any) -> HttpClient:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("time_scale", emulator.clock.scale)
    return HttpClient(connection="shop", base_url=emulator.base_url, credentials=KEY, **kwargs)


async def timed_get(client: HttpClient) -> tuple[Any, float]:
    start = time.monotonic()
    async with client:
        data, _ = await client.get_json("/v1/items")
    return data, time.monotonic() - start


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("retry_after", "least", "most"),
    [
        pytest.param("3", 0.3, 0.6, id="seconds-scaled"),
        pytest.param("0", FAST.base, 0.4, id="zero-backoff-floor"),
        pytest.param("-5", FAST.base, 0.4, id="negative-backoff-floor"),
        pytest.param("in a bit", FAST.base, 0.4, id="garbage-backoff-floor"),
        pytest.param(None, FAST.base, 0.4, id="missing-backoff-floor"),
    ],
)
async def test_retry_after_on_429(
    server: Scripted, retry_after: str | None, least: float, most: float
) -> None:
    server.faults.update({"rate_limited": 2, "retry_after": retry_after})
    client = client_for(server)
    data, elapsed = await timed_get(client)
    assert data == {"items": [1, 2, 3]}
    assert least * 2 <= elapsed < most * 2
    assert server.stats.requests == 3
    assert (client.usage.throttled, client.usage.retries, client.usage.requests) == (2, 2, 3)


@pytest.mark.anyio
async def test_retry_after_as_an_http_date_is_read_on_the_server_clock(server: Scripted) -> None:
    when = server.clock.now() + timedelta(seconds=4)
    server.script.append(
        (429, {"error": "slow down"}, {"Retry-After": format_datetime(when, True)})
    )
    data, elapsed = await timed_get(client_for(server))
    assert data == {"items": [1, 2, 3]}
    assert 0.25 <= elapsed < 0.7  # 3 to 4 platform seconds (the date has 1 s resolution) at 10x


@pytest.mark.anyio
async def test_a_huge_retry_after_ends_the_request_without_sleeping(server: Scripted) -> None:
    server.faults.update({"rate_limited": 5, "retry_after": "4000"})  # 400 s real at 10x
    with pytest.raises(RateLimitedError, match="longer than max_wait") as caught:
        await timed_get(client_for(server))
    assert isinstance(caught.value, Retriable)
    assert server.stats.requests == 1


@pytest.mark.anyio
async def test_a_429_until_midnight_is_the_daily_quota_and_stops_before_sending_again(
    server: Scripted,
) -> None:
    to_midnight = server.clock.seconds_to_midnight()
    server.faults.update({"rate_limited": 5, "retry_after": str(round(to_midnight))})
    async with client_for(server) as client:
        with pytest.raises(QuotaExhausted) as caught:
            await client.get_json("/v1/items")
        midnight = server.clock.now() + timedelta(seconds=server.clock.seconds_to_midnight())
        assert abs((caught.value.resume_at - midnight).total_seconds()) < 5
        with pytest.raises(QuotaExhausted):
            await client.get_json("/v1/items")
    assert server.stats.requests == 1


@pytest.mark.anyio
async def test_a_proxy_html_502_page_is_retried(server: Scripted) -> None:
    server.faults.update({"html_errors": 1})
    data, _ = await timed_get(client_for(server))
    assert data == {"items": [1, 2, 3]}
    assert server.stats.by_status[502] == 1


@pytest.mark.anyio
async def test_a_truncated_body_is_retried(server: Scripted) -> None:
    server.faults.update({"truncate": 1})
    client = client_for(server)
    data, _ = await timed_get(client)
    assert data == {"items": [1, 2, 3]}
    assert (server.stats.requests, client.usage.retries) == (2, 1)


@pytest.mark.anyio
async def test_a_dropped_connection_is_retried(server: Scripted) -> None:
    server.faults.update({"disconnect": 1})
    data, _ = await timed_get(client_for(server))
    assert data == {"items": [1, 2, 3]}


@pytest.mark.anyio
async def test_a_200_that_is_never_json_ends_in_bad_response(server: Scripted) -> None:
    server.script.extend([(200, b"<html>login</html>", {})] * 4)
    with pytest.raises(BadResponseError) as caught:
        await timed_get(client_for(server))
    assert caught.value.body == b"<html>login</html>"
    assert server.stats.requests == FAST.attempts


@pytest.mark.anyio
async def test_attempts_are_bounded_then_the_mapped_error(server: Scripted) -> None:
    server.faults.update({"server_errors": 10, "server_error_status": 503})
    with pytest.raises(ServerError) as caught:
        await timed_get(client_for(server))
    assert caught.value.status == 503
    assert str(caught.value).startswith("shop: GET ")
    assert server.stats.requests == FAST.attempts


@pytest.mark.anyio
async def test_429s_beyond_the_throttle_budget_end_in_rate_limited(server: Scripted) -> None:
    server.faults.update({"rate_limited": 10, "retry_after": "1"})  # 0.1 s real each at 10x
    retry = RetryPolicy(attempts=2, base=0.05, cap=0.1, max_wait=2.0, throttle_budget=0.35)
    with pytest.raises(RateLimitedError, match="rate limited for"):
        await timed_get(client_for(server, retry=retry))
    assert server.stats.requests == 4, "3 waits fit in the budget, not 2 attempts"


@pytest.mark.anyio
async def test_429s_do_not_spend_the_attempts_for_errors(server: Scripted) -> None:
    server.faults.update({"rate_limited": 6, "retry_after": "0.1"})
    data, _ = await timed_get(client_for(server))
    assert data == {"items": [1, 2, 3]}
    assert server.stats.requests == 7 > FAST.attempts


@pytest.mark.anyio
async def test_a_read_timeout_is_retried_then_unreachable(server: Scripted) -> None:
    server.faults.update({"slow_seconds": 0.2})
    retry = RetryPolicy(attempts=2, base=0.01, cap=0.01)
    client = client_for(server, timeouts=Timeouts(connect=1.0, read=0.05), retry=retry)
    start = time.monotonic()
    with pytest.raises(UnreachableError) as caught:
        await timed_get(client)
    assert time.monotonic() - start < 0.5
    assert isinstance(caught.value.__cause__, TimeoutError)


@pytest.mark.anyio
async def test_an_unreachable_host_ends_in_unreachable() -> None:
    emulator = Scripted()
    async with emulator.running():
        url = emulator.base_url
    client = HttpClient(connection="shop", base_url=url, credentials=KEY, retry=FAST)
    with pytest.raises(UnreachableError, match=r"^shop: GET "):
        await timed_get(client)


@pytest.mark.anyio
async def test_404_is_skippable_and_not_retried(server: Scripted) -> None:
    server.script.append((404, {"error": "product_not_found", "message": "No such SKU"}, {}))
    with pytest.raises(NotFoundError, match="No such SKU") as caught:
        await timed_get(client_for(server))
    assert isinstance(caught.value, Skippable)
    assert server.stats.requests == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        pytest.param(400, {"error": "bad_request", "message": "limit too big"}, "limit too big",
                     id="400-error-message"),
        pytest.param(422, {"status": 422, "success": False, "error": {
            "code": "error", "message": "alert.invalid_fields",
            "fields": {"price": ["must be positive"]}}}, "price: must be positive",
                     id="422-salla"),
        pytest.param(409, "already exists", "already exists", id="409-bare-string"),
    ],
)  # fmt: skip
async def test_rejections_carry_the_platform_message(
    server: Scripted, status: int, body: Any, message: str
) -> None:
    server.script.append((status, body, {}))
    async with client_for(server) as client:
        with pytest.raises(RejectedError) as caught:
            await client.request("POST", "/v1/items", json={"price": -1})
    assert message in str(caught.value)
    assert caught.value.status == status
    assert server.stats.requests == 1


@pytest.mark.anyio
async def test_403_https_required_is_an_insecure_url_error(server: Scripted) -> None:
    server.script.append((403, {"error": "https_required", "message": "Use HTTPS"}, {}))
    with pytest.raises(InsecureURLError, match="Use HTTPS"):
        await timed_get(client_for(server))


@pytest.mark.anyio
async def test_usage_is_counted_per_platform_day_and_drained(server: Scripted) -> None:
    server.faults.update({"rate_limited": 1, "retry_after": "1"})
    async with client_for(server) as client:
        await client.get_json("/v1/items")
        await client.request("POST", "/v1/items", json={"a": 1})
        taken = client.take_usage()
        assert client.take_usage() == {}
    ((day, usage),) = taken.items()
    assert day == server.clock.now().date()
    assert (usage.requests, usage.throttled, usage.retries) == (3, 1, 1)
    assert usage.bytes_out == len(b'{"a":1}')
    assert usage.bytes_in == server.stats.bytes_out
    assert client.usage == usage
