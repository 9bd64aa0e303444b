"""The Salla platform (registered as ``salla``): Merchant API v2 with OAuth 2.0.

Facts relied on (``shared/platforms/API-FACTS.md`` §3): the Admin API at
``https://api.salla.dev/admin/v2`` with ``Authorization: Bearer``; the accounts host
``https://accounts.salla.sa`` (``/oauth2/auth``, ``/oauth2/token``, ``/oauth2/user/info``);
single-use refresh tokens; pages of at most 60; a per-store leaky bucket (Plus 120, Pro 360,
Special 720) described by ``X-RateLimit-*`` headers on every answer; customers capped at 500
requests per 10 minutes; no "updated since" filter (orders filter by creation date only);
deletions only through webhooks; stock written through the queued ``quantities/bulk`` call.

Streams: ``products`` (also its SKUs as ``variant`` and each SKU's ``stock_level``) and
``customers`` in full passes with a sweep; ``orders`` (also ``order_line``) by ``from_date``
windows with a one-day overlap.

Incremental strategy and its cost, for a shop of 10,000 products and 500 orders a day
-------------------------------------------------------------------------------------------
Webhooks (another module) bring changes within seconds; polling is the safety net:

* products: a full pass is ceil(10,000 / 60) = 167 requests. Every 6 hours: 668 a day. List
  items carry their options and SKUs [DERIVED]; if a store's list omitted them, one detail GET
  per product with options would be added (up to 10,000 a pass, so pass far less often).
* orders: a pass reads the orders created since the day before the previous pass began: about
  1,000 orders = 17 pages. Every 15 minutes: 96 x 17 = 1,632 a day. Status changes of older
  orders arrive by webhook (``order.status.updated``) and by a daily full scan if wanted.
* customers: full pass once a day: (customer count / 60), e.g. 20,000 customers = 334 requests,
  well under the 500 per 10 minutes cap (the stream paces itself to it).
* stock pushes: 1 bulk call per 100 changed SKUs carrying increments and decrements (never an
  overwrite: a sale made meanwhile is kept), one GET per product before the send and one
  after, then one GET per product each time the core asks again about a still-queued line
  (15 s to 10 minutes apart); a line is never sent twice.

Total: about 2,650 requests a day, i.e. under 2 a minute on average, against a Plus bucket
that leaks 60 a minute: polling never competes with webhooks-driven fetches or pushes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from salync_core.errors import ConfigError, DataError
from salync_core.http import OAuth2Credentials
from salync_core.oauth_connect import OAuthApp
from salync_core.platform import (
    ConnectionContext,
    Credentials,
    Limits,
    Option,
    Outbound,
    Page,
    Platform,
    PushResult,
    Record,
    Reject,
    Stream,
)
from salync_core.secrets import Secret
from salync_core.webhooks import WebhookEvent, WebhookSubscription
from salync_salla import mapping, reading, webhooks, writing

API_URL = "https://api.salla.dev/admin/v2"
ACCOUNTS_URL = "https://accounts.salla.sa"
DEFAULT_SCOPES = "offline_access products.read_write orders.read customers.read"
PLANS = ("plus", "pro", "special")
NOT_CONNECTED = datetime(1970, 1, 1, tzinfo=UTC)
"""Expiry given to a missing access token: the first request refreshes it."""


class SallaPlatform(Platform):
    """Salla's Merchant API for one store."""

    name: ClassVar[str] = "salla"
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("products", "product", max_page_size=60, also=("variant", "stock_level")),
        Stream("orders", "order", max_page_size=60, also=("order_line",)),
        Stream("customers", "customer", max_page_size=60),
    )
    push_batch_size: ClassVar[int] = writing.BULK_MAX
    secret_options: ClassVar[tuple[str, ...]] = (
        "client_secret",
        "webhook_secret",
        "access_token",
        "refresh_token",
        "expires_at",
    )
    options: ClassVar[tuple[Option, ...]] = (
        Option("accounts_url", help="The OAuth host; /oauth2/... is appended."),
        Option("client_id", help="The app's client id (Salla Partners)."),
        Option("client_secret", secret=True, help="The app's client secret."),
        Option("scopes", help="Space-separated scopes; offline_access is always added."),
        Option("plan", help="The store's plan: plus, pro or special."),
        Option("webhook_secret", secret=True, help="Signs webhook deliveries."),
        Option(
            "queue_wait",
            types=(int, float),
            help="Seconds a push waits for queued stock (default 0: confirmed by a later run).",
        ),
    )
    webhook_events: ClassVar[tuple[str, ...]] = webhooks.EVENTS

    def limits(self, options: Mapping[str, Any]) -> Limits:
        """No fixed windows: every answer's ``X-RateLimit-*`` headers describe the bucket."""
        plan = options.get("plan", "plus")
        if plan not in PLANS:
            raise ConfigError(f"plan {plan!r} is not one of {', '.join(PLANS)}")
        return Limits(bucket="leaky")

    def credentials(self, options: Mapping[str, Any]) -> Credentials:
        accounts = str(options.get("accounts_url") or ACCOUNTS_URL).rstrip("/")
        client_secret = options.get("client_secret")
        refresh = options.get("refresh_token")
        if not isinstance(client_secret, Secret) or not isinstance(refresh, Secret):
            raise ConfigError(
                "a Salla connection needs client_secret and a refresh_token; run "
                "`salync connect CONNECTION` (or `salync secrets set CONNECTION refresh_token`)"
            )
        access = options.get("access_token")
        expires = options.get("expires_at")
        expires_at = _parse_expiry(expires.reveal()) if isinstance(expires, Secret) else None
        if not isinstance(access, Secret):
            access, expires_at = Secret("not-yet-issued"), NOT_CONNECTED
        return OAuth2Credentials(
            secret=access,
            token_url=accounts + "/oauth2/token",
            client_id=str(options.get("client_id", "")),
            client_secret=client_secret,
            refresh_token=refresh,
            expires_at=expires_at,
        )

    def oauth_app(self, options: Mapping[str, Any]) -> OAuthApp:
        """The app ``salync connect`` authorizes (see :mod:`salync_core.oauth_connect`)."""
        accounts = str(options.get("accounts_url") or ACCOUNTS_URL).rstrip("/")
        client_secret = options.get("client_secret")
        if not options.get("client_id") or not isinstance(client_secret, Secret):
            raise ConfigError("a Salla connection needs client_id and client_secret to connect")
        scopes = str(options.get("scopes") or DEFAULT_SCOPES).replace(",", " ").split()
        return OAuthApp(
            authorize_url=accounts + "/oauth2/auth",
            token_url=accounts + "/oauth2/token",
            userinfo_url=accounts + "/oauth2/user/info",
            client_id=str(options["client_id"]),
            client_secret=client_secret,
            scopes=tuple(scopes),
        )

    def fetch(self, ctx: ConnectionContext, stream: Stream, cursor: Any) -> AsyncIterator[Page]:
        if stream.name == "orders":
            return reading.order_pages(ctx, cursor)
        if stream.name == "customers":
            return reading.full_pages(ctx, "customers", cursor, ("customer",))
        return reading.full_pages(ctx, "products", cursor, ("product", "variant", "stock_level"))

    def map_inbound(
        self, ctx: ConnectionContext, stream: Stream, item: Any
    ) -> Iterable[Record | Reject]:
        if stream.name == "orders":
            return list(mapping.order(item))
        if stream.name == "customers":
            return [mapping.customer(item)]
        return list(mapping.product(item, ctx.locale))

    def writable_fields(self, entity: str) -> frozenset[str]:
        return WRITABLE.get(entity, frozenset())

    def holds(self, ctx: ConnectionContext, entity: str, field: str, key: str) -> bool:
        """Salla text is read in the connection's language; it keeps its own attributes."""
        return field != "attributes" and key == ctx.locale

    def map_outbound(self, ctx: ConnectionContext, item: Outbound) -> Any:
        if item.entity == "stock_level":
            return writing.stock_line(item)
        if item.key.startswith(mapping.NAMESPACE) and item.external_id is None:
            raise DataError(f"{item.key} is known only to Salla; it has no SKU to create it by")
        return product_body(item, ctx.locale)

    async def push(
        self, ctx: ConnectionContext, entity: str, batch: Sequence[tuple[Outbound, Any]]
    ) -> Sequence[PushResult]:
        if entity == "stock_level":
            return await writing.push_stock(ctx, batch)
        return [await writing.push_product(ctx, item, body) for item, body in batch]

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


WRITABLE = {
    "product": frozenset({"title", "description", "sell_price", "sale_price", "cost_price"}),
    "stock_level": frozenset({"on_hand"}),
}


def product_body(item: Outbound, locale: str) -> dict[str, Any]:
    """``POST``/``PUT /products`` body; a create needs a name and a price."""
    fields = item.fields
    body: dict[str, Any] = {}
    title = fields.get("title")
    if isinstance(title, dict) and title:
        body["name"] = title.get(locale) or next(iter(title.values()))
    description = fields.get("description")
    if isinstance(description, dict) and description.get(locale):
        body["description"] = description[locale]
    for field, key in (
        ("sell_price", "price"),
        ("sale_price", "sale_price"),
        ("cost_price", "cost_price"),
    ):
        if fields.get(field) is not None:
            body[key] = float(fields[field])
    if item.external_id is None:
        missing = [k for k in ("name", "price") if k not in body]
        if missing:
            raise DataError(f"Salla needs {' and '.join(missing)} to create product {item.key}")
        body["sku"] = item.key
        body["product_type"] = "product"
    return body


def _parse_expiry(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
