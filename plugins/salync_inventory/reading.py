"""Reading Salync listings page by page, each page with the cursor to store once it is applied.

Every Salync listing answers ``{"data": [...], "next_cursor": "…" | null}`` in ascending
``(updated_at, id)`` order and takes ``limit`` (at most 100), ``cursor`` and an inclusive
``updated_since`` [DERIVED, API-FACTS §4.2]. A pass starts at the platform's own time (the
first answer's ``Date``), so changes made while it runs are read by the next one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from salync_core.errors import BadResponseError, DataError, NotFoundError
from salync_core.http import Response, path_segment
from salync_core.platform import ConnectionContext, Page, Reject
from salync_core.state.cursors import WatermarkCursor
from salync_inventory.cursors import ListingsCursor

PAGE_SIZE = 100


def query(since: str | None, token: str | None, **extra: str) -> dict[str, str]:
    """A listing's query string: a full page, after ``token``, changed since ``since``."""
    params = {"limit": str(PAGE_SIZE), **extra}
    if since is not None:
        params["updated_since"] = since
    if token is not None:
        params["cursor"] = token
    return params


async def get_page(
    ctx: ConnectionContext, path: str, params: Mapping[str, str]
) -> tuple[list[Any], str | None, Response]:
    """One page: its items, the next page's token (None on the last page), the answer."""
    data, response = await ctx.http.get_json(path, params=params)
    items = data.get("data") if isinstance(data, dict) else None
    token = data.get("next_cursor") if isinstance(data, dict) else None
    if not isinstance(items, list) or not (token is None or isinstance(token, str)):
        raise BadResponseError(
            'the answer is not a Salync listing ({"data": [...], "next_cursor": ...})',
            body=response.body,
            connection=ctx.name,
            url=response.url,
        )
    return items, token or None, response


def _platform_now(response: Response) -> datetime:
    return response.server_time or datetime.now(UTC)


async def watermark_pages(
    ctx: ConnectionContext, path: str, cursor: Any, **extra: str
) -> AsyncIterator[Page]:
    """The pages of one listing changed since the cursor's watermark."""
    state = WatermarkCursor.from_json(cursor)
    while True:
        params = query(state.since, state.next, **extra)
        items, token, response = await get_page(ctx, path, params)
        state = state.begin(_platform_now(response))
        full = state.since is None
        state = state.advance(token)
        yield Page(items, state.to_json(), response.url, complete=token is None, full=full)
        if token is None:
            return


async def channel_ids(ctx: ConnectionContext) -> tuple[list[str], datetime]:
    """Every channel's id (all pages), and the platform's time at the first answer."""
    ids: list[str] = []
    token: str | None = None
    started: datetime | None = None
    while True:
        items, token, response = await get_page(ctx, "channels", query(None, token))
        started = started or _platform_now(response)
        ids += [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)]
        if token is None:
            return ids, started


async def listing_pages(ctx: ConnectionContext, cursor: Any) -> AsyncIterator[Page]:
    """Every channel's listings changed since that channel's watermark.

    A pass begins with a page holding no items, only the channels to read, so a pass stopped
    later resumes without listing the channels again."""
    state = ListingsCursor.from_json(cursor)
    if not state.in_progress:
        state = state.start(*await channel_ids(ctx))
        yield Page([], state.to_json(), "channels", complete=not state.in_progress)
    while (channel := state.current) is not None:
        try:
            path = f"channels/{path_segment(channel, what='channel id')}/listings"
        except DataError as exc:  # an id no URL may carry: say so, read the other channels
            state = state.advance(None)
            reject = Reject({"channel_id": channel}, str(exc))
            yield Page(
                [], state.to_json(), "channels", rejects=[reject], complete=not state.in_progress
            )
            continue
        items, token, where = await _channel_listings(ctx, state, channel, path)
        state = state.advance(token)
        yield Page(_tagged(items, channel), state.to_json(), where, complete=not state.in_progress)


async def _channel_listings(
    ctx: ConnectionContext, state: ListingsCursor, channel: str, path: str
) -> tuple[list[Any], str | None, str]:
    """One page of a channel's listings; a channel gone since the pass began has none."""
    try:
        items, token, response = await get_page(
            ctx, path, query(state.since.get(channel), state.next)
        )
    except NotFoundError as exc:
        return [], None, exc.url
    return items, token, response.url


def _tagged(items: list[Any], channel: str) -> list[Any]:
    """Listing items with the channel they belong to (Salync's items do not say)."""
    return [{**item, "channel_id": channel} if isinstance(item, dict) else item for item in items]
