"""Salync JSON -> canonical records (inbound).

Field names and shapes follow the derived API (API-FACTS §4.2; the emulator's ``models``).
Salync text is single-language, so ``name`` and ``description`` become ``{locale: text}`` in
the connection's locale. Money stays a decimal string; ``updated_at`` is both ``modified_at``
and the record's source time. What no canonical field holds goes to a product's
``attributes``; entities without ``attributes`` drop it (a PO's ``number``, ``total``).

A bad item raises :class:`DataError` (it goes to dead letters, the page goes on); a bad
variant is rejected on its own so its product still applies. Field types are checked by the
core's codec after mapping; this module checks what it builds keys from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from salync_core.errors import DataError
from salync_core.platform import Record, Reject

Item = Mapping[str, Any]
DECREASING = frozenset({"sale", "write_off"})
"""Adjustment types that take stock away (API-FACTS §4.1, salync.com/docs/stock)."""


def _object(raw: Any, what: str) -> Item:
    if not isinstance(raw, dict):
        raise DataError(f"a Salync {what} must be a JSON object, got {type(raw).__name__}")
    return raw


def _text(item: Item, field: str, what: str) -> str:
    """A required, non-empty string that a key is made of."""
    value = item.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"Salync {what} {item.get('id', '')} without its {field} ({value!r})")
    return value


def _localized(value: Any, locale: str) -> Any:
    """Single-language text as ``{locale: text}``; no text is an empty map."""
    return {} if value is None else {locale: value}


PRODUCT_ATTRIBUTES = {
    "salync_supplier_reference": "supplier_reference",
    "salync_has_variants": "has_variants",
    "salync_options": "options",
}
"""Product fields no canonical field holds: attribute name -> Salync field. Attributes are
merged key by key across systems, so Salync's carry its prefix (its ids live in the id map)."""


def product(raw: Any, locale: str) -> Iterator[Record | Reject]:
    """A product, then each of its variants (archived: all of them tombstones)."""
    item = _object(raw, "product")
    sku = _text(item, "sku", "product")
    archived = item.get("archived_at") is not None
    fields = {
        "title": _localized(item.get("name"), locale),
        "description": _localized(item.get("description"), locale),
        "barcode": item.get("barcode"),
        "cost_price": item.get("cost_price"),
        "sell_price": item.get("sell_price"),
        "currency": item.get("currency"),
        "supplier_ref": item.get("supplier_id"),
        "low_stock_threshold": item.get("low_stock_threshold"),
        "created_at": item.get("created_at"),
        "modified_at": item.get("updated_at"),
        "attributes": {name: item.get(source) for name, source in PRODUCT_ATTRIBUTES.items()},
    }
    updated = item.get("updated_at")
    yield Record("product", sku, fields, item.get("id"), updated, archived)
    for raw_variant in item.get("variants") or ():
        try:
            yield variant(raw_variant, sku, updated, archived)
        except DataError as exc:
            yield Reject(raw_variant, f"variant of product {sku}: {exc}")


def variant(raw: Any, product_sku: str, updated: str | None, archived: bool) -> Record:
    """A variant; Salync stamps changes on its product, so that is its source time."""
    item = _object(raw, "variant")
    sku = _text(item, "sku", "variant")
    fields = {
        "product_ref": product_sku,
        "options": item.get("option_values"),
        "cost_price": item.get("cost_price"),
        "sell_price": item.get("sell_price"),
    }
    return Record("variant", sku, fields, item.get("id"), updated, archived)


def stock_level(raw: Any) -> Record:
    item = _object(raw, "stock level")
    sku, location = _text(item, "sku", "stock level"), _text(item, "location_id", "stock level")
    fields = {
        "sku": sku,
        "location": location,
        "on_hand": item.get("on_hand"),
        "low_stock_threshold": item.get("low_stock_threshold"),
        "modified_at": item.get("updated_at"),
    }
    return Record("stock_level", f"{sku}@{location}", fields, None, item.get("updated_at"))


def adjustment(raw: Any) -> Record:
    """An adjustment. Outside transfers Salync names one ``location_id``: the canonical model
    says where stock went from (decreases) or to (increases)."""
    item = _object(raw, "stock adjustment")
    adjustment_id = _text(item, "id", "stock adjustment")
    fields = {
        "sku": _text(item, "sku", "stock adjustment"),
        "type": item.get("type"),
        "quantity": item.get("quantity"),
        "direction": item.get("direction"),
        "reference": item.get("reference"),
        "date": item.get("date"),
        **_locations(item),
        "created_at": item.get("created_at"),
    }
    return Record("stock_adjustment", adjustment_id, fields, adjustment_id, item.get("updated_at"))


def _locations(item: Item) -> dict[str, Any]:
    if item.get("type") == "transfer":
        return {
            "from_location": item.get("from_location_id"),
            "to_location": item.get("to_location_id"),
        }
    decrease = item.get("direction") == "decrease" or item.get("type") in DECREASING
    return {"from_location" if decrease else "to_location": item.get("location_id")}


SUPPLIER_FIELDS = (
    "company_name",
    "contact_name",
    "email",
    "phone",
    "website",
    "address",
    "notes",
    "lead_time_days",
    "moq",
    "mov",
    "payment_terms",
    "currency",
    "created_at",
)


def supplier(raw: Any) -> Record:
    item = _object(raw, "supplier")
    supplier_id = _text(item, "id", "supplier")
    fields = {name: item.get(name) for name in SUPPLIER_FIELDS}
    fields["modified_at"] = item.get("updated_at")
    return Record("supplier", supplier_id, fields, supplier_id, item.get("updated_at"))


def purchase_order(raw: Any) -> Record:
    item = _object(raw, "purchase order")
    po_id = _text(item, "id", "purchase order")
    lines = item.get("line_items")
    if not isinstance(lines, list):
        raise DataError(f"Salync purchase order {po_id} without its line_items list")
    fields = {
        "supplier_ref": item.get("supplier_id"),
        "status": item.get("status"),
        "expected_delivery_date": item.get("expected_delivery_date"),
        "lines": [_line(line, po_id) for line in lines],
        "created_at": item.get("created_at"),
        "modified_at": item.get("updated_at"),
    }
    return Record("purchase_order", po_id, fields, po_id, item.get("updated_at"))


def _line(raw: Any, po_id: str) -> dict[str, Any]:
    line = _object(raw, f"line of purchase order {po_id}")
    names = ("sku", "quantity", "unit_cost", "supplier_reference")
    return {name: line.get(name) for name in names}


def channel(raw: Any) -> Record:
    item = _object(raw, "channel")
    channel_id = _text(item, "id", "channel")
    fields = {
        "type": item.get("type"),
        "name": item.get("name"),
        "connection_status": item.get("connection_status"),
        "modified_at": item.get("updated_at"),
    }
    return Record("channel", channel_id, fields, channel_id, item.get("updated_at"))


def listing(raw: Any) -> Record:
    """A listing state; the fetch adds ``channel_id``, which Salync's item does not carry."""
    item = _object(raw, "listing")
    channel_id, sku = _text(item, "channel_id", "listing"), _text(item, "sku", "listing")
    fields = {
        "channel_ref": channel_id,
        "sku": sku,
        "state": item.get("state"),
        "message": item.get("message"),
        "modified_at": item.get("updated_at"),
    }
    return Record("listing", f"{channel_id}:{sku}", fields, None, item.get("updated_at"))


Mapper = Callable[[Any, str], Iterable[Record | Reject]]
BY_STREAM: dict[str, Mapper] = {
    "products": product,
    "stock": lambda raw, _: [stock_level(raw)],
    "stock_adjustments": lambda raw, _: [adjustment(raw)],
    "suppliers": lambda raw, _: [supplier(raw)],
    "purchase_orders": lambda raw, _: [purchase_order(raw)],
    "channels": lambda raw, _: [channel(raw)],
    "listings": lambda raw, _: [listing(raw)],
}
"""Each stream's mapper: ``(raw item, locale) -> records``."""
