"""The response classifier, the platform-message parser and Retry-After parsing, as tables."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from salync_core.errors import (
    AuthError,
    BadResponseError,
    InsecureURLError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TransportError,
)
from salync_core.http import Action, Response, RetryPolicy, classify, platform_message
from salync_core.http.retry import backoff, parse_retry_after

HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def body(data: object) -> bytes:
    return orjson.dumps(data)


@pytest.mark.parametrize(
    ("status", "payload", "action", "error", "reauth"),
    [
        pytest.param(200, b"{}", Action.OK, None, False, id="200-ok"),
        pytest.param(201, b"{}", Action.OK, None, False, id="201-created"),
        pytest.param(204, b"", Action.OK, None, False, id="204-no-content"),
        pytest.param(301, b"", Action.FATAL, TransportError, False, id="301-redirect-not-followed"),
        pytest.param(400, b"{}", Action.REJECT, RejectedError, False, id="400-bad-request"),
        pytest.param(401, b"{}", Action.FATAL, AuthError, True, id="401-refresh-once"),
        pytest.param(403, b"{}", Action.FATAL, AuthError, False, id="403-forbidden"),
        pytest.param(
            403, body({"error": "https_required", "message": "use https"}),
            Action.FATAL, InsecureURLError, False, id="403-https-required",
        ),
        pytest.param(
            403, body({"error": {"code": "too_many_requests"}}),
            Action.RETRY, RateLimitedError, False, id="403-abuse-throttle",
        ),
        pytest.param(404, b"{}", Action.SKIP, NotFoundError, False, id="404-skip"),
        pytest.param(405, b"{}", Action.REJECT, RejectedError, False, id="405-other-4xx"),
        pytest.param(408, b"", Action.RETRY, ServerError, False, id="408-request-timeout"),
        pytest.param(409, b"{}", Action.REJECT, RejectedError, False, id="409-conflict"),
        pytest.param(410, b"{}", Action.SKIP, NotFoundError, False, id="410-gone"),
        pytest.param(422, b"{}", Action.REJECT, RejectedError, False, id="422-validation"),
        pytest.param(429, b"{}", Action.RETRY, RateLimitedError, False, id="429-throttled"),
        pytest.param(500, b"{}", Action.RETRY, ServerError, False, id="500-server-error"),
        pytest.param(502, HTML_502, Action.RETRY, ServerError, False, id="502-proxy-html"),
        pytest.param(503, b"{}", Action.RETRY, ServerError, False, id="503-unavailable"),
        pytest.param(504, b"", Action.RETRY, ServerError, False, id="504-gateway-timeout"),
        pytest.param(599, b"", Action.RETRY, ServerError, False, id="599-odd-5xx"),
        pytest.param(700, b"", Action.RETRY, BadResponseError, False, id="700-not-http"),
    ],
)  # fmt: skip
def test_classify(
    status: int, payload: bytes, action: Action, error: type[Exception] | None, reauth: bool
) -> None:
    verdict = classify(status, payload)
    assert (verdict.action, verdict.error, verdict.reauth) == (action, error, reauth)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(
            body({"error": "product_not_found", "message": "No product found with SKU W-1"}),
            "product_not_found - No product found with SKU W-1", id="error-and-message",
        ),
        pytest.param(
            body({"type": "about:blank", "title": "Invalid", "detail": "price must be > 0"}),
            "Invalid - price must be > 0", id="problem-json",
        ),
        pytest.param(body("name is required"), "name is required", id="bare-json-string"),
        pytest.param(
            body({"validationFailures": {"prod_name": ["required"], "price": ["not a number"]}}),
            "prod_name: required, price: not a number", id="validation-failures",
        ),
        pytest.param(
            body({"status": 422, "success": False, "error": {
                "code": "error", "message": "alert.invalid_fields",
                "fields": {"first_name": ["The first name is required"]}}}),
            "alert.invalid_fields - first_name: The first name is required", id="salla-envelope",
        ),
        pytest.param(
            body({"error": "invalid_grant", "error_description": "refresh token reused"}),
            "invalid_grant - refresh token reused", id="oauth-error",
        ),
        pytest.param(b"\xef\xbb\xbf" + body({"message": "with a BOM"}), "with a BOM", id="bom"),
        pytest.param(HTML_502, "502 Bad Gateway", id="html-title"),
        pytest.param(b"  plain\n  text  ", "plain text", id="plain-text"),
        pytest.param(b"", "", id="empty"),
    ],
)  # fmt: skip
def test_platform_message(payload: bytes, message: str) -> None:
    assert platform_message(payload) == message


NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("7", 7.0, id="seconds"),
        pytest.param("2.5", 2.5, id="fractional-seconds"),
        pytest.param(
            format_datetime(datetime(2030, 5, 6, 7, 8, 39, tzinfo=UTC), usegmt=True),
            30.0, id="http-date",
        ),
        pytest.param("0", None, id="zero"),
        pytest.param("-3", None, id="negative"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("nan", None, id="nan"),
        pytest.param("inf", None, id="infinite"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="missing"),
        pytest.param(
            format_datetime(datetime(2030, 5, 6, 7, 0, 0, tzinfo=UTC), usegmt=True),
            None, id="http-date-in-the-past",
        ),
    ],
)  # fmt: skip
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_backoff_is_full_jitter_within_bounds() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0)
    rng = random.Random(1)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 4.0), (500, 4.0)]:
        waits = [backoff(policy, retry, rng) for _ in range(200)]
        assert min(waits) >= 0
        assert max(waits) <= ceiling
        assert max(waits) > ceiling / 2  # spread over the range, not pinned low


def test_backoff_floor_keeps_a_throttled_retry_from_spinning() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0)
    assert all(backoff(policy, 0, random.Random(i), floor=0.5) >= 0.5 for i in range(50))


def response(body: bytes, **headers: str) -> Response:
    return Response(200, CIMultiDictProxy(CIMultiDict(headers)), body, "https://h/x", "shop")


def test_response_json_tolerates_a_bom() -> None:
    assert response(b"\xef\xbb\xbf" + body({"a": 1})).json() == {"a": 1}


def test_response_json_raises_bad_response_naming_the_connection() -> None:
    with pytest.raises(BadResponseError, match=r"^shop: https://h/x answered 200") as caught:
        response(b'{"items": [1, 2', **{"Content-Type": "application/json"}).json()
    assert (caught.value.body, caught.value.status) == (b'{"items": [1, 2', 200)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 06 May 2030 07:08:09 GMT", datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("Tue, 06 May 2030 09:08:09 +0200", datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("yesterday", None),
        ("Tue, 06 May 2030 07:08:09 -0000", None),
    ],
)
def test_server_time_from_the_date_header(date: str, expected: datetime | None) -> None:
    assert response(b"", Date=date).server_time == expected
    assert response(b"").server_time is None
