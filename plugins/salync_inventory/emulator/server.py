"""The emulator's server: :class:`SalyncEmulator`, its middleware and its Python API for tests.

See the package docstring for what each module does and which admin routes exist.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from aiohttp import web

from salync_core.testing.accounts import (
    AccountAttribute,
    account_credential,
    account_seed,
    credential_account,
)
from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import ADMIN_PREFIX, Emulator, Handler, json_response
from salync_inventory.emulator.admin import AdminApi, set_channel_status, set_listing_state
from salync_inventory.emulator.api import SalyncApi
from salync_inventory.emulator.data import Workspace
from salync_inventory.emulator.gate import (
    PLAN_LIMITS,
    PLANS,
    ApiKeys,
    IdempotencyStore,
    Plan,
    RateLimits,
)
from salync_inventory.emulator.models import DEFAULT_LOCATION, ApiError
from salync_inventory.emulator.seed import seed_workspace
from salync_inventory.emulator.tls import make_tls_files
from salync_inventory.emulator.webhook_api import WebhookApi
from salync_inventory.emulator.webhooks import Delivery, WebhookDispatcher, WebhookEndpoint

HTTPS_REQUIRED = "Requests made over HTTP will be rejected."
_ROUTE_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class SalyncEmulator(Emulator):
    """Salync's API at ``/v1`` on a seeded workspace, with Salync's plans, limits and rules.

    Platform time is ``ScaledClock(time_scale, start)``: every duration the emulator reports
    (``Retry-After``, ``X-RateLimit-*-Reset``, webhook timestamps) is platform time.

    ``accounts`` serves that many workspaces, each with its own ``products`` products (seeded
    from ``seed`` and its index, built on its first request), API key (``account_options(i)``),
    plan, limits, idempotency keys and webhook endpoints; account 0 has ``api_keys``.
    """

    name: ClassVar[str] = "salync"
    api_prefix: ClassVar[str] = "/v1"

    keys: AccountAttribute[ApiKeys] = AccountAttribute()
    limits: AccountAttribute[RateLimits] = AccountAttribute()
    idempotency: AccountAttribute[IdempotencyStore] = AccountAttribute()
    applied_writes: AccountAttribute[Counter[str]] = AccountAttribute()
    """Writes carried out (2xx answers to POST and PATCH), by route, e.g.
    ``"POST /v1/stock/adjustments"``; idempotent replays and refusals are not counted."""
    workspace: AccountAttribute[Workspace] = AccountAttribute()
    webhooks: AccountAttribute[WebhookDispatcher] = AccountAttribute()

    def __init__(
        self,
        *,
        products: int = 50,
        seed: int = 0,
        plan: Plan = "growth",
        api_keys: Iterable[str] = ("sk_test_1",),
        time_scale: float = 1.0,
        start: datetime | None = None,
        rate_limit: bool = True,
        tls: bool = False,
        accounts: int = 1,
    ) -> None:
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {', '.join(PLANS)}")
        super().__init__(seed=seed, clock=ScaledClock(time_scale, start), accounts=accounts)
        self.tls = tls
        self._api_keys = tuple(api_keys)
        self._products, self._plan, self._rate_limit = products, plan, rate_limit
        self._seeded_ms = int(self.clock.time() * 1000)
        """Every account's data is seeded as it stood when the emulator was made."""
        self.account_state()  # account 0 at once
        self.ca_path: Path | None = None
        """With ``tls=True``, while running: the PEM of the CA a client must trust."""
        self.plain_url: str | None = None
        """With ``tls=True``, while running: the plain-HTTP base URL that refuses everything."""
        self._tls_dir: Path | None = None
        SalyncApi(lambda: self.workspace).add_routes(self.app.router, self.api_prefix)
        AdminApi(self).add_routes(self.app.router)
        WebhookApi(self).add_routes(self.app.router, self.api_prefix)
        middlewares = self.app.middlewares
        # After the toolkit's request counting, before its fault injection: a plain-HTTP
        # request is refused whatever faults are armed.
        position = middlewares.index(self._count) + 1 if self._count in middlewares else 0
        middlewares.insert(position, self._require_https)
        middlewares.append(self._api_gate)

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        """Routes are added once the workspace exists (see ``__init__``)."""

    # accounts ----------------------------------------------------------------------------

    def init_account(self, index: int) -> None:
        """A workspace seeded from the emulator's seed and ``index``, with its own key, plan,
        limits and webhook endpoints (delivered by account 0's sender, which the server opens)."""
        keys = self._api_keys if index == 0 else (self._account_key(index),)
        self.keys = ApiKeys(keys)
        limits = RateLimits(self.clock, self._plan)
        limits.enabled = self._rate_limit
        self.limits = limits
        self.idempotency = IdempotencyStore(self.clock)
        self.applied_writes = Counter()
        seed = account_seed(self.seed, index)
        workspace = Workspace(self.clock, seed)
        seed_workspace(workspace, products=self._products, seed=seed, start_ms=self._seeded_ms)
        webhooks = WebhookDispatcher(self.clock, active=lambda: limits.plan == "pro")
        if index != 0:
            with self.as_account(0):
                webhooks._sender = self.webhooks._sender
        workspace.on_event = webhooks.publish
        self.workspace, self.webhooks = workspace, webhooks

    def _account_key(self, index: int) -> str:
        return account_credential(self._api_keys[0] if self._api_keys else "sk_test", index)

    def account_for_request(self, request: web.Request) -> int | None:
        key = request.headers.get("Authorization", "").partition(" ")[2]
        key = key.strip()
        with self.as_account(0):
            if key in self.keys.active or key in self.keys.revoked:
                return 0
        index = credential_account(self._account_key(0), key, self.account_count)
        if index is not None:
            return index
        for index in self.created_accounts:  # a key added to an account over the admin API
            with self.as_account(index):
                if key in self.keys.active or key in self.keys.revoked:
                    return index
        return None

    def account_options(self, index: int) -> dict[str, str]:
        """``plugin``, ``base_url``, ``api_key`` and ``plan`` of account ``index`` (and
        ``ca_file`` with ``tls``)."""
        plan: str = self._plan
        if self.account_created(index):
            with self.as_account(index):
                plan = self.plan
        options = {"plugin": "salync", "base_url": self.base_url}
        options["api_key"] = self._account_key(index)
        if plan in PLAN_LIMITS:
            options["plan"] = plan
        if self.ca_path is not None:
            options["ca_file"] = str(self.ca_path)
        return options

    # Python API for tests ----------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        return self.limits.plan

    @plan.setter
    def plan(self, plan: Plan) -> None:
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {', '.join(PLANS)}")
        self.limits.plan = plan

    @property
    def webhook_deliveries(self) -> list[Delivery]:
        """Every delivery attempt so far, in the order they started."""
        return self.webhooks.deliveries

    def stock_on_hand(self, sku: str, location: str | None = DEFAULT_LOCATION) -> int:
        """Stock of a product or variant SKU at ``location`` (``None``: all locations)."""
        return self.workspace.on_hand(self.workspace.item_by_sku(sku).id, location)

    def add_webhook(self, url: str, secret: str, events: Iterable[str] = ("*",)) -> WebhookEndpoint:
        """What ``POST /_emulator/webhooks`` does (Settings → Webhooks); Pro plan only."""
        if self.plan != "pro":
            raise ValueError("webhooks are available on the Pro plan only")
        return self.webhooks.add_endpoint(url, secret, events)

    async def wait_for_webhooks(self) -> list[Delivery]:
        """Wait until every queued delivery (retries included) has finished; bound the wait
        with ``asyncio.timeout`` (a failing endpoint is retried for 370 platform seconds)."""
        await self.webhooks.idle()
        return self.webhooks.deliveries

    def set_channel_status(self, channel_id: str, connection_status: str) -> None:
        """Simulate a channel connecting, disconnecting or failing."""
        set_channel_status(self.workspace, channel_id, connection_status)

    def set_listing_state(
        self, channel_id: str, sku: str, state: str, message: str | None = None
    ) -> None:
        """Put a SKU's listing on a channel into ``state`` (creating the listing if needed)."""
        set_listing_state(self.workspace, channel_id, sku, state, message)

    # serving -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve plain HTTP, or with ``tls`` HTTPS plus a plain listener that refuses all."""
        await self.webhooks.open()
        try:
            if not self.tls:
                return await super().start(host, port)
            return await self._start_tls(host, port)
        except BaseException:
            await self.stop()
            raise

    async def _start_tls(self, host: str, port: int) -> str:
        """The toolkit's plain listener on a free port, plus HTTPS on ``port`` (same app)."""
        self._tls_dir = Path(tempfile.mkdtemp(prefix="salync-emulator-"))
        files = make_tls_files(self._tls_dir, host)
        self.ca_path = files.ca_path
        self.plain_url = await super().start(host, 0)
        assert self._runner is not None
        secure = web.TCPSite(
            self._runner, host, port, ssl_context=files.server_context(), reuse_address=True
        )
        await secure.start()
        self.root_url = f"https://{host}:{secure.port}"
        return self.base_url

    async def stop(self) -> None:
        await self.webhooks.close()
        await super().stop()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = self.ca_path = None
            self.plain_url = None

    def error_response(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """Salync's error body; the toolkit's injected 429s use Salync's ``rate_limited``."""
        code = "rate_limited" if code == "too_many_requests" else code
        return json_response({"error": code, "message": message}, status, headers=headers)

    def _api_error(self, error: ApiError) -> web.Response:
        return self.error_response(error.status, error.code, error.message, error.headers or None)

    # middleware --------------------------------------------------------------------------

    @web.middleware
    async def _require_https(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.tls and not request.secure:
            return self.error_response(403, "https_required", HTTPS_REQUIRED)
        return await handler(request)

    @web.middleware
    async def _api_gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate, check the plan, count against the limits, then handle."""
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        try:
            key = self.keys.authenticate(request.headers.get("Authorization"))
            if self.plan == "starter":
                message = "API access is not available on the Starter plan"
                raise ApiError(403, "plan_not_supported", message)
            limit_headers = self.limits.admit(key)
        except ApiError as error:
            return self._api_error(error)
        response = await self._idempotent(request, handler, key)
        response.headers.update(limit_headers)
        return response

    async def _idempotent(
        self, request: web.Request, handler: Handler, api_key: str
    ) -> web.StreamResponse:
        """Run a POST once per ``Idempotency-Key``; replay its answer to retries."""
        idempotency_key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or idempotency_key is None:
            return await self._handle(request, handler)
        scope = (api_key, idempotency_key)
        fingerprint = self.idempotency.fingerprint(
            request.method, request.path, await request.read()
        )
        try:
            stored = self.idempotency.begin(scope, fingerprint)
        except ApiError as error:
            return self._api_error(error)
        if stored is not None:
            assert stored.status is not None
            return web.Response(
                body=stored.body,
                status=stored.status,
                content_type=stored.content_type,
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = await self._handle(request, handler)
        except BaseException:
            self.idempotency.abandon(scope)
            raise
        body = response.body if isinstance(response, web.Response) else None
        if isinstance(body, bytes):
            self.idempotency.finish(scope, response.status, body, response.content_type)
        else:
            self.idempotency.abandon(scope)
        return response

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ApiError as error:
            return self._api_error(error)
        except web.HTTPException as exc:
            code = _ROUTE_ERRORS.get(exc.status, "http_error")
            return self.error_response(
                exc.status, code, f"{exc.reason}: {request.method} {request.path}"
            )
        if request.method in ("POST", "PATCH") and 200 <= response.status < 300:
            resource = request.match_info.route.resource
            route = resource.canonical if resource else request.path
            self.applied_writes[f"{request.method} {route}"] += 1
        return response


__all__ = ["SalyncEmulator"]
