"""Salla's webhooks: subscriptions through the Admin API and signed deliveries of every change.

Facts followed (API-FACTS §3.5, §3.5a):

* ``POST /webhooks/subscribe`` ``{"name", "event", "url", "version", "rule", "headers"}``
  answers 200 with the webhook (``type: "manual"``, ``headers`` an object); a URL already
  registered keeps one subscription, whose event the new one replaces; URLs containing
  ``localhost`` or ``test.`` are refused. ``PUT /webhooks/{id}`` may set
  ``security_strategy`` (``signature`` or ``token``) and ``secret`` (required for
  ``signature``). ``GET /webhooks`` lists; ``DELETE /webhooks/unsubscribe?id=|url=`` -> 202.
* A delivery is ``{"event", "merchant", "created_at", "data"}`` encoded like PHP's
  ``json_encode`` (``/`` escaped as ``\\/``, non-ASCII as ``\\uXXXX``); with the signature
  strategy ``X-Salla-Signature`` is the hex HMAC-SHA256 of those raw bytes and
  ``X-Salla-Security-Strategy: Signature``; with the token strategy ``Authorization`` holds the
  secret itself. A subscription without a strategy of its own is signed (the docs' default)
  with the app's webhook secret.
* Only 200 and 201 count as delivered; a failed attempt is retried 3 times about 5 minutes
  apart (platform time); a delivery may arrive more than once (:attr:`duplicate_rate`).

Derived: the webhook ids, the ``created_at`` format of the first official example, and
deliveries running concurrently (their order is not guaranteed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from attrs import Factory, define, field

from salync_core.testing import WebhookSender
from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import json_response
from salync_salla.emulator.data import ChangeEvent, StoreError, riyadh_text

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
RETRY_DELAYS: Final = (300.0, 300.0, 300.0)
ATTEMPT_TIMEOUT: Final = 30.0


def php_json(value: Any) -> bytes:
    """JSON as PHP's ``json_encode`` writes it: ``\\/`` and ``\\uXXXX`` escapes."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode()


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@define
class Subscription:
    id: int
    name: str
    event: str
    url: str
    version: int = 2
    rule: str | None = None
    headers: dict[str, str] = field(factory=dict)
    security_strategy: str | None = None
    secret: str | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "event": self.event,
            "type": "manual",
            "url": self.url,
            "version": self.version,
            "rule": self.rule,
            "headers": self.headers,
            "security_strategy": self.security_strategy or "signature",
        }


@define
class Attempt:
    """One attempt to deliver one change to one subscription."""

    subscription: int
    event: str
    attempt: int
    body: bytes
    headers: dict[str, str]
    duplicate: bool = False
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)


@define
class SallaWebhooks:
    """Subscriptions, deliveries in flight, and every attempt."""

    clock: ScaledClock
    merchant: int
    app_secret: str
    """The app's webhook secret (Salla Partners), used unless a subscription sets its own."""
    rng: random.Random
    duplicate_rate: float = 0.05
    retry_delays: tuple[float, ...] = RETRY_DELAYS
    subscriptions: dict[int, Subscription] = field(factory=dict)
    attempts: list[Attempt] = field(factory=list)
    _next_id: int = 1_500_000_000
    _sender: WebhookSender = field(
        default=Factory(
            lambda self: WebhookSender(self.clock, "Salla-Webhooks (emulator)", ATTEMPT_TIMEOUT),
            takes_self=True,
        ),
        init=False,
    )

    # the Admin API --------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        add_routes(router, prefix, lambda: self)

    async def subscribe(self, request: web.Request) -> web.Response:
        body = await _object(request)
        event, url = body.get("event"), body.get("url")
        if event not in EVENTS:
            raise _invalid("event", f"must be one of {', '.join(EVENTS)}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _invalid("url", "must be an http(s) URL")
        if "localhost" in url or "test." in url:
            raise _invalid("url", "localhost and test. URLs are not accepted")
        headers = body.get("headers") or {}
        if isinstance(headers, list):  # [{key, value}] as the guide shows it
            headers = {h.get("key"): h.get("value") for h in headers if isinstance(h, dict)}
        same_url = next((s for s in self.subscriptions.values() if s.url == url), None)
        if same_url is not None:  # one subscription per URL: the new event replaces the old
            same_url.event, same_url.name = event, str(body.get("name") or same_url.name)
            return _ok(same_url.as_json())
        self._next_id += 613
        made = Subscription(
            id=self._next_id,
            name=str(body.get("name") or event),
            event=event,
            url=url,
            version=int(body.get("version") or 2),
            rule=body.get("rule"),
            headers={str(k): str(v) for k, v in headers.items()},
        )
        self.subscriptions[made.id] = made
        return _ok(made.as_json())

    async def update(self, request: web.Request) -> web.Response:
        found = self.subscriptions.get(_int(request.match_info["id"]))
        if found is None:
            raise StoreError(404, "not_found", "The webhook is not found")
        body = await _object(request)
        strategy = body.get("security_strategy", found.security_strategy)
        if strategy not in (None, "signature", "token"):
            raise _invalid("security_strategy", "must be signature or token")
        secret = body.get("secret", found.secret)
        if strategy == "signature" and not secret:
            raise _invalid("secret", "is required for the signature strategy")
        if body.get("event") in EVENTS:
            found.event = body["event"]
        found.security_strategy, found.secret = strategy, secret
        return _ok(found.as_json())

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        return _ok([s.as_json() for s in self.subscriptions.values()])

    async def unsubscribe(self, request: web.Request) -> web.Response:
        wanted_id, wanted_url = request.query.get("id"), request.query.get("url")
        gone = [
            s.id
            for s in self.subscriptions.values()
            if str(s.id) == wanted_id or (wanted_url is not None and s.url == wanted_url)
        ]
        for sid in gone:
            del self.subscriptions[sid]
        return _ok({"message": "The webhook has been deleted", "code": 202}, 202)

    # deliveries --------------------------------------------------------------------------

    def publish(self, change: ChangeEvent) -> None:
        """Deliver one change to every subscription for its event (a store listener)."""
        targets = [s for s in self.subscriptions.values() if s.event == change.event]
        if not targets or not self._sender.is_open:
            return
        envelope = {
            "event": change.event,
            "merchant": self.merchant,
            "created_at": riyadh_text(self.clock.now()),
            "data": change.data,
        }
        body = php_json(envelope)
        for subscription in targets:
            duplicate = self.rng.random() < self.duplicate_rate
            self._sender.spawn(self._deliver(subscription, change.event, body, duplicate))

    async def open(self) -> None:
        await self._sender.open()

    async def close(self) -> None:
        await self._sender.close()

    async def idle(self) -> None:
        """Wait until no delivery is in flight, retries included."""
        await self._sender.idle()

    async def _deliver(
        self, subscription: Subscription, event: str, body: bytes, duplicate: bool
    ) -> None:

        async def attempt(number: int) -> bool:
            return (await self._attempt(subscription, event, body, number)).ok

        delivered = await self._sender.retrying(self.retry_delays, attempt)
        if delivered is not None and duplicate:  # delivered more than once, as Salla may
            await self._attempt(subscription, event, body, delivered, duplicate=True)

    def headers_for(self, subscription: Subscription, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **subscription.headers}
        secret = subscription.secret or self.app_secret
        if subscription.security_strategy == "token":
            headers["Authorization"] = secret
            headers["X-Salla-Security-Strategy"] = "Token"
        else:
            headers["X-Salla-Signature"] = signature(secret, body)
            headers["X-Salla-Security-Strategy"] = "Signature"
        return headers

    async def _attempt(
        self,
        subscription: Subscription,
        event: str,
        body: bytes,
        attempt: int,
        duplicate: bool = False,
    ) -> Attempt:
        headers = self.headers_for(subscription, body)
        record = Attempt(subscription.id, event, attempt, body, headers, duplicate)
        self.attempts.append(record)
        await self._sender.post(subscription.url, body, headers, record)
        return record


def add_routes(
    router: web.UrlDispatcher, prefix: str, current: Callable[[], SallaWebhooks]
) -> None:
    """The webhook routes of the Admin API, answered by ``current()`` (the request's store)."""

    def route(
        handler: Callable[[SallaWebhooks, web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await handler(current(), request)

        return handle

    router.add_post(prefix + "/webhooks/subscribe", route(SallaWebhooks.subscribe))
    router.add_get(prefix + "/webhooks", route(SallaWebhooks.list_subscriptions))
    router.add_delete(prefix + "/webhooks/unsubscribe", route(SallaWebhooks.unsubscribe))
    router.add_put(prefix + "/webhooks/{id}", route(SallaWebhooks.update))


def _ok(data: Any, status: int = 200) -> web.Response:
    return json_response({"status": status, "success": True, "data": data}, status)


def _invalid(name: str, message: str) -> StoreError:
    return StoreError(422, "error", "alert.invalid_fields", {name: [f"{name} {message}"]})


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise StoreError(404, "not_found", "Not found") from None


async def _object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise StoreError(400, "bad_request", "The body is not JSON") from None
    if not isinstance(body, dict):
        raise StoreError(400, "bad_request", "The body must be a JSON object")
    return body
