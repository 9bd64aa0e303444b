"""The emulator's own admin routes under ``/_emulator/`` (no auth), and what they simulate.

They exist so tests and plugin authors can drive an emulator running in another process (``salync
emulate salync``) the way the toolkit's ``faults`` route does. None of this is Salync's API.

* ``GET|POST config`` — ``{"plan", "rate_limit", "lying_headers", "daily_limit",
  "burst_limit"}``, each optional; ``daily_limit``/``burst_limit`` override the plan's limits (a
  "custom plan", which Salync sells on request), ``null`` restores them.
* ``POST keys`` — ``{"add": key}`` or ``{"revoke": key}`` (Settings → API Keys).
* ``GET|POST clock`` — ``{"advance_seconds": N}`` jumps platform time forward.
* ``POST channels/{id}/status`` — ``{"connection_status": "error"}``.
* ``POST channels/{id}/listings/{sku}`` — ``{"state": "error", "message": "…"}``.
* ``GET|POST webhooks`` — ``{"url", "secret", "events": [...]}`` (Settings → Webhooks, Pro plan
  only); ``GET`` lists endpoints and every delivery attempt.

Bad input answers 400 ``bad_request`` in the usual ``{"error", "message"}`` body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from salync_core.testing.emulator import ADMIN_PREFIX, json_response
from salync_inventory.emulator.api import read_json
from salync_inventory.emulator.data import Workspace
from salync_inventory.emulator.models import (
    CONNECTION_STATUSES,
    LISTING_STATES,
    ApiError,
    Listing,
)

if TYPE_CHECKING:
    from salync_inventory.emulator.server import SalyncEmulator

AdminHandler = Callable[[web.Request], Awaitable[web.Response]]


def set_channel_status(ws: Workspace, channel_id: str, connection_status: str) -> None:
    """Change a channel's connection status and emit ``channel.status_changed``."""
    if connection_status not in CONNECTION_STATUSES:
        raise ValueError(f"connection_status must be one of {', '.join(CONNECTION_STATUSES)}")
    channel = ws.channel(channel_id)
    previous = channel.connection_status
    if previous == connection_status:
        return
    channel.connection_status = connection_status
    channel.updated_ms = ws.now_ms()
    ws.emit("channel.status_changed", {"object": channel.as_json(), "previous_status": previous})


def set_listing_state(
    ws: Workspace, channel_id: str, sku: str, state: str, message: str | None
) -> Listing:
    """Put a SKU's listing on a channel into ``state``, creating the listing if needed."""
    if state not in LISTING_STATES:
        raise ValueError(f"state must be one of {', '.join(LISTING_STATES)}")
    channel, item = ws.channel(channel_id), ws.item_by_sku(sku)
    listing = ws.listings.get((channel.id, item.id))
    if listing is None:
        listing = ws.listings[channel.id, item.id] = Listing(channel.id, item.id, state, None, 0)
    listing.state, listing.message, listing.updated_ms = state, message, ws.now_ms()
    return listing


class AdminApi:
    """The admin handlers of one emulator."""

    def __init__(self, emulator: SalyncEmulator) -> None:
        self.emulator = emulator

    def add_routes(self, router: web.UrlDispatcher) -> None:
        routes: list[tuple[str, str, AdminHandler]] = [
            ("GET", "config", self.get_config),
            ("POST", "config", self.set_config),
            ("POST", "keys", self.keys),
            ("GET", "clock", self.get_clock),
            ("POST", "clock", self.advance_clock),
            ("POST", "channels/{id}/status", self.channel_status),
            ("POST", "channels/{id}/listings/{sku}", self.listing_state),
            ("GET", "webhooks", self.get_webhooks),
            ("POST", "webhooks", self.add_webhook),
        ]
        for method, path, handler in routes:
            router.add_route(method, ADMIN_PREFIX + path, self._guarded(handler))

    def _guarded(self, handler: AdminHandler) -> AdminHandler:
        async def guarded(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except ApiError as error:
                return self.emulator.error_response(error.status, error.code, error.message)
            except (ValueError, TypeError, KeyError) as exc:
                return self.emulator.error_response(400, "bad_request", str(exc))

        return guarded

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        data = await read_json(request)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    # config and keys ---------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        limits = self.emulator.limits
        return {
            "plan": self.emulator.plan,
            "rate_limit": limits.enabled,
            "lying_headers": limits.lying_headers,
            "daily_limit": limits.daily_limit,
            "burst_limit": limits.burst_limit,
        }

    async def get_config(self, request: web.Request) -> web.Response:
        return json_response(self._config())

    async def set_config(self, request: web.Request) -> web.Response:
        changes = await self._body(request)
        unknown = set(changes) - set(self._config())
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        limits = self.emulator.limits
        if "plan" in changes:
            self.emulator.plan = changes["plan"]
        if "rate_limit" in changes:
            limits.enabled = _boolean(changes["rate_limit"], "rate_limit")
        if "lying_headers" in changes:
            limits.lying_headers = _boolean(changes["lying_headers"], "lying_headers")
        if "daily_limit" in changes:
            limits.daily_limit = _optional_count(changes["daily_limit"], "daily_limit")
        if "burst_limit" in changes:
            limits.burst_limit = _optional_count(changes["burst_limit"], "burst_limit")
        return json_response(self._config())

    async def keys(self, request: web.Request) -> web.Response:
        changes = await self._body(request)
        keys = self.emulator.keys
        if isinstance(changes.get("add"), str):
            keys.add(changes["add"])
        elif isinstance(changes.get("revoke"), str):
            keys.revoke(changes["revoke"])
        else:
            raise ValueError('send {"add": key} or {"revoke": key}')
        return json_response({"active": sorted(keys.active), "revoked": sorted(keys.revoked)})

    # clock -------------------------------------------------------------------------------

    def _clock(self) -> dict[str, Any]:
        clock = self.emulator.clock
        return {"now": clock.now().isoformat(), "time": clock.time(), "scale": clock.scale}

    async def get_clock(self, request: web.Request) -> web.Response:
        return json_response(self._clock())

    async def advance_clock(self, request: web.Request) -> web.Response:
        seconds = (await self._body(request)).get("advance_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("advance_seconds must be a non-negative number")
        self.emulator.clock.advance(seconds)
        return json_response(self._clock())

    # channels ----------------------------------------------------------------------------

    async def channel_status(self, request: web.Request) -> web.Response:
        ws, channel_id = self.emulator.workspace, request.match_info["id"]
        status = (await self._body(request)).get("connection_status")
        set_channel_status(ws, channel_id, str(status))
        return json_response(ws.channel(channel_id).as_json())

    async def listing_state(self, request: web.Request) -> web.Response:
        ws, body = self.emulator.workspace, await self._body(request)
        message = body.get("message")
        if message is not None and not isinstance(message, str):
            raise ValueError("message must be a string or null")
        channel_id, sku = request.match_info["id"], request.match_info["sku"]
        listing = set_listing_state(ws, channel_id, sku, str(body.get("state")), message)
        return json_response(ws.listing_json(listing))

    # webhooks ----------------------------------------------------------------------------

    async def get_webhooks(self, request: web.Request) -> web.Response:
        webhooks = self.emulator.webhooks
        return json_response(
            {
                "endpoints": [endpoint.as_json() for endpoint in webhooks.endpoints.values()],
                "deliveries": [delivery.as_json() for delivery in webhooks.deliveries],
            }
        )

    async def add_webhook(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if self.emulator.plan != "pro":
            raise ApiError(403, "plan_not_supported", "Webhooks are available on the Pro plan")
        events = body.get("events")
        if not isinstance(events, list):
            raise ValueError("events must be a list of event types")
        url, secret = str(body.get("url", "")), str(body.get("secret", ""))
        return json_response(self.emulator.add_webhook(url, secret, events).as_json(), 201)


def _boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _optional_count(value: Any, name: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{name} must be a non-negative integer or null")
    return value
