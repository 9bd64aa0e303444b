"""One HTTP answer, read whole, and the request counters kept per platform day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import orjson
from attrs import define, field, frozen
from multidict import CIMultiDictProxy

from salync_core.errors import BadResponseError
from salync_core.secrets import redactor

BOM = b"\xef\xbb\xbf"


@frozen
class Response:
    """An answer whose body has been read in full (pages are small; retries need the bytes)."""

    status: int
    headers: CIMultiDictProxy[str] = field(repr=False)
    body: bytes = field(repr=False)
    url: str
    connection: str = field(default="", repr=False)
    """The connection that received it, so a parse error names it."""

    def json(self) -> Any:
        """The body parsed as JSON (a UTF-8 BOM is tolerated); :class:`BadResponseError` if
        it is not JSON, such as a truncated body or a proxy's HTML page."""
        try:
            return orjson.loads(self.body.removeprefix(BOM))
        except orjson.JSONDecodeError as exc:
            raise BadResponseError(
                f"{redactor.redact(self.url)} answered {self.status} with {len(self.body)} "
                f"bytes that are not JSON ({self.headers.get('Content-Type', 'no content type')})",
                body=self.body,
                connection=self.connection,
                status=self.status,
                url=redactor.redact(self.url),
            ) from exc

    @property
    def server_time(self) -> datetime | None:
        """The server's clock from the ``Date`` header; ``None`` if absent or unreadable."""
        text = self.headers.get("Date")
        return None if text is None else _server_time(text)


@lru_cache(maxsize=16)
def _server_time(text: str) -> datetime | None:
    """A ``Date`` header's time in UTC (cached: it changes once a second, and the client reads
    it twice for every answer)."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else None


@define
class Usage:
    """Request counters for one platform day (what the store's usage ledger records)."""

    requests: int = 0
    """Every attempt sent, retries included: what a platform counts against a quota."""
    throttled: int = 0
    """429 answers received."""
    retries: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.throttled += other.throttled
        self.retries += other.retries
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out


@define
class UsageBook:
    """Counters per platform day not yet handed to the engine, and totals for the client's life."""

    total: Usage = field(factory=Usage)
    pending: dict[date, Usage] = field(factory=dict)

    def record(self, day: date, attempt: Usage) -> None:
        self.total.add(attempt)
        self.pending.setdefault(day, Usage()).add(attempt)

    def take(self) -> dict[date, Usage]:
        taken, self.pending = self.pending, {}
        return taken
