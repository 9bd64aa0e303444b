"""Purchase orders: create, edit, move through their statuses, receive stock.

Documented (API-FACTS §4.1, salync.com/docs/purchase-orders): statuses Draft, Sent, Confirmed
(editable) and In transit, Received, Cancelled (not editable); Received adds the ordered stock,
Cancelled adds none; line items have a quantity (a warning below the supplier's MOQ), a unit
cost defaulting to the product's cost, and a supplier reference; the expected delivery date is
optional.

Derived (API-FACTS §4.2 and this emulator):

* Created as ``draft`` (default) or ``sent``. Status moves one step at a time
  (draft → sent → confirmed → in_transit → received) or to ``cancelled`` from an editable status;
  anything else is 409 ``invalid_status_transition``. Editing any other field of an in_transit,
  received or cancelled order, or any change at all to a received or cancelled one, is 409
  ``purchase_order_not_editable``.
* Receiving records one ``po_receipt`` adjustment per line at ``loc_main`` (reference: the PO
  number) and emits ``purchase_order.status_changed``, ``stock.adjusted`` per line and then
  ``purchase_order.received``.
* Write answers carry ``warnings``: ``below_moq`` per line under the supplier's MOQ and
  ``below_mov`` when the total is under the supplier's MOV. The order is accepted regardless.
* Without a cost price on the product, a line's ``unit_cost`` defaults to ``"0.00"``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from salync_inventory.emulator.body import Body, positive_quantity
from salync_inventory.emulator.data import Workspace
from salync_inventory.emulator.models import (
    PO_EDITABLE,
    PO_NEXT_STATUS,
    PO_STATUSES,
    ApiError,
    LineItem,
    Product,
    PurchaseOrder,
    Supplier,
    money,
    validation_error,
)
from salync_inventory.emulator.stock import Movement, apply_movement

PO_FIELDS = ("supplier_id", "expected_delivery_date", "status", "line_items")
PO_READ_ONLY = ("id", "number", "currency", "total", "received_at", "created_at", "updated_at")
LINE_FIELDS = ("sku", "quantity", "unit_cost", "supplier_reference")
PoWarning = dict[str, str]


def create_purchase_order(ws: Workspace, data: Any) -> tuple[PurchaseOrder, list[PoWarning]]:
    """``POST /purchase-orders``."""
    body = Body(data, PO_FIELDS, PO_READ_ONLY)
    supplier = _supplier(ws, body)
    status = body.choice("status", ("draft", "sent"), required=False) or "draft"
    lines = _line_items(ws, body)
    expected = body.day("expected_delivery_date")
    now = ws.now_ms()
    po = ws.add_purchase_order(
        supplier, status, lines, created_ms=now, updated_ms=now, expected=expected
    )
    ws.emit("purchase_order.created", {"object": po.as_json()})
    return po, warnings(supplier, po)


def update_purchase_order(
    ws: Workspace, po_id: str, data: Any
) -> tuple[PurchaseOrder, list[PoWarning]]:
    """``PATCH /purchase-orders/{id}``: edits and/or a status change."""
    po = ws.purchase_order(po_id)
    body = Body(data, PO_FIELDS, PO_READ_ONLY)
    edits = [
        name for name in ("supplier_id", "expected_delivery_date", "line_items") if body.has(name)
    ]
    if edits and po.status not in PO_EDITABLE:
        raise _not_editable(po)
    status = body.choice("status", PO_STATUSES) if body.has("status") else po.status
    assert status is not None
    if status != po.status:
        _check_transition(ws, po, status)
    supplier = _supplier(ws, body) if body.has("supplier_id") else ws.supplier(po.supplier_id)
    lines = _line_items(ws, body) if body.has("line_items") else po.line_items
    expected = body.day("expected_delivery_date") if body.has("expected_delivery_date") else None
    if edits or status != po.status:
        po.updated_ms = ws.now_ms()
    po.supplier_id, po.currency, po.line_items = supplier.id, supplier.currency, lines
    if body.has("expected_delivery_date"):
        po.expected_delivery_date = expected
    if status != po.status:
        _change_status(ws, po, status)
    return po, warnings(supplier, po)


def warnings(supplier: Supplier, po: PurchaseOrder) -> list[PoWarning]:
    """What the Salync UI would warn about: lines under the MOQ, a total under the MOV."""
    found = [
        {
            "code": "below_moq",
            "message": f"Line {index} ({line.sku}): quantity {line.quantity} is below "
            f"{supplier.company_name}'s minimum order quantity of {supplier.moq}",
        }
        for index, line in enumerate(po.line_items, start=1)
        if supplier.moq is not None and line.quantity < supplier.moq
    ]
    if supplier.mov is not None and po.total < supplier.mov:
        message = (
            f"Order total {money(po.total)} is below {supplier.company_name}'s minimum "
            f"order value of {money(supplier.mov)}"
        )
        found.append({"code": "below_mov", "message": message})
    return found


def _not_editable(po: PurchaseOrder) -> ApiError:
    message = f"Purchase order {po.number} is {po.status} and can no longer be edited"
    return ApiError(409, "purchase_order_not_editable", message)


def _check_transition(ws: Workspace, po: PurchaseOrder, status: str) -> None:
    if po.status not in PO_NEXT_STATUS:
        raise _not_editable(po)
    allowed = [PO_NEXT_STATUS[po.status]]
    if po.status in PO_EDITABLE:
        allowed.append("cancelled")
    if status not in allowed:
        message = (
            f"Purchase order {po.number} cannot move from {po.status} to {status} "
            f"(allowed: {', '.join(allowed)})"
        )
        raise ApiError(409, "invalid_status_transition", message)
    if status == "received":
        for line in po.line_items:
            item = ws.item(line.item_id)
            if isinstance(item, Product) and item.has_variants:
                raise validation_error(f"{item.sku} now has variants; edit the line first")


def _change_status(ws: Workspace, po: PurchaseOrder, status: str) -> None:
    previous, po.status = po.status, status
    event = {"object": po.as_json(), "previous_status": previous}
    if status != "received":
        ws.emit("purchase_order.status_changed", event)
        return
    po.received_ms = po.updated_ms
    event["object"] = po.as_json()
    ws.emit("purchase_order.status_changed", event)
    for line in po.line_items:
        movement = Movement("po_receipt", line.quantity, "increase")
        apply_movement(ws, ws.item(line.item_id), movement, reference=po.number, date=ws.today())
    ws.emit("purchase_order.received", {"object": po.as_json()})


def _supplier(ws: Workspace, body: Body) -> Supplier:
    supplier_id = body.required_text("supplier_id")
    if supplier_id not in ws.suppliers:
        raise validation_error(f"supplier_id {supplier_id} does not exist")
    return ws.suppliers[supplier_id]


def _line_items(ws: Workspace, body: Body) -> list[LineItem]:
    raw = body.array("line_items", required=True) or []
    if not raw:
        raise validation_error("line_items must contain at least one line")
    return [_line_item(ws, entry, index) for index, entry in enumerate(raw)]


def _line_item(ws: Workspace, entry: Any, index: int) -> LineItem:
    where = f"line_items[{index}]"
    body = Body(entry, LINE_FIELDS, ("line_total",), what=where)
    sku = body.required_text("sku")
    if sku not in ws.sku_index:
        raise validation_error(f"{where}: no product or variant with SKU {sku}")
    item = ws.item_by_sku(sku)
    if isinstance(item, Product) and item.has_variants:
        raise validation_error(f"{where}: {sku} has variants; order a variant SKU")
    if ws.product_of(item.id).archived_ms is not None:
        raise validation_error(f"{where}: product {sku} is archived")
    quantity = positive_quantity(body.raw("quantity"), f"{where}.quantity")
    unit_cost = body.money("unit_cost")
    if unit_cost is None:
        unit_cost = item.cost_price if item.cost_price is not None else Decimal("0.00")
    return LineItem(item.id, sku, quantity, unit_cost, body.text("supplier_reference"))
