"""Webhook deliveries, signed and retried in the background.

Documented (API-FACTS §4.1): webhooks exist on the Pro plan only; they are configured in Settings
→ Webhooks with a destination URL and a choice of event types; Salync POSTs a JSON payload.

Derived (API-FACTS §4.2 and this emulator) — everything else:

* configuration through the admin route ``POST /_emulator/webhooks`` (the product's Settings
  screen), refused unless the plan is Pro; nothing is delivered while the plan is not Pro;
* the payload ``{"id": "evt_…", "type": "stock.adjusted", "created_at": "…Z", "data": {...}}``
  where ``data.object`` is the changed resource (``stock.adjusted`` adds ``data.levels``,
  ``*.status_changed`` add ``data.previous_status``, ``variant.*`` add ``data.product_id``);
* headers ``X-Salync-Event`` (type), ``X-Salync-Delivery`` (one id per event and endpoint, the
  same on every retry), ``X-Salync-Timestamp`` (epoch seconds, platform time, fresh on each
  attempt) and ``X-Salync-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``;
* a non-2xx answer, a connection error or 5 real seconds without an answer fail the attempt;
  failed attempts are retried 3 times after :data:`RETRY_DELAYS` platform seconds (so they run
  sooner with a larger time scale or when platform time is advanced);
* deliveries run concurrently, so their order is not guaranteed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson
from attrs import Factory, define, field

from salync_core.testing import WebhookSender
from salync_core.testing.clock import ScaledClock
from salync_inventory.emulator.models import iso_ms

EVENT_TYPES: Final = (
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
RETRY_DELAYS: Final = (10.0, 60.0, 300.0)
ATTEMPT_TIMEOUT: Final = 5.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Salync-Signature`` value a receiver recomputes to trust a delivery."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@define
class WebhookEndpoint:
    id: str
    url: str
    secret: str
    events: list[str]

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": list(self.events)}


@define
class Delivery:
    """One attempt to deliver one event to one endpoint."""

    endpoint_id: str
    event_id: str
    event_type: str
    delivery_id: str
    attempt: int
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def payload(self) -> Any:
        return orjson.loads(self.body)

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "delivery_id": self.delivery_id,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "ok": self.ok,
        }


@define
class WebhookDispatcher:
    """Endpoints, deliveries in flight, and the record of every attempt."""

    clock: ScaledClock
    active: Callable[[], bool]
    """Whether the workspace may send webhooks now (the Pro plan)."""
    retry_delays: tuple[float, ...] = RETRY_DELAYS
    endpoints: dict[str, WebhookEndpoint] = field(factory=dict)
    deliveries: list[Delivery] = field(factory=list)
    _sender: WebhookSender = field(
        default=Factory(
            lambda self: WebhookSender(
                self.clock, "Salync-Webhooks/1.0 (emulator)", ATTEMPT_TIMEOUT
            ),
            takes_self=True,
        ),
        init=False,
    )

    def add_endpoint(self, url: str, secret: str, events: Iterable[str]) -> WebhookEndpoint:
        wanted = list(events)
        unknown = sorted(set(wanted) - {*EVENT_TYPES, "*"})
        if not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        if not secret:
            raise ValueError("secret is required")
        if not wanted or unknown:
            raise ValueError(f"events must be a non-empty list of: {', '.join(EVENT_TYPES)}, *")
        endpoint = WebhookEndpoint(f"wh_{secrets.token_hex(8)}", url, secret, wanted)
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue deliveries of one event to every endpoint that wants it."""
        targets = [e for e in self.endpoints.values() if e.wants(event_type)]
        if not targets or not self.active() or not self._sender.is_open:
            return
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "type": event_type,
            "created_at": iso_ms(int(self.clock.time() * 1000)),
            "data": data,
        }
        body = orjson.dumps(event)
        for endpoint in targets:
            self._sender.spawn(self._deliver(endpoint, event, body))

    async def open(self) -> None:
        await self._sender.open()

    async def close(self) -> None:
        """Cancel deliveries in flight and close the HTTP session."""
        await self._sender.close()

    async def idle(self) -> None:
        """Wait until no delivery is in flight, retries included."""
        await self._sender.idle()

    async def _deliver(self, endpoint: WebhookEndpoint, event: dict[str, Any], body: bytes) -> None:
        delivery_id = str(uuid.uuid4())

        async def attempt(number: int) -> bool:
            return (await self._attempt(endpoint, event, body, delivery_id, number)).ok

        await self._sender.retrying(self.retry_delays, attempt)

    async def _attempt(
        self,
        endpoint: WebhookEndpoint,
        event: dict[str, Any],
        body: bytes,
        delivery_id: str,
        attempt: int,
    ) -> Delivery:
        timestamp = str(int(self.clock.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Salync-Event": event["type"],
            "X-Salync-Delivery": delivery_id,
            "X-Salync-Timestamp": timestamp,
            "X-Salync-Signature": signature(endpoint.secret, timestamp, body),
        }
        record = Delivery(
            endpoint.id, event["id"], event["type"], delivery_id, attempt, headers, body
        )
        self.deliveries.append(record)
        await self._sender.post(endpoint.url, body, headers, record)
        return record
