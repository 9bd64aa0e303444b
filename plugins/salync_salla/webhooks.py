"""Salla's webhooks: verifying a delivery, the pages each event means, subscribing.

Facts followed (API-FACTS §3.5, §3.5a): a delivery is ``{"event", "merchant", "created_at",
"data"}`` with no event id (the core keys it by the body's hash, so a redelivery is the same
event); two security strategies, accepted both, as the sources disagree on the default:

* signature: ``X-Salla-Signature`` = hex HMAC-SHA256 of the raw body under the webhook secret
  (an optional ``sha256=`` prefix is tolerated), checked over the raw bytes: Salla's PHP
  encoder escapes ``/``, so re-serialised JSON would not match;
* token: ``Authorization`` holds the secret itself (no ``Bearer``).

A delivery carrying neither header is refused, as is one whose ``X-Salla-Security-Strategy``
names the other strategy's header missing.

Events and their pages: ``product.created|updated`` -> the product (its SKUs and stock with
it); ``product.deleted`` -> tombstones by Salla id for the product, its stock and each of its SKUs
(variant and stock) the payload lists, in one page; ``order.*`` -> the order, fetched with
``GET /orders/{id}`` when the payload lacks its lines, status or date; ``order.deleted`` -> a
tombstone; ``customer.created|updated`` -> the customer. Other events are acknowledged and
ignored.

Subscribing: Salla keeps one subscription per URL, so each event gets its own URL under the
connection's address (``.../webhooks/<connection>/<event>``), then ``PUT /webhooks/{id}``
sets the signature strategy and the connection's ``webhook_secret``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from salync_core.errors import DataError
from salync_core.platform import ConnectionContext, Deletion, Page, Platform, Stream
from salync_core.webhooks import WebhookEvent, WebhookRejected, WebhookSubscription
from salync_core.webhooks.verify import (
    check_signature,
    check_token,
    header,
    json_object,
    webhook_secret,
)

EVENTS: Final = (
    "product.created",
    "product.updated",
    "product.deleted",
    "order.created",
    "order.updated",
    "order.status.updated",
    "order.deleted",
    "customer.created",
    "customer.updated",
)
"""The events ``salync webhooks subscribe`` registers."""
ORDER_NEEDS: Final = ("items", "status", "date")
"""An order payload without one of these is partial: the order is fetched."""


def parse(ctx: ConnectionContext, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
    """The verified delivery's event."""
    secret = webhook_secret(ctx)
    signed = header(headers, "X-Salla-Signature")
    strategy = (header(headers, "X-Salla-Security-Strategy") or "").strip().lower()
    if signed is not None or strategy == "signature":
        check_signature(signed, secret, body, "X-Salla-Signature")
    else:
        check_token(header(headers, "Authorization"), secret, "Authorization")
    envelope = json_object(body)
    event, data = envelope.get("event"), envelope.get("data")
    if not isinstance(event, str) or not event:
        raise WebhookRejected(400, "a Salla delivery needs its event name")
    if not isinstance(data, dict):
        raise WebhookRejected(400, f"{event}: data is not an object")
    return [WebhookEvent(event, data)]


async def pages(
    platform: Platform, ctx: ConnectionContext, event: WebhookEvent
) -> AsyncIterator[tuple[Stream, Page]]:
    """The pages one event means (none for an event the engine does not use)."""
    data: dict[str, Any] = event.data
    ref = f"webhook {event.type}"
    kind, _, action = event.type.partition(".")
    if kind not in ("product", "order", "customer"):
        return
    stream = platform.stream(kind + "s")
    if action == "deleted":
        deletions = [Deletion(kind, external_id=_id(data, ref))]
        if kind == "product":
            deletions += _product_parts(_id(data, ref), data)
        yield stream, Page([], None, ref, deletions=deletions)
    elif kind == "order" and any(data.get(name) in (None, "", []) for name in ORDER_NEEDS):
        order, response = await ctx.http.get_json(f"orders/{_id(data, ref)}")
        full = order.get("data") if isinstance(order, dict) else None
        if not isinstance(full, dict):
            raise DataError(f"{ref}: GET orders/{_id(data, ref)} holds no order")
        yield stream, Page([full], None, response.url)
    elif kind == "order" or action in ("created", "updated"):
        yield stream, Page([data], None, ref)


def _product_parts(product_id: str, data: Mapping[str, Any]) -> list[Deletion]:
    """What goes with a deleted product, tombstoned in the same page (one transaction): its
    own stock level and each SKU (variant and stock) the payload lists, by the Salla ids the
    mirror knows them by; ids the mirror never saw are skipped. Product events carry the
    product model (API-FACTS §3.5), SKUs included; a payload without them leaves the SKUs to
    the next full pass's sweep."""
    parts = [Deletion("stock_level", external_id=product_id)]
    for sku in data.get("skus") or ():
        variant_id = sku.get("id") if isinstance(sku, dict) else None
        if isinstance(variant_id, int | str) and not isinstance(variant_id, bool):
            external = f"{product_id}:{variant_id}"
            parts += [Deletion("variant", external_id=external)]
            parts += [Deletion("stock_level", external_id=external)]
    return parts


def _id(data: Mapping[str, Any], ref: str) -> str:
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise DataError(f"{ref}: no id")
    return str(value).strip()


async def subscribe(ctx: ConnectionContext, url: str) -> Sequence[WebhookSubscription]:
    """One subscription per event, each at a URL of its own, signed with the secret."""
    secret = webhook_secret(ctx)
    made = []
    for event in EVENTS:
        target = f"{url.rstrip('/')}/{event}"
        body = {"name": f"salync {ctx.name} {event}", "event": event, "url": target, "version": 2}
        reply = (await ctx.http.request("POST", "webhooks/subscribe", json=body)).json()
        webhook_id = _data(reply).get("id")
        strategy = {"security_strategy": "signature", "secret": secret}
        await ctx.http.request("PUT", f"webhooks/{webhook_id}", json=strategy)
        made.append(WebhookSubscription(event, target, str(webhook_id)))
    return made


def _data(reply: Any) -> dict[str, Any]:
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, dict) or data.get("id") is None:
        raise DataError("Salla's answer to webhooks/subscribe holds no webhook id")
    return data
