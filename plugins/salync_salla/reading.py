"""Reading Salla listings: ``page``/``per_page`` (at most 60) in the ``{"data",
"pagination"}`` envelope (API-FACTS §3.2).

Salla has no "changed since" filter, so (see the platform docstring for the cost):

* products and customers are read in full passes; the last page of a pass carries a
  :class:`~salync_core.platform.Sweep`, so what two passes in a row no longer saw is tombstoned
  under the mass-deletion guard (see :func:`full_pages`). The cursor ``{"page": n, "since":
  ..., "previous": ...}`` resumes a pass stopped midway.
* orders are read by creation date: ``from_date`` is the Riyadh date the previous pass began,
  minus :data:`ORDER_OVERLAP_DAYS`, so an order created around midnight or while a pass ran is
  read again rather than missed (re-reading is no change).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import anyio

from salync_core.errors import BadResponseError
from salync_core.http import Response
from salync_core.platform import ConnectionContext, Page, Sweep
from salync_salla.mapping import RIYADH

PAGE_SIZE = 60
ORDER_OVERLAP_DAYS = 1
CUSTOMERS_WINDOW = (500, 600.0)
"""Customers endpoints: 500 requests per 10 minutes, whatever the plan (API-FACTS §3.3)."""


async def get_page(
    ctx: ConnectionContext, path: str, page: int, **extra: str
) -> tuple[list[Any], bool, int | None, Response]:
    """One page: its items, whether another page follows, the total, the answer."""
    params = {"page": str(page), "per_page": str(PAGE_SIZE), **extra}
    data, response = await ctx.http.get_json(path, params=params)
    items = data.get("data") if isinstance(data, dict) else None
    paging = data.get("pagination") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BadResponseError(
            'the answer is not a Salla listing ({"data": [...], "pagination": {...}})',
            body=response.body,
            connection=ctx.name,
            url=response.url,
        )
    more, total = False, None
    if isinstance(paging, dict):
        pages, current = paging.get("totalPages"), paging.get("currentPage", page)
        links = paging.get("links")
        if isinstance(pages, int) and isinstance(current, int):
            more = current < pages
        elif isinstance(links, dict):
            more = bool(links.get("next"))
        total = paging.get("total") if isinstance(paging.get("total"), int) else None
    else:
        more = len(items) >= PAGE_SIZE
    return items, more and bool(items), total, response


def _now(response: Response) -> datetime:
    return response.server_time or datetime.now(UTC)


async def full_pages(
    ctx: ConnectionContext, path: str, cursor: Any, entities: tuple[str, ...]
) -> AsyncIterator[Page]:
    """A full pass over ``path``, resumable; its last page sweeps ``entities``.

    Page-number paging shifts items when one is deleted mid-pass, so a live item may go unread
    in one pass. The sweep therefore tombstones only what was unseen by this pass *and the one
    before* (``since`` is when the previous pass began): an item is skipped by two passes in a
    row only if deletions keep racing it, and a real deletion (or one a ``product.deleted``
    webhook missed) is tombstoned by the second pass after it."""
    state = cursor if isinstance(cursor, dict) else {}
    page = int(state.get("page", 1))
    since = state.get("since") or datetime.now(UTC).isoformat()
    previous = state.get("previous")
    pacer = CustomersPacer(ctx) if path == "customers" else None
    while True:
        if pacer is not None:
            await pacer.wait()
        items, more, total, response = await get_page(ctx, path, page)
        if more:
            next_cursor: Any = {"page": page + 1, "since": since, "previous": previous}
            yield Page(items, next_cursor, response.url, total=total, full=True)
            page += 1
            continue
        sweep = Sweep(entities, previous) if isinstance(previous, str) else None
        done = {"previous": since}
        yield Page(items, done, response.url, complete=True, total=total, full=True, sweep=sweep)
        return


async def order_pages(ctx: ConnectionContext, cursor: Any) -> AsyncIterator[Page]:
    """Orders created since the previous pass began (minus the overlap), newest first.

    Newest-first paging while orders arrive shifts items to later pages: an item may be read
    twice, never skipped."""
    state = cursor if isinstance(cursor, dict) else {}
    from_date = state.get("from_date")
    page = int(state.get("page", 1))
    started = state.get("started")
    while True:
        extra = {"from_date": from_date} if isinstance(from_date, str) else {}
        items, more, total, response = await get_page(ctx, "orders", page, **extra)
        if started is None:
            started = _now(response).astimezone(RIYADH).date().isoformat()
        if more:
            next_cursor = {"from_date": from_date, "page": page + 1, "started": started}
            yield Page(items, next_cursor, response.url, total=total)
            page += 1
            continue
        begun = date.fromisoformat(started) - timedelta(days=ORDER_OVERLAP_DAYS)
        done = {"from_date": begun.isoformat()}
        yield Page(items, done, response.url, complete=True, total=total, full=from_date is None)
        return


class CustomersPacer:
    """Keeps customers requests within 500 per 10 minutes of platform time.

    The shared pacer paces the store's bucket; this cap applies to one endpoint family only,
    so the stream keeps its own sliding log (one per pass: a pass is the only reader)."""

    def __init__(self, ctx: ConnectionContext) -> None:
        self.scale = ctx.http.time_scale
        self.limit, self.seconds = CUSTOMERS_WINDOW
        self.sent: deque[float] = deque()

    async def wait(self) -> None:
        now = time.monotonic()
        window = self.seconds / self.scale
        while self.sent and self.sent[0] <= now - window:
            self.sent.popleft()
        if len(self.sent) >= self.limit:
            await anyio.sleep(self.sent[0] + window - now)
        self.sent.append(time.monotonic())
