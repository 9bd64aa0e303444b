"""The in-memory Salync workspace: storage, lookups, JSON views, timestamps and events.

The rules that change it live beside it (``catalog``, ``stock``,
``purchasing``); tests read it directly through :attr:`SalyncEmulator.workspace`.

Derived choices (API-FACTS §4.2 and this emulator, not public facts):

* Every change stamps ``updated_at`` with a strictly increasing platform millisecond, so two
  changes never share a timestamp and a change made while a client pages through a listing
  always sorts after the client's cursor (see ``paging``).
* A product's ``stock_on_hand`` is the sum over locations of its own stock, or of its variants'
  stock when it has variants; a stock change therefore also bumps the product's ``updated_at``.
* ``GET /products/sku/{sku}`` also finds the product owning a variant SKU.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from salync_core.testing.clock import ScaledClock
from salync_inventory.emulator.models import (
    LOCATIONS,
    Adjustment,
    ApiError,
    Channel,
    Listing,
    Product,
    PurchaseOrder,
    StockLevel,
    Supplier,
    Variant,
    iso_ms,
    iso_ms_or_none,
    money,
)

EventSink = Callable[[str, dict[str, Any]], None]
StockItem = Product | Variant
T = TypeVar("T")


def _find(table: Mapping[str, T], key: str, what: str) -> T:
    """``table[key]``, or a 404 such as ``purchase_order_not_found``."""
    found = table.get(key)
    if found is None:
        code = what.replace(" ", "_") + "_not_found"
        raise ApiError(404, code, f"No {what} found with id {key}")
    return found


def _ignore_event(event_type: str, data: dict[str, Any]) -> None:
    """The sink until an emulator wires webhooks in."""


class Workspace:
    """One Salync workspace's records, keyed by id, with SKU lookups."""

    def __init__(self, clock: ScaledClock, seed: int = 0) -> None:
        self.clock = clock
        self._ids = random.Random(f"salync-ids-{seed}")
        self.products: dict[str, Product] = {}
        self.variants: dict[str, Variant] = {}
        self.levels: dict[tuple[str, str], StockLevel] = {}
        """Stock by ``(item id, location id)``; an item is a product without variants or a
        variant."""
        self.adjustments: dict[str, Adjustment] = {}
        self.suppliers: dict[str, Supplier] = {}
        self.purchase_orders: dict[str, PurchaseOrder] = {}
        self.channels: dict[str, Channel] = {}
        self.listings: dict[tuple[str, str], Listing] = {}
        """Listing states by ``(channel id, item id)``."""
        self.sku_index: dict[str, str] = {}
        """Every SKU in use (products and variants) → the id of the product or variant."""
        self.on_event: EventSink = _ignore_event
        self._last_ms = 0

    # time and ids ------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Platform time in milliseconds, strictly greater than any earlier answer."""
        self._last_ms = max(int(self.clock.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def today(self) -> str:
        return self.clock.now().date().isoformat()

    def new_id(self, prefix: str) -> str:
        taken = (
            self.products,
            self.variants,
            self.adjustments,
            self.suppliers,
            self.purchase_orders,
            self.channels,
        )
        while True:
            candidate = f"{prefix}_{self._ids.getrandbits(64):016x}"
            if not any(candidate in ids for ids in taken):
                return candidate

    def add_purchase_order(
        self,
        supplier: Supplier,
        status: str,
        lines: list[Any],
        *,
        created_ms: int,
        updated_ms: int,
        expected: str | None,
        received_ms: int | None = None,
    ) -> PurchaseOrder:
        """Number and store a new purchase order in the supplier's currency."""
        po = PurchaseOrder(
            id=self.new_id("po"),
            number=f"PO-{len(self.purchase_orders) + 1:04d}",
            supplier_id=supplier.id,
            status=status,
            currency=supplier.currency,
            line_items=lines,
            created_ms=created_ms,
            updated_ms=updated_ms,
            expected_delivery_date=expected,
            received_ms=received_ms,
        )
        self.purchase_orders[po.id] = po
        return po

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        self.on_event(event_type, data)

    # lookups -----------------------------------------------------------------------------

    def product(self, product_id: str) -> Product:
        return _find(self.products, product_id, "product")

    def product_by_sku(self, sku: str) -> Product:
        """The product with this SKU, or owning a variant with it."""
        return self.product_of(self._item_id_by_sku(sku))

    def item_by_sku(self, sku: str) -> StockItem:
        return self.item(self._item_id_by_sku(sku))

    def _item_id_by_sku(self, sku: str) -> str:
        item_id = self.sku_index.get(sku)
        if item_id is None:
            raise ApiError(404, "product_not_found", f"No product found with SKU {sku}")
        return item_id

    def item(self, item_id: str) -> StockItem:
        return self.variants[item_id] if item_id in self.variants else self.products[item_id]

    def product_of(self, item_id: str) -> Product:
        variant = self.variants.get(item_id)
        return self.products[variant.product_id if variant else item_id]

    def variant(self, variant_id: str) -> Variant:
        return _find(self.variants, variant_id, "variant")

    def supplier(self, supplier_id: str) -> Supplier:
        return _find(self.suppliers, supplier_id, "supplier")

    def purchase_order(self, po_id: str) -> PurchaseOrder:
        return _find(self.purchase_orders, po_id, "purchase order")

    def channel(self, channel_id: str) -> Channel:
        return _find(self.channels, channel_id, "channel")

    def stock_items(self) -> Iterator[StockItem]:
        """Products without variants and all variants: the things that hold stock."""
        for product in self.products.values():
            if product.has_variants:
                yield from (self.variants[v] for v in product.variant_ids)
            else:
                yield product

    # stock -------------------------------------------------------------------------------

    def on_hand(self, item_id: str, location_id: str | None = None) -> int:
        """Stock of one item at one location, or over all locations."""
        places = LOCATIONS if location_id is None else (location_id,)
        levels = (self.levels.get((item_id, place)) for place in places)
        return sum(level.on_hand for level in levels if level is not None)

    def product_on_hand(self, product: Product) -> int:
        if product.has_variants:
            return sum(self.on_hand(variant_id) for variant_id in product.variant_ids)
        return self.on_hand(product.id)

    def set_level(self, item_id: str, location_id: str, on_hand: int, now_ms: int) -> StockLevel:
        level = self.levels.get((item_id, location_id))
        if level is None:
            level = self.levels[item_id, location_id] = StockLevel(item_id, location_id, 0, 0)
        level.on_hand, level.updated_ms = on_hand, now_ms
        return level

    def add_levels(self, item_id: str, now_ms: int, on_hand: int = 0) -> None:
        """Give a new item a level at every location (``on_hand`` at the default one)."""
        for index, place in enumerate(LOCATIONS):
            self.set_level(item_id, place, on_hand if index == 0 else 0, now_ms)

    def touch_item(self, item_id: str, now_ms: int) -> None:
        """Mark an item's SKU-bearing records changed (its levels and listings)."""
        for level in self.levels.values():
            if level.item_id == item_id:
                level.updated_ms = now_ms
        for listing in self.listings.values():
            if listing.item_id == item_id:
                listing.updated_ms = now_ms

    # JSON views --------------------------------------------------------------------------

    def sku_of(self, item_id: str) -> str:
        return self.item(item_id).sku

    def variant_json(self, variant: Variant) -> dict[str, Any]:
        return {
            "id": variant.id,
            "sku": variant.sku,
            "option_values": dict(variant.option_values),
            "cost_price": money(variant.cost_price),
            "sell_price": money(variant.sell_price),
            "stock_on_hand": self.on_hand(variant.id),
        }

    def product_json(self, product: Product) -> dict[str, Any]:
        return {
            "id": product.id,
            "sku": product.sku,
            "name": product.name,
            "description": product.description,
            "barcode": product.barcode,
            "cost_price": money(product.cost_price),
            "sell_price": money(product.sell_price),
            "currency": product.currency,
            "supplier_id": product.supplier_id,
            "supplier_reference": product.supplier_reference,
            "low_stock_threshold": product.low_stock_threshold,
            "has_variants": product.has_variants,
            "options": [option.as_json() for option in product.options],
            "variants": [self.variant_json(self.variants[v]) for v in product.variant_ids],
            "stock_on_hand": self.product_on_hand(product),
            "archived_at": iso_ms_or_none(product.archived_ms),
            "created_at": iso_ms(product.created_ms),
            "updated_at": iso_ms(product.updated_ms),
        }

    def level_json(self, level: StockLevel) -> dict[str, Any]:
        return {
            "sku": self.sku_of(level.item_id),
            "location_id": level.location_id,
            "on_hand": level.on_hand,
            "low_stock_threshold": self.product_of(level.item_id).low_stock_threshold,
            "updated_at": iso_ms(level.updated_ms),
        }

    def listing_json(self, listing: Listing) -> dict[str, Any]:
        return {
            "sku": self.sku_of(listing.item_id),
            "state": listing.state,
            "message": listing.message,
            "updated_at": iso_ms(listing.updated_ms),
        }
