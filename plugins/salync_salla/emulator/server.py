"""The emulator's server: :class:`SallaEmulator`, its Admin API and its Python API for tests.

One port serves both hosts: the accounts routes (``/oauth2/...``, see :mod:`.oauth`) and the
Admin API under ``/admin/v2``. Facts followed (API-FACTS §3.2-3.4): the ``{"status",
"success", "data", "pagination"}`` envelope; pages of ``per_page`` (default 15, at most 60) with
``links`` an empty list on the last page and ``next``/``previous`` URLs otherwise; the error
envelope ``{"status", "success": false, "error": {"code", "message", "fields"}}``; per-store
leaky bucket (Plus 120, Pro 360, Special 720 requests, leaking one request per second) with
``X-RateLimit-Limit``/``-Remaining``/``-Reset`` on every answer and ``Retry-After`` on a 429;
customers endpoints also capped at 500 requests per 10 minutes; ``POST
/products/quantities/bulk`` answers 201 "queued" and applies the lines ``quantity_delay``
platform seconds later. [DERIVED]: ``X-RateLimit-Reset`` is the UNIX second at which the bucket
is empty again; ``DELETE`` answers 202 as documented for deletions.

With ``accounts=N`` it serves N stores that installed the same app: each has its own data,
bucket, customers cap and webhook subscriptions, and is found by the access token a request
carries (a token issued for it: :meth:`SallaEmulator.issue_tokens` with ``account=i``, the
``account_options(i)`` of a connection, or ``/oauth2/auth?account=i``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import orjson
from aiohttp import web

from salync_core.testing.accounts import AccountAttribute, account_seed
from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import (
    ACCOUNT_KEY,
    ADMIN_PREFIX,
    Emulator,
    Handler,
    json_response,
)
from salync_core.testing.limiters import LeakyBucket, SlidingWindow
from salync_salla.emulator.data import ChangeEvent, Store, StoreError, seed_store
from salync_salla.emulator.oauth import Accounts
from salync_salla.emulator.webhooks import SallaWebhooks, add_routes

PLANS = {"plus": 120, "pro": 360, "special": 720}
LEAK_PER_SECOND = 1.0
CUSTOMERS_CAP = (500, 600.0)
MAX_PER_PAGE = 60
DEFAULT_PER_PAGE = 15
API = "/admin/v2"
MERCHANT_ID = 1803665367
"""Account 0's merchant id; account i's is this plus i."""


class SallaEmulator(Emulator):
    """Salla's accounts host and Admin API v2 for one merchant, on loopback."""

    name: ClassVar[str] = "salla"
    api_prefix: ClassVar[str] = API

    store: AccountAttribute[Store] = AccountAttribute()
    rate_limit: AccountAttribute[bool] = AccountAttribute()
    bucket: AccountAttribute[LeakyBucket] = AccountAttribute()
    customers_window: AccountAttribute[SlidingWindow] = AccountAttribute()
    webhooks: AccountAttribute[SallaWebhooks] = AccountAttribute()

    def __init__(
        self,
        *,
        products: int = 50,
        seed: int = 0,
        plan: str = "plus",
        client_id: str = "salla-client",
        client_secret: str = "salla-secret",
        time_scale: float = 1.0,
        start: datetime | None = None,
        rate_limit: bool = True,
        quantity_delay: float = 120.0,
        webhook_secret: str = "salla-webhook-secret",
        accounts: int = 1,
    ) -> None:
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {', '.join(PLANS)}")
        clock = ScaledClock(time_scale, start)
        self.accounts = Accounts(clock, client_id, client_secret, MERCHANT_ID, plan, accounts)
        self._ticker: asyncio.Task[None] | None = None
        self._products, self._plan, self._rate_limit = products, plan, rate_limit
        self._quantity_delay, self._webhook_secret = quantity_delay, webhook_secret
        self._stores: dict[int, Store] = {}
        """Every account's store built so far (the queue worker applies their lines)."""
        self._installed: dict[int, dict[str, Any]] = {}
        """The tokens :meth:`account_options` issued, by account."""
        super().__init__(seed=seed, clock=clock, accounts=accounts)
        self.app.middlewares.append(self._gate)
        self.account_state()  # account 0 at once

    def init_account(self, index: int) -> None:
        """A store seeded from the emulator's seed and ``index``, with its own bucket,
        customers cap and webhook subscriptions (delivered by account 0's sender)."""
        clock, seed = self.clock, account_seed(self.seed, index)
        store = Store(clock, self._quantity_delay)
        self.rate_limit = self._rate_limit
        self.bucket = LeakyBucket(PLANS[self._plan], LEAK_PER_SECOND, clock)
        self.customers_window = SlidingWindow(*CUSTOMERS_CAP, clock)
        webhooks = SallaWebhooks(
            clock, MERCHANT_ID + index, self._webhook_secret, random.Random(seed)
        )
        if index != 0:
            with self.as_account(0):
                webhooks._sender = self.webhooks._sender
        store.listeners.append(webhooks.publish)
        self.store, self.webhooks = store, webhooks
        seed_store(store, self._products, seed)
        self._stores[index] = store

    def account_for_request(self, request: web.Request) -> int | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return self.accounts.account_of(token)

    def account_options(self, index: int) -> dict[str, str]:
        """A connection to account ``index``'s store with the app installed: the app's
        client, and a token pair issued for that store the first time it is asked for
        (later calls give the same pair, which the engine rotates in its own store)."""
        if not 0 <= index < self.account_count:
            raise ValueError(f"no account {index}: this emulator serves {self.account_count}")
        tokens = self._installed.get(index)
        if tokens is None:
            tokens = self._installed[index] = self.issue_tokens(account=index)
        return {
            "plugin": "salla",
            "base_url": self.base_url,
            "accounts_url": self.accounts_url,
            "client_id": self.accounts.client_id,
            "client_secret": self.accounts.client_secret,
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "plan": self._plan,
        }

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        self.accounts.add_routes(router)
        router.add_get(API + "/products", self.list_products)
        router.add_post(API + "/products", self.create_product)
        router.add_post(API + "/products/quantities/bulk", self.bulk_quantities)
        router.add_get(API + "/products/{id}", self.get_product)
        router.add_put(API + "/products/{id}", self.update_product)
        router.add_delete(API + "/products/{id}", self.delete_product)
        router.add_get(API + "/orders", self.list_orders)
        router.add_get(API + "/orders/{id}", self.get_order)
        router.add_get(API + "/customers", self.list_customers)
        router.add_post(ADMIN_PREFIX + "apply-quantities", self._admin_apply)
        # A merchant's edits in the Salla dashboard: the same changes and webhooks as the API's.
        router.add_post(ADMIN_PREFIX + "products/{id}", self._admin_edit_product)
        router.add_delete(ADMIN_PREFIX + "products/{id}", self._admin_delete_product)
        add_routes(router, API, lambda: self.webhooks)

    @property
    def accounts_url(self) -> str:
        """What a connection's ``accounts_url`` should be (the same server)."""
        return self.root_url

    # Python API for tests --------------------------------------------------------------

    @property
    def changes(self) -> list[ChangeEvent]:
        """Every change to the store's data, oldest first (see :class:`ChangeEvent`)."""
        return self.store.changes

    def issue_tokens(
        self, scope: str = "offline_access products.read_write", account: int = 0
    ) -> dict[str, Any]:
        """Tokens as if the merchant of store ``account`` installed the app (a new family)."""
        return self.accounts.issue(scope, account)

    def apply_queued(self) -> int:
        """Apply every queued bulk quantity line now."""
        return self.store.apply_due(everything=True)

    def product_by_sku(self, sku: str) -> dict[str, Any]:
        found = self.store.find_sku(sku)
        assert found is not None, sku
        return found[0]

    def quantity_of(self, sku: str) -> int:
        found = self.store.find_sku(sku)
        assert found is not None, sku
        product, variant = found
        value = variant["stock_quantity"] if variant is not None else product["quantity"]
        return int(value or 0)

    # lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        url = await super().start(host, port)
        await self.webhooks.open()
        self._ticker = asyncio.create_task(self._tick())
        return url

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.webhooks.close()
        await super().stop()

    async def _tick(self) -> None:
        """Salla's queue worker: apply bulk quantity lines as they fall due."""
        while True:
            for index, store in list(self._stores.items()):
                if store.queue:
                    with self.as_account(index):
                        store.apply_due()
            await asyncio.sleep(0.05)

    # middleware --------------------------------------------------------------------------

    def error_response(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"status": status, "success": False, "error": {"code": code, "message": message}}
        return json_response(body, status, headers=headers)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Rate limits with their headers, then the bearer token, on the Admin API only."""
        if not request.path.startswith(API):
            return await handler(request)
        if request.get(ACCOUNT_KEY) is None and self.account_count > 1:
            # a token of no store: no store's bucket is charged for it
            return self.error_response(401, "unauthorized", "The access token is invalid")
        self.store.apply_due()
        headers: dict[str, str] = {}
        if self.rate_limit:
            wait = self.bucket.hit()
            headers = self._limit_headers()
            if wait is None and request.path.startswith(API + "/customers"):
                wait = self.customers_window.hit()
            if wait is not None:
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return self.error_response(429, "too_many_requests", "Too Many Attempts.", headers)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not self.accounts.access_ok(token):
            return self.error_response(401, "unauthorized", "The access token is invalid", headers)
        try:
            response = await handler(request)
        except StoreError as exc:
            response = json_response(
                {
                    "status": exc.status,
                    "success": False,
                    "error": {"code": exc.code, "message": exc.message, "fields": exc.fields},
                },
                exc.status,
            )
        response.headers.update(headers)
        return response

    def _limit_headers(self) -> dict[str, str]:
        now = self.clock.time()
        empty_at = now + self.bucket.level / self.bucket.rate
        return {
            "X-RateLimit-Limit": str(self.bucket.capacity),
            "X-RateLimit-Remaining": str(self.bucket.remaining),
            "X-RateLimit-Reset": str(max(math.ceil(empty_at), math.floor(now) + 1)),
        }

    # endpoints ---------------------------------------------------------------------------

    def _page(self, request: web.Request, items: Sequence[Any]) -> web.Response:
        try:
            page = max(1, int(request.query.get("page", "1")))
            per_page = int(request.query.get("per_page", str(DEFAULT_PER_PAGE)))
        except ValueError:
            raise StoreError(422, "error", "alert.invalid_fields", {"page": ["integer"]}) from None
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        pages = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links: Any = []
        if page < pages or page > 1:
            links = {}
            if page < pages:
                links["next"] = str(request.url.update_query(page=page + 1))
            if page > 1:
                links["previous"] = str(request.url.update_query(page=page - 1))
        return json_response(
            {
                "status": 200,
                "success": True,
                "data": list(chunk),
                "pagination": {
                    "count": len(chunk),
                    "total": len(items),
                    "perPage": per_page,
                    "currentPage": page,
                    "totalPages": pages,
                    "links": links,
                },
            }
        )

    async def list_products(self, request: web.Request) -> web.Response:
        return self._page(request, sorted(self.store.products.values(), key=lambda p: p["id"]))

    async def get_product(self, request: web.Request) -> web.Response:
        return _ok(self.store.product(_id(request)))

    async def create_product(self, request: web.Request) -> web.Response:
        return _ok(self.store.create_product(await _body(request)), 201)

    async def update_product(self, request: web.Request) -> web.Response:
        return _ok(self.store.update_product(_id(request), await _body(request)), 201)

    async def delete_product(self, request: web.Request) -> web.Response:
        self.store.delete_product(_id(request))
        return _ok({"message": "The product has been deleted successfully", "code": 202}, 202)

    async def bulk_quantities(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.store.queue_quantities(body.get("products"))
        message = (
            "The details has been queued to update, it may take several minutes to finish the"
            " process"
        )
        return _ok({"message": message, "code": 201}, 201)

    async def list_orders(self, request: web.Request) -> web.Response:
        orders = sorted(self.store.orders.values(), key=lambda o: o["id"], reverse=True)
        since, until = request.query.get("from_date"), request.query.get("to_date")
        if since:
            orders = [o for o in orders if o["date"]["date"][:10] >= since]
        if until:
            orders = [o for o in orders if o["date"]["date"][:10] <= until]
        return self._page(request, orders)

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.store.orders.get(_id(request))
        if order is None:
            raise StoreError(404, "not_found", "The order is not found")
        return _ok(order)

    async def list_customers(self, request: web.Request) -> web.Response:
        return self._page(request, sorted(self.store.customers.values(), key=lambda c: c["id"]))

    async def _admin_apply(self, request: web.Request) -> web.Response:
        return json_response({"applied": self.apply_queued()})

    async def _admin_edit_product(self, request: web.Request) -> web.Response:
        try:
            return json_response(self.store.update_product(_id(request), await _body(request)))
        except StoreError as exc:
            return self.error_response(exc.status, exc.code, exc.message)

    async def _admin_delete_product(self, request: web.Request) -> web.Response:
        try:
            self.store.delete_product(_id(request))
        except StoreError as exc:
            return self.error_response(exc.status, exc.code, exc.message)
        return json_response({"deleted": True})


def _ok(data: Any, status: int = 200) -> web.Response:
    return json_response({"status": status, "success": True, "data": data}, status)


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise StoreError(404, "not_found", "Not found") from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise StoreError(400, "bad_request", "The body is not JSON") from None
    if not isinstance(body, dict):
        raise StoreError(400, "bad_request", "The body must be a JSON object")
    return body
