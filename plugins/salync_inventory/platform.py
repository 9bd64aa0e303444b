"""The Salync inventory platform (registered as ``salync``).

Documented facts it relies on (``shared/platforms/API-FACTS.md`` §4.1): ``Authorization:
Bearer <api key>`` over HTTPS; no API on the Starter plan; per key, Growth 500 requests a day and
20 a minute, Pro 10,000 a day and 200 a minute, the day resetting at midnight UTC; a 429 with
``Retry-After`` beyond either; errors as ``{"error", "message"}``; the resources (products and
variants, stock levels and adjustments, suppliers, purchase orders, channels and listing states).

Derived, not documented (§4.2; Salync publishes no endpoint paths): the base ``…/v1``; the
listings ``GET /products`` (with ``include_archived=true``), ``/suppliers``, ``/purchase-orders``,
``/channels`` and ``/channels/{id}/listings``, their ``limit``/``cursor``/``updated_since``
parameters and ``{"data", "next_cursor"}`` envelope; the writes ``POST /products``, ``PATCH
/products/{id}``, ``POST /products/{id}/archive`` and ``POST /stock/adjustments``; archiving as
the only deletion. Where §4.2 is silent, the emulator's own derived design: the same paging on
``GET /stock`` and ``GET /stock/adjustments``, ``location_id`` on an adjustment, and
``Idempotency-Key`` on POSTs (its ``gate`` module).

Streams, all incremental on ``updated_at`` with a :class:`WatermarkCursor` (``listings``: a
:class:`~salync_inventory.cursors.ListingsCursor`, one watermark per channel): ``products`` also
carries the variants and reads archived products as tombstones; ``stock``, ``stock_adjustments``,
``suppliers``, ``purchase_orders``, ``channels``, ``listings``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from salync_core.errors import ConfigError
from salync_core.platform import (
    ConnectionContext,
    Limits,
    Option,
    Outbound,
    Page,
    Platform,
    PushResult,
    Record,
    Reject,
    Stream,
    Window,
)
from salync_core.webhooks import WebhookEvent, WebhookSubscription
from salync_core.webhooks.verify import WEBHOOK_SECRET
from salync_inventory import mapping, outbound, reading, webhooks, writing

PLANS = {
    "growth": Limits(windows=(Window(20, 60.0),), daily=500),
    "pro": Limits(windows=(Window(200, 60.0),), daily=10_000),
}
PATHS = {
    "products": ("products", {"include_archived": "true"}),
    "stock": ("stock", {}),
    "stock_adjustments": ("stock/adjustments", {}),
    "suppliers": ("suppliers", {}),
    "purchase_orders": ("purchase-orders", {}),
    "channels": ("channels", {}),
}
"""Each watermark stream's listing and its own parameters."""


def _stream(name: str, entity: str, **kwargs: Any) -> Stream:
    """A watermark stream; no pass ends in a sweep (deletions are reported or reconciled)."""
    return Stream(
        name, entity, incremental_field="updated_at", max_page_size=100, sweeps=False, **kwargs
    )


class SalyncPlatform(Platform):
    """Salync's inventory API, read and written one request at a time."""

    name: ClassVar[str] = "salync"
    streams: ClassVar[tuple[Stream, ...]] = (
        _stream("products", "product", reports_deletions=True, also=("variant",)),
        _stream("stock", "stock_level"),
        _stream("stock_adjustments", "stock_adjustment"),
        _stream("suppliers", "supplier"),
        _stream("purchase_orders", "purchase_order"),
        _stream("channels", "channel"),
        _stream("listings", "listing"),
    )
    push_batch_size: ClassVar[int] = 1
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "plan",
            choices=tuple(PLANS),
            default="growth",
            help="the account's plan, which sets the request limits (Starter has no API)",
        ),
        WEBHOOK_SECRET,
    )
    webhook_events: ClassVar[tuple[str, ...]] = webhooks.EVENTS

    def limits(self, options: Mapping[str, Any]) -> Limits:
        """The plan's limits (option ``plan``: ``growth``, the default, or ``pro``)."""
        plan = options.get("plan", "growth")
        if plan not in PLANS:
            raise ConfigError(
                f"plan {plan!r} is not one of {', '.join(PLANS)} "
                "(the Starter plan has no API access)"
            )
        return PLANS[plan]

    def fetch(self, ctx: ConnectionContext, stream: Stream, cursor: Any) -> AsyncIterator[Page]:
        if stream.name == "listings":
            return reading.listing_pages(ctx, cursor)
        path, extra = PATHS[stream.name]
        return reading.watermark_pages(ctx, path, cursor, **extra)

    def map_inbound(
        self, ctx: ConnectionContext, stream: Stream, item: Any
    ) -> Iterable[Record | Reject]:
        return mapping.BY_STREAM[stream.name](item, ctx.locale)

    def writable_fields(self, entity: str) -> frozenset[str]:
        return outbound.WRITABLE.get(entity, frozenset())

    def holds(self, ctx: ConnectionContext, entity: str, field: str, key: str) -> bool:
        """Salync text is single-language (the connection's locale); it keeps no attributes."""
        return field != "attributes" and key == ctx.locale

    def map_outbound(self, ctx: ConnectionContext, item: Outbound) -> Any:
        return outbound.body(item, ctx.locale)

    async def push(
        self, ctx: ConnectionContext, entity: str, batch: Sequence[tuple[Outbound, Any]]
    ) -> Sequence[PushResult]:
        return [await writing.push_one(ctx, item, body) for item, body in batch]

    def parse_webhook(
        self, ctx: ConnectionContext, headers: Mapping[str, str], body: bytes
    ) -> Sequence[WebhookEvent]:
        return webhooks.parse(ctx, headers, body)

    def webhook_pages(
        self, ctx: ConnectionContext, event: WebhookEvent
    ) -> AsyncIterator[tuple[Stream, Page]]:
        return webhooks.pages(self, ctx, event)

    async def subscribe_webhooks(
        self, ctx: ConnectionContext, url: str
    ) -> Sequence[WebhookSubscription]:
        return await webhooks.subscribe(ctx, url)
