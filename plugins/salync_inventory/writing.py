"""Writing to Salync, one record per request (the API has no bulk endpoints).

Every POST carries ``Idempotency-Key: <the outbox row's key>`` [DERIVED: the emulator's design,
Stripe's convention; not in API-FACTS]: Salync runs a POST once per key and replays its first
answer to a retry. A write counts as done only when Salync's answer is readable; an unreadable
one (cut short, a proxy's page) raises :class:`BadResponseError` and the engine's outbox sends
the write again with the same key, so it still applies once. ``PATCH`` sets values, so sending
it twice is harmless. A refusal (4xx) becomes a rejected result with Salync's message; other
failures propagate for the engine to retry or report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from salync_core.errors import BadResponseError, DataError, NotFoundError, RejectedError
from salync_core.http import path_segment
from salync_core.platform import ConnectionContext, Outbound, PushResult


async def push_one(ctx: ConnectionContext, item: Outbound, body: Any) -> PushResult:
    """Send one record; a refusal is a rejected result carrying the platform's message, and
    so is an id that cannot be put in a URL path (:func:`~salync_core.http.path_segment`)."""
    try:
        return await WRITERS[item.entity](ctx, item, body)
    except (RejectedError, NotFoundError, DataError) as exc:  # DataError: an unusable id
        return PushResult(item.key, "rejected", message=str(exc))


async def send(
    ctx: ConnectionContext, item: Outbound, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    """One write, and Salync's answer confirming it."""
    key = item.idempotency_key if method == "POST" else ""
    headers = {"Idempotency-Key": key} if key else {}
    response = await ctx.http.request(method, path, json=body, headers=headers)
    answer = response.json()
    if not isinstance(answer, dict):
        raise BadResponseError(
            "Salync's answer to a write is not a JSON object",
            body=response.body,
            connection=ctx.name,
            url=response.url,
        )
    return answer


async def product(ctx: ConnectionContext, item: Outbound, body: Any) -> PushResult:
    """Create, update or archive (Salync never deletes a product)."""
    if item.op == "delete":
        await send(ctx, item, "POST", f"products/{path_segment(item.external_id)}/archive")
        return PushResult(item.key, "ok", external_id=item.external_id)
    if item.external_id is not None:
        await send(ctx, item, "PATCH", f"products/{path_segment(item.external_id)}", body)
        return PushResult(item.key, "ok", external_id=item.external_id)
    created = (await send(ctx, item, "POST", "products", body)).get("id")
    return PushResult(item.key, "ok", external_id=created if isinstance(created, str) else None)


async def adjustment(ctx: ConnectionContext, item: Outbound, body: Any) -> PushResult:
    """Record a movement. Its Salync id becomes the record's external id, so when the
    stock_adjustments stream reads it back the mirror knows it as the same record."""
    answer = await send(ctx, item, "POST", "stock/adjustments", body)
    created = answer.get("adjustment")
    adjustment_id = created.get("id") if isinstance(created, dict) else None
    return PushResult(
        item.key, "ok", external_id=adjustment_id if isinstance(adjustment_id, str) else None
    )


async def stock_level(ctx: ConnectionContext, item: Outbound, body: Any) -> PushResult:
    """The level moves by the adjustment in ``body``; none when Salync already holds it."""
    if body is not None:
        await send(ctx, item, "POST", "stock/adjustments", body)
    return PushResult(item.key, "ok")


Writer = Callable[[ConnectionContext, Outbound, Any], Awaitable[PushResult]]
WRITERS: dict[str, Writer] = {
    "product": product,
    "stock_adjustment": adjustment,
    "stock_level": stock_level,
}
