"""The one response classifier: an HTTP answer to what the client should do next.

:func:`classify` maps a status (and, where the status is not enough, the body) to an
:class:`Action` and the error to raise if the client stops there. The client owns the policy
(how long to wait, how many attempts); this module only names the case.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import orjson
from attrs import frozen

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


class Action(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    """Transient: wait and send again, up to the retry policy's attempts."""
    FATAL = "fatal"
    SKIP = "skip"
    """This one item is gone; the caller records it and goes on."""
    REJECT = "reject"
    """The platform refused what we sent; its message says why."""


@frozen
class Verdict:
    action: Action
    error: type[TransportError] | None = None
    reauth: bool = False
    """A refreshable credential may fix this (401): refresh once and send again."""


OK = Verdict(Action.OK)
_BY_STATUS: dict[int, Verdict] = {
    401: Verdict(Action.FATAL, AuthError, reauth=True),
    403: Verdict(Action.FATAL, AuthError),
    404: Verdict(Action.SKIP, NotFoundError),
    408: Verdict(Action.RETRY, ServerError),
    410: Verdict(Action.SKIP, NotFoundError),
    429: Verdict(Action.RETRY, RateLimitedError),
}
_BY_ERROR_CODE: dict[str, Verdict] = {
    "https_required": Verdict(Action.FATAL, InsecureURLError),
    "rate_limited": Verdict(Action.RETRY, RateLimitedError),
    "too_many_requests": Verdict(Action.RETRY, RateLimitedError),
}
"""Error codes in a 403 body that mean something other than "your credentials are refused"."""


def classify(status: int, body: bytes = b"") -> Verdict:
    """What to do with an answer of ``status`` carrying ``body``."""
    if 200 <= status < 300 or status == 304:  # 304: a conditional GET found nothing new
        return OK
    if status == 403:
        return _BY_ERROR_CODE.get(error_code(body), _BY_STATUS[403])
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 300 <= status < 400:
        return Verdict(Action.FATAL, TransportError)  # redirects are not followed: see client
    if 400 <= status < 500:
        return Verdict(Action.REJECT, RejectedError)
    if 500 <= status < 600:
        return Verdict(Action.RETRY, ServerError)
    return Verdict(Action.RETRY, BadResponseError)


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return None


def error_code(body: bytes) -> str:
    """The machine-readable error code of a JSON error body, or ``""``."""
    data = _loads(body)
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("code")
    return error if isinstance(error, str) else ""


def _fields(fields: Any) -> str:
    if not isinstance(fields, dict):
        return ""
    parts = []
    for name, problems in fields.items():
        text = "; ".join(map(str, problems)) if isinstance(problems, list) else str(problems)
        parts.append(f"{name}: {text}")
    return ", ".join(parts)


def _join(*parts: Any) -> str:
    return " - ".join(str(p) for p in parts if isinstance(p, str | int) and str(p))


def _from_json(data: Any) -> str:
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):  # Salla: {"error": {"code", "message", "fields"}}
        return _join(error.get("message"), _fields(error.get("fields")))
    if "validationFailures" in data:
        return _join(data.get("message"), _fields(data["validationFailures"]))
    if "detail" in data or "title" in data:  # RFC 9457 problem+json
        return _join(data.get("title"), data.get("detail"))
    return _join(error, data.get("message") or data.get("error_description"))


def _from_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    return " ".join(text.split())[:200]


def platform_message(body: bytes) -> str:
    """The platform's own explanation in an error body, in one line.

    Knows ``{"error", "message"}``, OAuth ``error_description``, problem+json ``detail``, a bare
    JSON string, ``{"validationFailures": {...}}`` and Salla's ``{"error": {"message",
    "fields"}}``; anything else gives the page title or the start of the text.
    """
    data = _loads(body)
    message = _from_json(data) if data is not None else _from_text(body)
    return message[:1000]
