"""Products and variants: create, update, archive, generate variants.

Documented (API-FACTS §4.1, salync.com/docs/variants): up to 3 option types; "Generate variants"
creates every combination; enabling variants makes product-level stock and prices read-only
and **sets the product's existing stock to zero**.

Derived (API-FACTS §4.2 and this emulator):

* ``sku`` and ``name`` are required; SKUs are unique across products and variants (409
  ``sku_taken``) and may not contain ``/`` (they appear in ``/products/sku/{sku}``).
* Products are never deleted: archiving sets ``archived_at`` (and ``updated_at``), archived
  products leave default listings and refuse edits with 409 ``product_archived``. Archiving
  twice answers the archived product unchanged.
* ``stock_on_hand`` may be set on a product without variants; the emulator records the change as
  a manual adjustment at ``loc_main`` (reference "Stock set via API"), so history stays whole.
  Initial ``stock_on_hand`` on create is recorded the same way ("Opening stock").
* Variants are generated once (409 ``variants_exist`` afterwards), inherit the product's prices,
  start with zero stock and get SKUs ``{product sku}-{value}-{value}``. The zeroed product stock
  leaves no adjustment behind; its stock levels just change (and their ``updated_at`` moves).
* At most 100 combinations per generation (422).
"""

from __future__ import annotations

import itertools
from typing import Any

from salync_inventory.emulator.body import Body
from salync_inventory.emulator.data import Workspace
from salync_inventory.emulator.models import (
    DEFAULT_CURRENCY,
    LOCATIONS,
    ApiError,
    Option,
    Product,
    Variant,
    validation_error,
)
from salync_inventory.emulator.stock import Movement, apply_movement

PRODUCT_FIELDS = (
    "sku",
    "name",
    "description",
    "barcode",
    "cost_price",
    "sell_price",
    "currency",
    "supplier_id",
    "supplier_reference",
    "low_stock_threshold",
    "stock_on_hand",
)
PRODUCT_READ_ONLY = (
    "id",
    "has_variants",
    "options",
    "variants",
    "archived_at",
    "created_at",
    "updated_at",
)
LOCKED_BY_VARIANTS = ("cost_price", "sell_price", "stock_on_hand")
VARIANT_FIELDS = ("sku", "cost_price", "sell_price")
VARIANT_READ_ONLY = ("id", "option_values", "stock_on_hand")
MAX_OPTION_TYPES = 3
MAX_COMBINATIONS = 100


def create_product(ws: Workspace, data: Any) -> Product:
    """``POST /products``."""
    body = Body(data, PRODUCT_FIELDS, PRODUCT_READ_ONLY)
    sku, name = body.required_text("sku"), body.required_text("name")
    _check_sku_free(ws, sku)
    changes = _product_changes(ws, body)
    opening_stock = body.integer("stock_on_hand") or 0
    now = ws.now_ms()
    product = Product(id=ws.new_id("prd"), sku=sku, name=name, created_ms=now, updated_ms=now)
    _assign(product, changes)
    ws.products[product.id] = product
    ws.sku_index[sku] = product.id
    ws.add_levels(product.id, now)
    ws.emit("product.created", {"object": ws.product_json(product)})
    if opening_stock:
        movement = Movement("manual", opening_stock, "increase")
        apply_movement(ws, product, movement, reference="Opening stock", date=ws.today())
    return product


def update_product(ws: Workspace, product_id: str, data: Any) -> Product:
    """``PATCH /products/{id}``: validate every field first, then change them all."""
    product = _editable(ws.product(product_id))
    body = Body(data, PRODUCT_FIELDS, PRODUCT_READ_ONLY)
    locked = [name for name in LOCKED_BY_VARIANTS if body.has(name)]
    if product.has_variants and locked:
        raise validation_error(f"{', '.join(locked)}: read-only because the product has variants")
    changes = _product_changes(ws, body)
    if body.has("sku"):
        changes["sku"] = body.required_text("sku")
        if changes["sku"] != product.sku:
            _check_sku_free(ws, changes["sku"])
    if body.has("name"):
        changes["name"] = body.required_text("name")
    movement = _stock_change(ws, product, body)
    now = ws.now_ms()
    _rename(ws, product.id, product.sku, changes.get("sku", product.sku), now)
    _assign(product, changes)
    if movement is not None:
        apply_movement(ws, product, movement, reference="Stock set via API", date=ws.today())
    if changes or movement is not None:
        product.updated_ms = max(product.updated_ms, now)
        ws.emit("product.updated", {"object": ws.product_json(product)})
    return product


def archive_product(ws: Workspace, product_id: str) -> Product:
    """``POST /products/{id}/archive``: a tombstone, never a deletion."""
    product = ws.product(product_id)
    if product.archived_ms is None:
        product.archived_ms = product.updated_ms = ws.now_ms()
        ws.emit("product.archived", {"object": ws.product_json(product)})
    return product


def generate_variants(ws: Workspace, product_id: str, data: Any) -> Product:
    """``POST /products/{id}/variants/generate``: every combination of the options."""
    product = _editable(ws.product(product_id))
    body = Body(data, ("options",))
    if product.has_variants:
        message = "Variants were already generated; edit them with PATCH /variants/{id}"
        raise ApiError(409, "variants_exist", message)
    options = _options(body.array("options", required=True) or [])
    combinations = list(itertools.product(*(option.values for option in options)))
    skus = ["-".join([product.sku, *values]).replace(" ", "").upper() for values in combinations]
    for sku in skus:
        _check_sku_free(ws, sku)
    now = ws.now_ms()
    for place in LOCATIONS:
        ws.set_level(product.id, place, 0, now)  # the documented zeroing
    product.options = options
    for sku, values in zip(skus, combinations, strict=True):
        variant = Variant(
            id=ws.new_id("var"),
            product_id=product.id,
            sku=sku,
            option_values={
                option.name: value for option, value in zip(options, values, strict=True)
            },
            cost_price=product.cost_price,
            sell_price=product.sell_price,
        )
        ws.variants[variant.id] = variant
        ws.sku_index[sku] = variant.id
        product.variant_ids.append(variant.id)
        ws.add_levels(variant.id, now)
    product.updated_ms = now
    for variant_id in product.variant_ids:
        variant_view = ws.variant_json(ws.variants[variant_id])
        ws.emit("variant.created", {"object": variant_view, "product_id": product.id})
    ws.emit("product.updated", {"object": ws.product_json(product)})
    return product


def update_variant(ws: Workspace, variant_id: str, data: Any) -> Variant:
    """``PATCH /variants/{id}``: SKU and prices; stock changes through adjustments."""
    variant = ws.variant(variant_id)
    product = _editable(ws.products[variant.product_id])
    body = Body(data, VARIANT_FIELDS, VARIANT_READ_ONLY, what="variant")
    sku = body.required_text("sku") if body.has("sku") else variant.sku
    if sku != variant.sku:
        _check_sku_free(ws, sku)
    cost = body.money("cost_price") if body.has("cost_price") else variant.cost_price
    sell = body.money("sell_price") if body.has("sell_price") else variant.sell_price
    now = ws.now_ms()
    _rename(ws, variant.id, variant.sku, sku, now)
    variant.sku, variant.cost_price, variant.sell_price = sku, cost, sell
    product.updated_ms = now
    ws.emit("variant.updated", {"object": ws.variant_json(variant), "product_id": product.id})
    return variant


# helpers ---------------------------------------------------------------------------------


def _editable(product: Product) -> Product:
    if product.archived_ms is not None:
        raise ApiError(409, "product_archived", f"Product {product.sku} is archived")
    return product


def _check_sku_free(ws: Workspace, sku: str) -> None:
    if "/" in sku:
        raise validation_error("sku must not contain '/'")
    if sku in ws.sku_index:
        raise ApiError(409, "sku_taken", f"SKU {sku} is already used by another product")


def _product_changes(ws: Workspace, body: Body) -> dict[str, Any]:
    """The validated optional fields present in ``body``, by attribute name."""
    changes: dict[str, Any] = {}
    for name in ("barcode", "supplier_reference"):
        if body.has(name):
            changes[name] = body.text(name)
    if body.has("description"):
        changes["description"] = body.text("description", max_length=10_000)
    for name in ("cost_price", "sell_price"):
        if body.has(name):
            changes[name] = body.money(name)
    if body.has("currency"):
        changes["currency"] = body.currency() or DEFAULT_CURRENCY
    if body.has("supplier_id"):
        changes["supplier_id"] = _supplier_id(ws, body)
    if body.has("low_stock_threshold"):
        changes["low_stock_threshold"] = body.integer("low_stock_threshold")
    return changes


def _supplier_id(ws: Workspace, body: Body) -> str | None:
    supplier_id = body.text("supplier_id")
    if supplier_id is not None and supplier_id not in ws.suppliers:
        raise validation_error(f"supplier_id {supplier_id} does not exist")
    return supplier_id


def _stock_change(ws: Workspace, product: Product, body: Body) -> Movement | None:
    """The manual adjustment that brings a product's total stock to ``stock_on_hand``."""
    if not body.has("stock_on_hand"):
        return None
    target = body.integer("stock_on_hand")
    if target is None:
        raise validation_error("stock_on_hand must be an integer of at least 0")
    delta = target - ws.on_hand(product.id)
    if delta == 0:
        return None
    return Movement("manual", abs(delta), "increase" if delta > 0 else "decrease")


def _assign(product: Product, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(product, name, value)


def _rename(ws: Workspace, item_id: str, old_sku: str, new_sku: str, now: int) -> None:
    if new_sku == old_sku:
        return
    del ws.sku_index[old_sku]
    ws.sku_index[new_sku] = item_id
    ws.touch_item(item_id, now)


def _options(raw: list[Any]) -> list[Option]:
    if not raw:
        raise validation_error("options must name at least one option type")
    if len(raw) > MAX_OPTION_TYPES:
        raise validation_error(f"A product can have at most {MAX_OPTION_TYPES} option types")
    options = [_option(entry, index) for index, entry in enumerate(raw)]
    if len({option.name.casefold() for option in options}) != len(options):
        raise validation_error("option names must be unique")
    combinations = 1
    for option in options:
        combinations *= len(option.values)
    if combinations > MAX_COMBINATIONS:
        raise validation_error(f"At most {MAX_COMBINATIONS} variants can be generated at once")
    return options


def _option(entry: Any, index: int) -> Option:
    body = Body(entry, ("name", "values"), what=f"options[{index}]")
    name = body.required_text("name", max_length=64)
    values = body.array("values", required=True) or []
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise validation_error(f"options[{index}].values must be non-empty strings")
    cleaned = [value.strip() for value in values]
    if len(set(cleaned)) != len(cleaned):
        raise validation_error(f"options[{index}].values must be unique")
    return Option(name, cleaned)
