"""Keyset pagination shared by every Salync listing. [DERIVED — API-FACTS §4.2]

``GET /things?limit=50&cursor=…&updated_since=2026-01-31T00:00:00Z`` answers
``{"data": [...], "next_cursor": "…" | null}``:

* items come in ascending ``(updated_at, id)`` order;
* ``cursor`` is opaque to clients: URL-safe base64 of the last item's ``(updated_at, id)``. The
  next page holds the items strictly after that position, so an item changed while a client
  pages moves behind the cursor (its new ``updated_at`` is later than anything served before)
  and is served again on a later page: changes during paging never make a listing skip an item;
* ``updated_since`` keeps items with ``updated_at >= since`` (inclusive: a client may see the
  item at its high-water mark twice, never zero times);
* ``next_cursor`` is ``null`` on the last page;
* ``limit`` is 1..100 (default 50); unknown, repeated or malformed parameters answer 400
  ``invalid_parameter``.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import orjson
from attrs import define, field
from multidict import MultiMapping

from salync_inventory.emulator.models import ApiError, parse_timestamp_ms

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
COMMON_PARAMETERS = ("limit", "cursor", "updated_since")
SortKey = tuple[int, str]
T = TypeVar("T")


def invalid_parameter(message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message)


@define(frozen=True)
class ListQuery:
    """A listing's validated query string."""

    limit: int = DEFAULT_LIMIT
    after: SortKey | None = None
    updated_since_ms: int | None = None
    filters: dict[str, str] = field(factory=dict)
    """The listing's own parameters (``sku``, ``status``, ``include_archived``...) as sent."""

    def flag(self, name: str) -> bool:
        """A ``true``/``false`` filter, ``false`` when absent."""
        value = self.filters.get(name, "false")
        if value not in ("true", "false"):
            raise invalid_parameter(f"{name} must be true or false")
        return value == "true"

    def choice(self, name: str, choices: Iterable[str]) -> str | None:
        value = self.filters.get(name)
        options = list(choices)
        if value is not None and value not in options:
            raise invalid_parameter(f"{name} must be one of: {', '.join(options)}")
        return value


def parse_query(query: MultiMapping[str], filters: Iterable[str] = ()) -> ListQuery:
    """Validate a listing's query string; ``filters`` names the listing's own parameters."""
    allowed = (*COMMON_PARAMETERS, *filters)
    for name in query:
        if name not in allowed:
            raise invalid_parameter(f"Unknown parameter {name} (accepted: {', '.join(allowed)})")
        if len(query.getall(name)) > 1:
            raise invalid_parameter(f"{name} was given more than once")
    return ListQuery(
        limit=_limit(query.get("limit")),
        after=decode_cursor(query["cursor"]) if "cursor" in query else None,
        updated_since_ms=_since(query.get("updated_since")),
        filters={name: query[name] for name in filters if name in query},
    )


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise invalid_parameter(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_timestamp_ms(text)
    except ValueError:
        message = (
            "updated_since must be an ISO-8601 timestamp with a zone, like 2026-01-31T00:00:00Z"
        )
        raise invalid_parameter(message) from None


def encode_cursor(key: SortKey) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).rstrip(b"=").decode()


def decode_cursor(text: str) -> SortKey:
    try:
        decoded: Any = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        decoded = None
    valid = (
        isinstance(decoded, list)
        and len(decoded) == 2
        and isinstance(decoded[0], int)
        and isinstance(decoded[1], str)
    )
    if not valid:
        raise invalid_parameter("cursor is not valid; use next_cursor from the previous page")
    return decoded[0], decoded[1]


def paginate(
    items: Iterable[T], key: Callable[[T], SortKey], query: ListQuery
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the cursor of the next page (``None`` on the last page)."""

    def wanted() -> Iterator[T]:
        for item in items:
            position = key(item)
            since_ok = query.updated_since_ms is None or position[0] >= query.updated_since_ms
            if since_ok and (query.after is None or position > query.after):
                yield item

    head = heapq.nsmallest(query.limit + 1, wanted(), key=key)
    page = head[: query.limit]
    next_cursor = encode_cursor(key(page[-1])) if len(head) > query.limit else None
    return page, next_cursor
