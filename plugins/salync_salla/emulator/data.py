"""The emulated store: products with options and SKUs, orders, customers, queued stock.

Shapes follow API-FACTS §3.4 (product list item, create body, order list item, the bulk
quantities body and its "queued" answer). [DERIVED] where the facts are silent: list items carry
their ``options`` and ``skus`` (the variants: ``id``, ``sku``, ``price``, ``sale_price``,
``stock_quantity``, ``related_option_values``), order items carry ``sku`` and ``price``, and
every record has an ``updated_at`` in Riyadh local time like the order ``date``.

Every change is appended to :attr:`Store.changes` as a :class:`ChangeEvent` and handed to each
callback in :attr:`Store.listeners`: the webhook sender hooks in there.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from attrs import define, field

from salync_core.testing.clock import ScaledClock

RIYADH = timezone(timedelta(hours=3), "Asia/Riyadh")
"""Saudi Arabia keeps UTC+3 all year (no daylight saving)."""
CURRENCY = "SAR"
MODES = ("overwrite", "increment", "decrement")
IDENTIFIER_TYPES = ("id", "variant_id", "sku")


def riyadh_text(moment: datetime) -> str:
    """A Riyadh wall-clock time as Salla writes it (``2022-06-16 14:48:20.000000``)."""
    return moment.astimezone(RIYADH).strftime("%Y-%m-%d %H:%M:%S.%f")


def money(amount: float | int | str) -> dict[str, Any]:
    return {"amount": amount, "currency": CURRENCY}


@define
class ChangeEvent:
    """One change to the store's data, named like Salla's webhook events."""

    event: str
    """``product.created``, ``product.updated``, ``product.deleted``, ``order.created``, ..."""
    data: dict[str, Any]
    at: float
    """Platform UNIX time."""


@define
class QueuedQuantity:
    """One line of a bulk quantities call, applied when the platform gets to it."""

    identifier_type: str
    identifier: str
    quantity: int
    mode: str
    apply_at: float


class StoreError(Exception):
    """A request the store refuses: ``status`` and Salla's error ``code``/``message``."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


@define
class Store:
    """One merchant's data, in memory."""

    clock: ScaledClock
    quantity_delay: float = 120.0
    """Platform seconds before a queued bulk quantity line is applied."""
    products: dict[int, dict[str, Any]] = field(factory=dict)
    orders: dict[int, dict[str, Any]] = field(factory=dict)
    customers: dict[int, dict[str, Any]] = field(factory=dict)
    queue: list[QueuedQuantity] = field(factory=list)
    changes: list[ChangeEvent] = field(factory=list)
    listeners: list[Callable[[ChangeEvent], None]] = field(factory=list)
    _next_id: int = 1_000_000_000

    def new_id(self) -> int:
        self._next_id += 7919
        return self._next_id

    def now_text(self) -> str:
        return riyadh_text(self.clock.now())

    def emit(self, event: str, data: dict[str, Any]) -> None:
        change = ChangeEvent(event, data, self.clock.time())
        self.changes.append(change)
        for listener in list(self.listeners):
            listener(change)

    # products -------------------------------------------------------------------------

    def create_product(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        price = body.get("price")
        errors: dict[str, list[str]] = {}
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["The name field is required."]
        if not isinstance(price, int | float) or isinstance(price, bool) or price < 0:
            errors["price"] = ["The price must be a number."]
        if body.get("product_type", "product") not in PRODUCT_TYPES:
            errors["product_type"] = ["The selected product type is invalid."]
        sku = body.get("sku", "") or ""
        if sku and self.find_sku(str(sku)) is not None:
            errors["sku"] = ["The sku has already been taken."]
        if errors:
            raise StoreError(422, "error", "alert.invalid_fields", errors)
        product_id = self.new_id()
        quantity = body.get("quantity")
        product: dict[str, Any] = {
            "id": product_id,
            "sku": str(sku),
            "type": body.get("product_type", "product"),
            "name": name,
            "description": body.get("description", ""),
            "price": money(price),  # type: ignore[arg-type]
            "sale_price": money(body.get("sale_price") or 0),
            "cost_price": body.get("cost_price", ""),
            "quantity": quantity if isinstance(quantity, int) else 0,
            "unlimited_quantity": bool(body.get("unlimited_quantity", False)),
            "status": "hidden",
            "options": [],
            "skus": [],
            "updated_at": self.now_text(),
        }
        if not product["quantity"] and not product["unlimited_quantity"]:
            product["status"] = "out"
        self.products[product_id] = product
        self.emit("product.created", product)
        return product

    def update_product(self, product_id: int, body: dict[str, Any]) -> dict[str, Any]:
        product = self.product(product_id)
        for key in ("name", "description", "cost_price", "status", "unlimited_quantity"):
            if key in body:
                product[key] = body[key]
        if "sku" in body:
            sku = str(body["sku"] or "")
            other = self.find_sku(sku) if sku else None
            if other is not None and other[0]["id"] != product_id:
                raise StoreError(422, "error", "alert.invalid_fields", {"sku": ["already taken"]})
            product["sku"] = sku
        if "price" in body:
            product["price"] = money(body["price"])
        if "sale_price" in body:
            product["sale_price"] = money(body["sale_price"] or 0)
        if "quantity" in body and isinstance(body["quantity"], int):
            product["quantity"] = body["quantity"]
        self._touch(product)
        return product

    def delete_product(self, product_id: int) -> None:
        product = self.product(product_id)
        del self.products[product_id]
        self.emit("product.deleted", product)  # product events carry the product model

    def product(self, product_id: int) -> dict[str, Any]:
        found = self.products.get(product_id)
        if found is None:
            raise StoreError(404, "not_found", "The product is not found")
        return found

    def find_sku(self, sku: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """``(product, variant or None)`` holding ``sku``."""
        for product in self.products.values():
            if product["sku"] == sku:
                return product, None
            for variant in product["skus"]:
                if variant["sku"] == sku:
                    return product, variant
        return None

    def _touch(self, product: dict[str, Any]) -> None:
        product["updated_at"] = self.now_text()
        self.emit("product.updated", product)

    # stock ----------------------------------------------------------------------------

    def queue_quantities(self, lines: Any) -> int:
        """Validate a bulk body's ``products`` and queue them; 422 names the first bad line."""
        if not isinstance(lines, list) or not lines:
            raise StoreError(422, "error", "alert.invalid_fields", {"products": ["required"]})
        if len(lines) > BULK_MAX:
            raise StoreError(
                422, "error", "alert.invalid_fields", {"products": [f"at most {BULK_MAX}"]}
            )
        queued = []
        for index, line in enumerate(lines):
            where = f"products.{index}"
            if not isinstance(line, dict):
                raise StoreError(422, "error", "alert.invalid_fields", {where: ["object"]})
            kind, ident = line.get("identifer_type"), line.get("identifer")
            quantity, mode = line.get("quantity"), line.get("mode", "overwrite")
            if kind not in IDENTIFIER_TYPES or ident in (None, ""):
                raise StoreError(
                    422, "error", "alert.invalid_fields", {f"{where}.identifer": ["invalid"]}
                )
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                raise StoreError(
                    422, "error", "alert.invalid_fields", {f"{where}.quantity": ["integer"]}
                )
            if mode not in MODES:
                raise StoreError(
                    422, "error", "alert.invalid_fields", {f"{where}.mode": ["invalid"]}
                )
            queued.append(
                QueuedQuantity(
                    str(kind),
                    str(ident),
                    quantity,
                    str(mode),
                    self.clock.time() + self.quantity_delay,
                )
            )
        self.queue.extend(queued)
        return len(queued)

    def apply_due(self, everything: bool = False) -> int:
        """Apply queued quantity lines whose time has come (all of them with ``everything``)."""
        now = self.clock.time()
        due = [q for q in self.queue if everything or q.apply_at <= now]
        if not due:
            return 0
        self.queue = [q for q in self.queue if q not in due]
        for line in due:
            self._apply(line)
        return len(due)

    def _apply(self, line: QueuedQuantity) -> None:
        target = self._quantity_target(line)
        if target is None:
            return  # Salla drops lines naming nothing; the caller was told "queued" already
        product, variant = target
        holder, key = (variant, "stock_quantity") if variant is not None else (product, "quantity")
        current = _as_int(holder.get(key))
        if line.mode == "overwrite":
            holder[key] = line.quantity
        elif line.mode == "increment":
            holder[key] = current + line.quantity
        else:
            holder[key] = max(0, current - line.quantity)
        if variant is not None:
            product["quantity"] = sum(_as_int(v.get("stock_quantity")) for v in product["skus"])
        self._touch(product)

    def _quantity_target(
        self, line: QueuedQuantity
    ) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        if line.identifier_type == "sku":
            return self.find_sku(line.identifier)
        for product in self.products.values():
            if line.identifier_type == "id" and str(product["id"]) == line.identifier:
                return product, None
            for variant in product["skus"]:
                if line.identifier_type == "variant_id" and str(variant["id"]) == line.identifier:
                    return product, variant
        return None

    # orders and customers ---------------------------------------------------------------

    def place_order(
        self, customer_id: int, lines: list[tuple[str, int]], placed: datetime | None = None
    ) -> dict[str, Any]:
        """A shopper places an order: stock goes down at once (Salla reserves on order)."""
        items, total = [], 0.0
        for sku, quantity in lines:
            found = self.find_sku(sku)
            if found is None:
                raise StoreError(422, "error", "alert.invalid_fields", {"sku": [sku]})
            product, variant = found
            price = (variant or product)["price"]["amount"]
            items.append(
                {
                    "id": self.new_id(),
                    "name": product["name"],
                    "sku": sku,
                    "quantity": quantity,
                    "price": money(price),
                    "thumbnail": "",
                }
            )
            total += float(price) * quantity
            holder, key = (variant, "stock_quantity") if variant else (product, "quantity")
            holder[key] = max(0, _as_int(holder.get(key)) - quantity)
            if variant is not None:
                product["quantity"] = sum(_as_int(v["stock_quantity"]) for v in product["skus"])
            self._touch(product)
        order_id = self.new_id()
        order = {
            "id": order_id,
            "reference_id": 40_000_000 + len(self.orders) + 1,
            "total": money(round(total, 2)),
            "date": {
                "date": riyadh_text(placed or self.clock.now()),
                "timezone_type": 3,
                "timezone": "Asia/Riyadh",
            },
            "status": {"id": 566146469, "name": "بإنتظار المراجعة", "slug": "under_review"},
            "can_cancel": True,
            "payment_method": "bank",
            "customer": {"id": customer_id},
            "items": items,
            "updated_at": self.now_text(),
        }
        self.orders[order_id] = order
        self.emit("order.created", order)
        return order

    def set_order_status(self, order_id: int, slug: str, name: str = "") -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise StoreError(404, "not_found", "The order is not found")
        order["status"] = {"id": order["status"]["id"] + 1, "name": name or slug, "slug": slug}
        order["updated_at"] = self.now_text()
        self.emit("order.status.updated", order)
        return order

    def update_order(self, order_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """A merchant edits an order (its payment method, its notes...): ``order.updated``."""
        order = self.orders.get(order_id)
        if order is None:
            raise StoreError(404, "not_found", "The order is not found")
        order.update(changes)
        order["updated_at"] = self.now_text()
        self.emit("order.updated", order)
        return order

    def update_customer(self, customer_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """A customer edits their profile: ``customer.updated``."""
        customer = self.customers.get(customer_id)
        if customer is None:
            raise StoreError(404, "not_found", "The customer is not found")
        customer.update(changes)
        customer["updated_at"] = self.now_text()
        self.emit("customer.updated", customer)
        return customer

    def add_customer(
        self, first: str, last: str, email: str, city: str = "Riyadh"
    ) -> dict[str, Any]:
        customer_id = self.new_id()
        customer = {
            "id": customer_id,
            "first_name": first,
            "last_name": last,
            "mobile": 500000000 + len(self.customers),
            "mobile_code": "+966",
            "email": email,
            "city": city,
            "country": "السعودية",
            "updated_at": self.now_text(),
        }
        self.customers[customer_id] = customer
        self.emit("customer.created", customer)
        return customer


PRODUCT_TYPES = ("product", "service", "group_products", "codes", "digital", "food", "donating")
BULK_MAX = 100
"""[DERIVED] lines per bulk quantities call: the docs give no maximum; 100 is assumed."""


def _as_int(value: Any) -> int:
    """Salla sends quantities as numbers or strings, sometimes empty."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0


COLOURS = ("أحمر", "أزرق", "أسود")
SIZES = ("S", "M", "L")


def seed_store(store: Store, products: int, seed: int) -> None:
    """A believable shop: a third of the products have a colour x size option set, one in ten
    has no SKU, quantities are sometimes strings; a few customers and orders."""
    rng = random.Random(seed)
    for index in range(products):
        has_options = index % 3 == 1
        sku = "" if index % 10 == 9 else f"SKU-{index:05d}"
        price = rng.choice((25, 49.5, 99, "120.00", 15.75))
        product = store.create_product(
            {
                "name": f"منتج {index}",
                "price": float(price),
                "sku": sku,
                "quantity": rng.randint(0, 80),
                "description": f"وصف المنتج {index}",
            }
        )
        product["status"] = "sale"
        if index % 4 == 0:
            product["quantity"] = str(product["quantity"])  # the docs show both forms
        if index % 5 == 0:
            product["sale_price"] = money(round(float(price) * 0.8, 2))
        if has_options and sku:
            _add_options(store, product, rng)
    store.changes.clear()
    for index in range(max(3, products // 10)):
        store.add_customer(f"عميل{index}", "التجريبي", f"shopper{index}@example.sa")
    customers = list(store.customers)
    skus = [p["sku"] for p in store.products.values() if p["sku"] and not p["skus"]]
    for index in range(min(len(skus), max(2, products // 10))):
        store.place_order(customers[index % len(customers)], [(skus[index], 1)])
    store.changes.clear()


def _add_options(store: Store, product: dict[str, Any], rng: random.Random) -> None:
    colour_values: list[dict[str, Any]] = [
        {"id": store.new_id(), "name": c, "code": f"C{n}"} for n, c in enumerate(COLOURS[:2])
    ]
    size_values: list[dict[str, Any]] = [{"id": store.new_id(), "name": s} for s in SIZES]
    product["options"] = [
        {"id": store.new_id(), "name": "اللون", "display_type": "text", "values": colour_values},
        {"id": store.new_id(), "name": "المقاس", "display_type": "text", "values": size_values},
    ]
    for colour in colour_values:
        for size in size_values:
            product["skus"].append(
                {
                    "id": store.new_id(),
                    "sku": f"{product['sku']}-{colour['code']}-{size['name']}",
                    "price": product["price"],
                    "sale_price": money(0),
                    "stock_quantity": rng.randint(0, 20),
                    "related_option_values": [colour["id"], size["id"]],
                    "barcode": "",
                }
            )
    product["quantity"] = sum(v["stock_quantity"] for v in product["skus"])
