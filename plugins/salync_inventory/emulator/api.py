"""The Salync REST endpoints under ``/v1``: thin handlers over the workspace rules.

Documented (API-FACTS §4.1): which resources exist and what may be done with them (products
and variants: list, retrieve, create, update, archive; stock: levels and adjustments; suppliers:
list and retrieve; purchase orders: list, retrieve, create; channels: connection status and
listing states). Derived (§4.2 and this emulator): every path, parameter and JSON shape, plus
``PATCH /purchase-orders/{id}`` for status changes and edits. Authentication, rate limits and
idempotency are applied before these handlers run (see ``gate``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from salync_core.testing.emulator import json_response
from salync_inventory.emulator.catalog import (
    archive_product,
    create_product,
    generate_variants,
    update_product,
    update_variant,
)
from salync_inventory.emulator.data import Workspace
from salync_inventory.emulator.models import (
    ADJUSTMENT_TYPES,
    LISTING_STATES,
    PO_STATUSES,
    ApiError,
    Product,
    StockLevel,
)
from salync_inventory.emulator.paging import ListQuery, SortKey, paginate, parse_query
from salync_inventory.emulator.purchasing import create_purchase_order, update_purchase_order
from salync_inventory.emulator.stock import create_adjustment

T = TypeVar("T")


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or a 400 ``invalid_json``."""
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON") from None


def _product_key(product: Product) -> SortKey:
    return product.updated_ms, product.id


def _level_key(level: StockLevel) -> SortKey:
    return level.updated_ms, level.sort_id


class SalyncApi:
    """The request handlers of the current account's workspace."""

    def __init__(self, workspace: Callable[[], Workspace]) -> None:
        self._workspace = workspace

    @property
    def ws(self) -> Workspace:
        return self._workspace()

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        routes = [
            ("GET", "/products", self.list_products),
            ("POST", "/products", self.create_product),
            ("GET", "/products/sku/{sku}", self.get_product_by_sku),
            ("GET", "/products/{id}", self.get_product),
            ("PATCH", "/products/{id}", self.update_product),
            ("POST", "/products/{id}/archive", self.archive_product),
            ("POST", "/products/{id}/variants/generate", self.generate_variants),
            ("PATCH", "/variants/{id}", self.update_variant),
            ("GET", "/stock", self.list_stock),
            ("GET", "/stock/adjustments", self.list_adjustments),
            ("POST", "/stock/adjustments", self.create_adjustment),
            ("GET", "/suppliers", self.list_suppliers),
            ("GET", "/suppliers/{id}", self.get_supplier),
            ("GET", "/purchase-orders", self.list_purchase_orders),
            ("POST", "/purchase-orders", self.create_purchase_order),
            ("GET", "/purchase-orders/{id}", self.get_purchase_order),
            ("PATCH", "/purchase-orders/{id}", self.update_purchase_order),
            ("GET", "/channels", self.list_channels),
            ("GET", "/channels/{id}", self.get_channel),
            ("GET", "/channels/{id}/listings", self.list_listings),
        ]
        for method, path, handler in routes:
            router.add_route(method, prefix + path, handler)

    @staticmethod
    def _page(
        items: Iterable[T],
        key: Callable[[T], SortKey],
        query: ListQuery,
        view: Callable[[T], dict[str, Any]],
    ) -> web.Response:
        page, next_cursor = paginate(items, key, query)
        return json_response({"data": [view(item) for item in page], "next_cursor": next_cursor})

    # products and variants ---------------------------------------------------------------

    async def list_products(self, request: web.Request) -> web.Response:
        query = parse_query(request.query, ("include_archived",))
        archived = query.flag("include_archived")
        products = (p for p in self.ws.products.values() if archived or p.archived_ms is None)
        return self._page(products, _product_key, query, self.ws.product_json)

    async def get_product(self, request: web.Request) -> web.Response:
        return json_response(self.ws.product_json(self.ws.product(request.match_info["id"])))

    async def get_product_by_sku(self, request: web.Request) -> web.Response:
        product = self.ws.product_by_sku(request.match_info["sku"])
        return json_response(self.ws.product_json(product))

    async def create_product(self, request: web.Request) -> web.Response:
        product = create_product(self.ws, await read_json(request))
        return json_response(self.ws.product_json(product), 201)

    async def update_product(self, request: web.Request) -> web.Response:
        product = update_product(self.ws, request.match_info["id"], await read_json(request))
        return json_response(self.ws.product_json(product))

    async def archive_product(self, request: web.Request) -> web.Response:
        product = archive_product(self.ws, request.match_info["id"])
        return json_response(self.ws.product_json(product))

    async def generate_variants(self, request: web.Request) -> web.Response:
        product = generate_variants(self.ws, request.match_info["id"], await read_json(request))
        return json_response(self.ws.product_json(product), 201)

    async def update_variant(self, request: web.Request) -> web.Response:
        variant = update_variant(self.ws, request.match_info["id"], await read_json(request))
        return json_response(self.ws.variant_json(variant))

    # stock -------------------------------------------------------------------------------

    async def list_stock(self, request: web.Request) -> web.Response:
        query = parse_query(request.query, ("sku", "location_id"))
        levels: Iterable[StockLevel] = self.ws.levels.values()
        if "sku" in query.filters:
            item_id = self.ws.sku_index.get(query.filters["sku"])
            levels = [level for level in levels if level.item_id == item_id]
        if "location_id" in query.filters:
            location = query.filters["location_id"]
            levels = [level for level in levels if level.location_id == location]
        return self._page(levels, _level_key, query, self.ws.level_json)

    async def list_adjustments(self, request: web.Request) -> web.Response:
        query = parse_query(request.query, ("sku", "type"))
        adjustments = list(self.ws.adjustments.values())
        if "sku" in query.filters:
            item_id = self.ws.sku_index.get(query.filters["sku"])
            adjustments = [a for a in adjustments if a.item_id == item_id]
        kind = query.choice("type", ADJUSTMENT_TYPES)
        if kind is not None:
            adjustments = [a for a in adjustments if a.type == kind]
        return self._page(adjustments, lambda a: (a.created_ms, a.id), query, lambda a: a.as_json())

    async def create_adjustment(self, request: web.Request) -> web.Response:
        adjustment, levels = create_adjustment(self.ws, await read_json(request))
        body = {
            "adjustment": adjustment.as_json(),
            "levels": [self.ws.level_json(level) for level in levels],
        }
        return json_response(body, 201)

    # suppliers and purchase orders -------------------------------------------------------

    async def list_suppliers(self, request: web.Request) -> web.Response:
        query = parse_query(request.query)
        suppliers = self.ws.suppliers.values()
        return self._page(suppliers, lambda s: (s.updated_ms, s.id), query, lambda s: s.as_json())

    async def get_supplier(self, request: web.Request) -> web.Response:
        return json_response(self.ws.supplier(request.match_info["id"]).as_json())

    async def list_purchase_orders(self, request: web.Request) -> web.Response:
        query = parse_query(request.query, ("status",))
        status = query.choice("status", PO_STATUSES)
        orders = [po for po in self.ws.purchase_orders.values() if status in (None, po.status)]
        return self._page(orders, lambda po: (po.updated_ms, po.id), query, lambda po: po.as_json())

    async def get_purchase_order(self, request: web.Request) -> web.Response:
        return json_response(self.ws.purchase_order(request.match_info["id"]).as_json())

    async def create_purchase_order(self, request: web.Request) -> web.Response:
        po, warnings = create_purchase_order(self.ws, await read_json(request))
        return json_response({**po.as_json(), "warnings": warnings}, 201)

    async def update_purchase_order(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        po, warnings = update_purchase_order(self.ws, request.match_info["id"], data)
        return json_response({**po.as_json(), "warnings": warnings})

    # channels ----------------------------------------------------------------------------

    async def list_channels(self, request: web.Request) -> web.Response:
        query = parse_query(request.query)
        channels = self.ws.channels.values()
        return self._page(channels, lambda c: (c.updated_ms, c.id), query, lambda c: c.as_json())

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self.ws.channel(request.match_info["id"]).as_json())

    async def list_listings(self, request: web.Request) -> web.Response:
        channel = self.ws.channel(request.match_info["id"])
        query = parse_query(request.query, ("state",))
        state = query.choice("state", LISTING_STATES)
        listings = [
            listing
            for (channel_id, _), listing in self.ws.listings.items()
            if channel_id == channel.id and state in (None, listing.state)
        ]
        return self._page(
            listings, lambda x: (x.updated_ms, x.item_id), query, self.ws.listing_json
        )
