"""Salync's webhooks: verifying a delivery, the pages each event means, subscribing.

Derived (API-FACTS §4.2; Salync documents only that Pro workspaces get webhooks): a delivery
is ``{"id": "evt_…", "type", "created_at", "data"}`` signed ``X-Salync-Signature: sha256=<hex
HMAC-SHA256(secret, timestamp + "." + raw body)>`` with ``X-Salync-Timestamp``; ``data.object``
is the changed resource, as its listing shows it, so most events apply as they come:

* ``product.*`` -> the product page (an archived product tombstones it and its variants);
* ``variant.*`` -> the parent product, fetched (a variant's record needs its product);
* ``stock.adjusted`` -> the adjustment and the new levels it made;
* ``purchase_order.*`` and ``channel.status_changed`` -> the object itself.

Subscriptions: ``POST /webhooks`` with ``{"url", "secret", "events"}`` (one endpoint takes every
event, so one URL is enough).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from salync_core.errors import DataError
from salync_core.platform import ConnectionContext, Page, Platform, Stream
from salync_core.webhooks import WebhookEvent, WebhookRejected, WebhookSubscription
from salync_core.webhooks.verify import check_signature, header, json_object, webhook_secret

EVENTS: Final = (
    "product.created",
    "product.updated",
    "product.archived",
    "variant.created",
    "variant.updated",
    "stock.adjusted",
    "purchase_order.created",
    "purchase_order.status_changed",
    "purchase_order.received",
    "channel.status_changed",
)
OBJECT_STREAMS: Final = {
    "product": "products",
    "purchase_order": "purchase_orders",
    "channel": "channels",
}
"""Event prefix -> the stream whose items ``data.object`` is."""


def parse(ctx: ConnectionContext, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
    """One verified delivery's event (Salync sends one event per delivery)."""
    secret = webhook_secret(ctx)
    timestamp = header(headers, "X-Salync-Timestamp")
    if not timestamp or not timestamp.isdigit():
        raise WebhookRejected(401, "unsigned delivery (no X-Salync-Timestamp header)")
    signed = timestamp.encode() + b"." + body
    check_signature(header(headers, "X-Salync-Signature"), secret, signed, "X-Salync-Signature")
    event = json_object(body)
    event_id, kind, data = event.get("id"), event.get("type"), event.get("data")
    if not isinstance(event_id, str) or not event_id or not isinstance(kind, str) or not kind:
        raise WebhookRejected(400, "a Salync event needs a string id and type")
    if not isinstance(data, dict):
        raise WebhookRejected(400, f"event {event_id}: data is not an object")
    return [WebhookEvent(kind, data, event_id)]


async def pages(
    platform: Platform, ctx: ConnectionContext, event: WebhookEvent
) -> AsyncIterator[tuple[Stream, Page]]:
    """The pages one event means (nothing for an event the engine does not use)."""
    data: dict[str, Any] = event.data
    ref = f"webhook {event.type} {event.id}"
    prefix = event.type.split(".", 1)[0]
    if prefix in OBJECT_STREAMS:
        yield platform.stream(OBJECT_STREAMS[prefix]), Page([_object(data, event)], None, ref)
    elif prefix == "variant":
        product_id = data.get("product_id")
        if not isinstance(product_id, str) or not product_id:
            raise DataError(f"{ref}: no product_id")
        product, response = await ctx.http.get_json(f"products/{product_id}")
        yield platform.stream("products"), Page([product], None, response.url)
    elif event.type == "stock.adjusted":
        yield platform.stream("stock_adjustments"), Page([_object(data, event)], None, ref)
        levels = data.get("levels")
        if not isinstance(levels, list):
            raise DataError(f"{ref}: levels is not a list")
        yield platform.stream("stock"), Page(levels, None, ref)


def _object(data: Mapping[str, Any], event: WebhookEvent) -> Any:
    value = data.get("object")
    if not isinstance(value, dict):
        raise DataError(f"webhook {event.type} {event.id}: data.object is not an object")
    return value


async def subscribe(ctx: ConnectionContext, url: str) -> Sequence[WebhookSubscription]:
    """One endpoint for every event the engine uses."""
    body = {"url": url, "secret": webhook_secret(ctx), "events": list(EVENTS)}
    reply = (await ctx.http.request("POST", "webhooks", json=body)).json()
    endpoint_id = reply.get("id") if isinstance(reply, dict) else None
    return [WebhookSubscription(event, url, endpoint_id) for event in EVENTS]
