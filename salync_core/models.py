"""Canonical commerce entities: the shape every platform is mapped into and out of.

Every entity is a frozen attrs class keyed by its item reference (``ref``): Sales Layer's own
rule for create-versus-update, the SKU on inventory platforms. Entities that have no such
reference (an adjustment, a purchase order) are keyed by the id their platform gave them, or by
the host app's own reference until a platform gives one: their ``identity`` is ``"external"``,
and a platform id the mirror already knows keeps the key it was first known by.

Localized text is ``{locale: text}``; timestamps are timezone-aware UTC datetimes; money is
``Decimal`` (a decimal string on the wire). Fields a catalog defines for itself and no
canonical field covers live in ``attributes``. (Un)structuring lives apart from the models,
in :mod:`salync_core.converters`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

import attrs
from attrs import Factory, frozen, resolve_types

Localized = dict[str, str]


def timestamp() -> Any:
    """When the source system created or last modified the record: bookkeeping. It is kept
    current, but a change of nothing else is no change (a push moves the platform's own
    modification time; reading it back must not look like news)."""
    return attrs.field(default=None, metadata={"bookkeeping": True})


def keyed_map() -> Any:
    """A map that systems fill key by key: ``{locale: text}`` text, or the ``attributes`` each
    catalog defines for itself. The resolver merges it key by key, so a platform that holds one
    language (or its own attributes) changes only those keys and never erases the others."""
    return attrs.field(factory=dict, metadata={"keyed": True})


ProductStatus = Literal["active", "inactive", "draft", "review"]


@frozen(kw_only=True)
class Product:
    """A sellable item (Sales Layer product, inventory product)."""

    entity: ClassVar[str] = "product"
    identity: ClassVar[str] = "reference"
    """How a record is known across systems: by its reference (a SKU: a platform that changes
    it renamed the item), or by the ``"external"`` id the platform gave it."""
    ref: str
    title: Localized = keyed_map()
    description: Localized = keyed_map()
    status: ProductStatus | None = None
    category_refs: list[str] = Factory(list)
    barcode: str | None = None
    cost_price: Decimal | None = None
    sell_price: Decimal | None = None
    sale_price: Decimal | None = None
    """A discounted price the shop shows beside ``sell_price`` (Salla's ``sale_price``)."""
    currency: str | None = None
    supplier_ref: str | None = None
    low_stock_threshold: int | None = None
    created_at: datetime | None = timestamp()
    modified_at: datetime | None = timestamp()
    attributes: dict[str, Any] = keyed_map()


@frozen(kw_only=True)
class Variant:
    """One purchasable form of a product (Sales Layer format, inventory variant)."""

    entity: ClassVar[str] = "variant"
    ref: str
    product_ref: str | None = None
    title: Localized = keyed_map()
    status: ProductStatus | None = None
    options: dict[str, str] = Factory(dict)
    barcode: str | None = None
    cost_price: Decimal | None = None
    sell_price: Decimal | None = None
    sale_price: Decimal | None = None
    created_at: datetime | None = timestamp()
    modified_at: datetime | None = timestamp()
    attributes: dict[str, Any] = keyed_map()


@frozen(kw_only=True)
class Category:
    """A node of the catalog tree."""

    entity: ClassVar[str] = "category"
    ref: str
    title: Localized = keyed_map()
    description: Localized = keyed_map()
    parent_ref: str | None = None
    status: ProductStatus | None = None
    created_at: datetime | None = timestamp()
    modified_at: datetime | None = timestamp()
    attributes: dict[str, Any] = keyed_map()


@frozen(kw_only=True)
class StockLevel:
    """Units of one SKU at one location; ``ref`` is ``"{sku}@{location}"``."""

    entity: ClassVar[str] = "stock_level"
    ref: str
    sku: str
    location: str = "default"
    on_hand: int = attrs.field(default=0, metadata={"counter": True})
    low_stock_threshold: int | None = None
    modified_at: datetime | None = timestamp()


AdjustmentType = Literal["sale", "po_receipt", "manual", "write_off", "transfer"]


@frozen(kw_only=True)
class StockAdjustment:
    """One movement of stock. The quantity is always positive; the type gives the sign
    (``manual`` says it with ``direction``)."""

    entity: ClassVar[str] = "stock_adjustment"
    identity: ClassVar[str] = "external"
    ref: str
    sku: str
    type: AdjustmentType
    quantity: int
    direction: Literal["increase", "decrease"] | None = None
    reference: str | None = None
    date: date | None = None
    from_location: str | None = None
    to_location: str | None = None
    created_at: datetime | None = timestamp()


@frozen(kw_only=True)
class Supplier:
    """Someone we buy from."""

    entity: ClassVar[str] = "supplier"
    identity: ClassVar[str] = "external"
    ref: str
    company_name: str
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
    currency: str = "GBP"
    created_at: datetime | None = timestamp()
    modified_at: datetime | None = timestamp()


@frozen(kw_only=True)
class PurchaseOrderLine:
    """One line of a purchase order."""

    sku: str
    quantity: int
    unit_cost: Decimal | None = None
    supplier_reference: str | None = None


PurchaseOrderStatus = Literal["draft", "sent", "confirmed", "in_transit", "received", "cancelled"]


@frozen(kw_only=True)
class PurchaseOrder:
    """An order placed with a supplier; received orders add stock."""

    entity: ClassVar[str] = "purchase_order"
    identity: ClassVar[str] = "external"
    ref: str
    supplier_ref: str | None = None
    status: PurchaseOrderStatus = "draft"
    expected_delivery_date: date | None = None
    lines: list[PurchaseOrderLine] = Factory(list)
    created_at: datetime | None = timestamp()
    modified_at: datetime | None = timestamp()


@frozen(kw_only=True)
class Channel:
    """A sales channel connected to an inventory platform."""

    entity: ClassVar[str] = "channel"
    identity: ClassVar[str] = "external"
    ref: str
    type: str
    name: str
    connection_status: Literal["connected", "disconnected", "error"]
    modified_at: datetime | None = timestamp()


@frozen(kw_only=True)
class Listing:
    """The state of one SKU on one channel; ``ref`` is ``"{channel}:{sku}"``."""

    entity: ClassVar[str] = "listing"
    ref: str
    channel_ref: str
    sku: str
    state: str
    message: str | None = None
    modified_at: datetime | None = timestamp()


@frozen(kw_only=True)
class Order:
    """A shopper's order on a storefront, keyed by the platform's order id."""

    entity: ClassVar[str] = "order"
    identity: ClassVar[str] = "external"
    ref: str
    number: str | None = None
    """The number the shop and the shopper see (Salla's ``reference_id``)."""
    status: str | None = None
    """The platform's status slug (``under_review``, ``completed``, ...)."""
    status_name: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    placed_at: datetime | None = None
    customer_ref: str | None = None
    modified_at: datetime | None = timestamp()


@frozen(kw_only=True)
class OrderLine:
    """One line of an order; ``ref`` is ``"{order}:{line}"``."""

    entity: ClassVar[str] = "order_line"
    identity: ClassVar[str] = "external"
    ref: str
    order_ref: str
    sku: str | None = None
    name: str | None = None
    quantity: int = 0
    unit_price: Decimal | None = None


@frozen(kw_only=True)
class Customer:
    """A shopper known to a storefront, keyed by the platform's customer id."""

    entity: ClassVar[str] = "customer"
    identity: ClassVar[str] = "external"
    ref: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    city: str | None = None
    country: str | None = None
    modified_at: datetime | None = timestamp()


ENTITY_TYPES: dict[str, type[Any]] = {
    cls.entity: cls
    for cls in (
        Product,
        Variant,
        Category,
        StockLevel,
        StockAdjustment,
        Supplier,
        PurchaseOrder,
        Channel,
        Listing,
        Order,
        OrderLine,
        Customer,
    )
}
"""Every canonical entity by its name, as used in the mirror, the CLI and policies."""

for _cls in (*ENTITY_TYPES.values(), PurchaseOrderLine):
    resolve_types(_cls)  # field types are strings under postponed annotations; make them real

KEYED_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(a.name for a in attrs.fields(cls) if a.metadata.get("keyed"))
    for name, cls in ENTITY_TYPES.items()
}
"""The fields of every entity that are merged key by key (see :func:`keyed_map`)."""

COUNTER_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(a.name for a in attrs.fields(cls) if a.metadata.get("counter"))
    for name, cls in ENTITY_TYPES.items()
}
"""Counts merged by difference: a connection's change is what it holds minus what it held
(its base), added to the mirror's value, so a sale on one side and a restock on the other
both count (stock on hand: 10, a sale of 2 there, +5 here: 13). Last writer wins has no say
(both writes are kept); any other policy (an owner) still decides."""

BOOKKEEPING_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(a.name for a in attrs.fields(cls) if a.metadata.get("bookkeeping"))
    for name, cls in ENTITY_TYPES.items()
}
"""The fields of every entity that change with anything else (see :func:`timestamp`)."""


def identity(entity: str) -> str:
    """``"reference"`` or ``"external"``: see the module docstring."""
    return str(getattr(ENTITY_TYPES[entity], "identity", "reference"))
