"""Stock adjustments: the only way stock changes.

Documented (API-FACTS §4.1, salync.com/docs/stock): the types and their signs (sale and
write-off decrease, PO receipt increases, manual goes either way, transfer decreases at the
source and increases at the destination); the quantity is always positive and the sign comes
from the type; an optional reference; the date defaults to today and may be backdated.

Derived (this emulator): the field names, the ``direction`` field of manual adjustments, the two
locations ``loc_main`` (the default) and ``loc_backroom``, and these refusals:

* a decrease below zero → 422 ``insufficient_stock`` (stock never goes negative);
* a future ``date`` → 422 (backdating is allowed, post-dating is not);
* the SKU of a product that has variants → 422 (its stock is its variants' stock);
* an archived product → 409 ``product_archived``.
"""

from __future__ import annotations

from typing import Any

from attrs import define

from salync_inventory.emulator.body import Body, positive_quantity
from salync_inventory.emulator.data import StockItem, Workspace
from salync_inventory.emulator.models import (
    ADJUSTMENT_TYPES,
    DECREASING_TYPES,
    DEFAULT_LOCATION,
    LOCATIONS,
    Adjustment,
    ApiError,
    Product,
    StockLevel,
    validation_error,
)

ADJUSTMENT_FIELDS = (
    "sku",
    "type",
    "quantity",
    "direction",
    "reference",
    "date",
    "location_id",
    "from_location_id",
    "to_location_id",
)


@define
class Movement:
    """What an adjustment does to stock, before it is applied."""

    type: str
    quantity: int
    direction: str | None = None
    location_id: str | None = DEFAULT_LOCATION
    from_location_id: str | None = None
    to_location_id: str | None = None

    def deltas(self) -> list[tuple[str, int]]:
        """``(location, signed change)`` pairs."""
        if self.type == "transfer":
            assert self.from_location_id is not None
            assert self.to_location_id is not None
            return [(self.from_location_id, -self.quantity), (self.to_location_id, self.quantity)]
        assert self.location_id is not None
        sign = -1 if self.direction == "decrease" else 1
        return [(self.location_id, sign * self.quantity)]


def create_adjustment(ws: Workspace, data: Any) -> tuple[Adjustment, list[StockLevel]]:
    """``POST /stock/adjustments``."""
    body = Body(data, ADJUSTMENT_FIELDS)
    item = ws.item_by_sku(body.required_text("sku"))
    if ws.product_of(item.id).archived_ms is not None:
        raise ApiError(409, "product_archived", f"Product {item.sku} is archived")
    movement = _movement(body)
    when = body.day("date") or ws.today()
    if when > ws.today():
        raise validation_error("date cannot be in the future")
    return apply_movement(ws, item, movement, reference=body.text("reference"), date=when)


def _movement(body: Body) -> Movement:
    kind = body.choice("type", ADJUSTMENT_TYPES)
    assert kind is not None
    quantity = positive_quantity(body.raw("quantity"))
    if kind == "transfer":
        return _transfer(body, quantity)
    if body.has("from_location_id") or body.has("to_location_id"):
        raise validation_error("from_location_id and to_location_id are only for transfers")
    location = body.choice("location_id", LOCATIONS, required=False) or DEFAULT_LOCATION
    return Movement(kind, quantity, _direction(body, kind), location)


def _direction(body: Body, kind: str) -> str:
    if kind == "manual":
        direction = body.choice("direction", ("increase", "decrease"))
        assert direction is not None
        return direction
    if body.has("direction"):
        raise validation_error("direction is only accepted for manual adjustments")
    return "decrease" if kind in DECREASING_TYPES else "increase"


def _transfer(body: Body, quantity: int) -> Movement:
    if body.has("direction") or body.has("location_id"):
        raise validation_error("a transfer takes from_location_id and to_location_id")
    source = body.choice("from_location_id", LOCATIONS)
    destination = body.choice("to_location_id", LOCATIONS)
    if source == destination:
        raise validation_error("from_location_id and to_location_id must differ")
    return Movement("transfer", quantity, None, None, source, destination)


def apply_movement(
    ws: Workspace, item: StockItem, movement: Movement, *, reference: str | None, date: str
) -> tuple[Adjustment, list[StockLevel]]:
    """Check, apply and record one adjustment; emit ``stock.adjusted``."""
    if isinstance(item, Product) and item.has_variants:
        message = f"Product {item.sku} has variants; adjust the stock of a variant SKU"
        raise validation_error(message)
    deltas = movement.deltas()
    for location, delta in deltas:
        on_hand = ws.on_hand(item.id, location)
        if on_hand + delta < 0:
            message = (
                f"Not enough stock of {item.sku} at {location}: "
                f"{on_hand} on hand, {-delta} requested"
            )
            raise ApiError(422, "insufficient_stock", message)
    now = ws.now_ms()
    levels = [
        ws.set_level(item.id, location, ws.on_hand(item.id, location) + delta, now)
        for location, delta in deltas
    ]
    ws.product_of(item.id).updated_ms = now
    adjustment = Adjustment(
        id=ws.new_id("adj"),
        item_id=item.id,
        sku=item.sku,
        type=movement.type,
        quantity=movement.quantity,
        direction=movement.direction,
        location_id=movement.location_id,
        from_location_id=movement.from_location_id,
        to_location_id=movement.to_location_id,
        reference=reference,
        date=date,
        created_ms=now,
    )
    ws.adjustments[adjustment.id] = adjustment
    level_views = [ws.level_json(level) for level in levels]
    ws.emit("stock.adjusted", {"object": adjustment.as_json(), "levels": level_views})
    return adjustment, levels
