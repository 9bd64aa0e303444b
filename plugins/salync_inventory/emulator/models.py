"""The Salync workspace's objects, their JSON shapes and the value formats they use.

Documented (API-FACTS §4.1): the fields of suppliers, purchase orders and stock adjustments, PO
statuses, adjustment types and the error body ``{"error": code, "message": text}``.

Derived (API-FACTS §4.2, not public facts): ids with prefixes (``prd_``, ``var_``, ``sup_``,
``po_``, ``adj_``, ``ch_``), money as decimal strings with two places (``"12.50"``), timestamps
as ISO-8601 UTC with milliseconds (``"2026-11-22T10:15:30.123Z"``), the field names.

Times are kept as integer platform milliseconds (``*_ms``) so that ordering and cursors are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from attrs import define, field

DEFAULT_LOCATION: Final = "loc_main"
LOCATIONS: Final = ("loc_main", "loc_backroom")
DEFAULT_CURRENCY: Final = "GBP"

ADJUSTMENT_TYPES: Final = ("sale", "po_receipt", "manual", "write_off", "transfer")
DECREASING_TYPES: Final = frozenset({"sale", "write_off"})

PO_STATUSES: Final = ("draft", "sent", "confirmed", "in_transit", "received", "cancelled")
PO_EDITABLE: Final = frozenset({"draft", "sent", "confirmed"})
PO_NEXT_STATUS: Final = {
    "draft": "sent",
    "sent": "confirmed",
    "confirmed": "in_transit",
    "in_transit": "received",
}

CHANNEL_TYPES: Final = ("shopify", "amazon", "ebay", "etsy")
CONNECTION_STATUSES: Final = ("connected", "disconnected", "error")
LISTING_STATES: Final = ("active", "inactive", "error", "pending")


class ApiError(Exception):
    """A refused request: the emulator answers ``status`` with ``{"error", "message"}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def validation_error(message: str) -> ApiError:
    return ApiError(422, "validation_failed", message)


def iso_ms(ms: int) -> str:
    """``1764000000123`` → ``"2025-11-24T16:00:00.123Z"``."""
    return f"{_iso_second(ms // 1000)}.{ms % 1000:03d}Z"


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """The whole-second part (cached: every answer formats several stamps, most of them the
    same few seconds)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_ms_or_none(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def parse_timestamp_ms(text: str) -> int:
    """An ISO-8601 timestamp with a zone (``Z`` or an offset) as epoch milliseconds.

    Raises ``ValueError`` for anything else, including timestamps without a zone: which zone a
    naive time means is exactly the kind of ambiguity the emulator should surface.
    """
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return round(stamp.timestamp() * 1000)


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


@define
class Option:
    name: str
    values: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


@define
class Variant:
    id: str
    product_id: str
    sku: str
    option_values: dict[str, str]
    cost_price: Decimal | None
    sell_price: Decimal | None


@define
class Product:
    id: str
    sku: str
    name: str
    created_ms: int
    updated_ms: int
    description: str | None = None
    barcode: str | None = None
    cost_price: Decimal | None = None
    sell_price: Decimal | None = None
    currency: str = DEFAULT_CURRENCY
    supplier_id: str | None = None
    supplier_reference: str | None = None
    low_stock_threshold: int | None = None
    options: list[Option] = field(factory=list)
    variant_ids: list[str] = field(factory=list)
    archived_ms: int | None = None

    @property
    def has_variants(self) -> bool:
        return bool(self.variant_ids)


@define
class StockLevel:
    """Stock of one stock-keeping item (a product without variants, or a variant) at one place.

    Keyed by the item's id, not its SKU, so a level survives a SKU edit.
    """

    item_id: str
    location_id: str
    on_hand: int
    updated_ms: int

    @property
    def sort_id(self) -> str:
        return f"{self.item_id}@{self.location_id}"


@define
class Adjustment:
    id: str
    item_id: str
    sku: str
    type: str
    quantity: int
    direction: str | None
    location_id: str | None
    from_location_id: str | None
    to_location_id: str | None
    reference: str | None
    date: str
    created_ms: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sku": self.sku,
            "type": self.type,
            "quantity": self.quantity,
            "direction": self.direction,
            "location_id": self.location_id,
            "from_location_id": self.from_location_id,
            "to_location_id": self.to_location_id,
            "reference": self.reference,
            "date": self.date,
            "created_at": iso_ms(self.created_ms),
            "updated_at": iso_ms(self.created_ms),
        }


@define
class Supplier:
    id: str
    company_name: str
    created_ms: int
    updated_ms: int
    contact_name: str | None = None
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    address: str | None = None
    notes: str | None = None
    lead_time_days: int | None = None
    moq: int | None = None
    mov: Decimal | None = None
    payment_terms: str | None = None
    currency: str = DEFAULT_CURRENCY

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "company_name": self.company_name,
            "contact_name": self.contact_name,
            "email": self.email,
            "phone": self.phone,
            "website": self.website,
            "address": self.address,
            "notes": self.notes,
            "lead_time_days": self.lead_time_days,
            "moq": self.moq,
            "mov": money(self.mov),
            "payment_terms": self.payment_terms,
            "currency": self.currency,
            "created_at": iso_ms(self.created_ms),
            "updated_at": iso_ms(self.updated_ms),
        }


@define
class LineItem:
    item_id: str
    sku: str
    quantity: int
    unit_cost: Decimal
    supplier_reference: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "unit_cost": money(self.unit_cost),
            "supplier_reference": self.supplier_reference,
            "line_total": money(self.unit_cost * self.quantity),
        }


@define
class PurchaseOrder:
    id: str
    number: str
    supplier_id: str
    status: str
    currency: str
    line_items: list[LineItem]
    created_ms: int
    updated_ms: int
    expected_delivery_date: str | None = None
    received_ms: int | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.unit_cost * line.quantity for line in self.line_items), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "supplier_id": self.supplier_id,
            "status": self.status,
            "expected_delivery_date": self.expected_delivery_date,
            "currency": self.currency,
            "line_items": [line.as_json() for line in self.line_items],
            "total": money(self.total),
            "received_at": iso_ms_or_none(self.received_ms),
            "created_at": iso_ms(self.created_ms),
            "updated_at": iso_ms(self.updated_ms),
        }


@define
class Channel:
    id: str
    type: str
    name: str
    connection_status: str
    updated_ms: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "connection_status": self.connection_status,
            "updated_at": iso_ms(self.updated_ms),
        }


@define
class Listing:
    channel_id: str
    item_id: str
    state: str
    message: str | None
    updated_ms: int
