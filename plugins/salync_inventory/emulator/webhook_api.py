"""``GET|POST /v1/webhooks``: webhook endpoints through the API, as well as Settings.

Derived (API-FACTS §4.2 says only "Webhooks are available on the Pro plan"): a client with an
API key registers ``{"url", "secret", "events"}`` (201, the endpoint without its secret) and
lists the endpoints; a workspace not on Pro gets 403 ``plan_not_supported``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from salync_core.testing.emulator import json_response
from salync_inventory.emulator.api import read_json
from salync_inventory.emulator.models import ApiError, validation_error

if TYPE_CHECKING:
    from salync_inventory.emulator.server import SalyncEmulator


class WebhookApi:
    def __init__(self, emulator: SalyncEmulator) -> None:
        self.emulator = emulator

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(prefix + "/webhooks", self.list_endpoints)
        router.add_post(prefix + "/webhooks", self.add_endpoint)

    def _require_pro(self) -> None:
        if self.emulator.plan != "pro":
            raise ApiError(403, "plan_not_supported", "Webhooks are available on the Pro plan")

    async def list_endpoints(self, request: web.Request) -> web.Response:
        self._require_pro()
        endpoints = self.emulator.webhooks.endpoints.values()
        return json_response({"data": [e.as_json() for e in endpoints], "next_cursor": None})

    async def add_endpoint(self, request: web.Request) -> web.Response:
        self._require_pro()
        body: Any = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise validation_error("expected {url, secret, events: [...]}")
        try:
            endpoint = self.emulator.webhooks.add_endpoint(
                str(body.get("url", "")), str(body.get("secret", "")), body["events"]
            )
        except ValueError as exc:
            raise validation_error(str(exc)) from None
        return json_response(endpoint.as_json(), 201)
