"""Salla JSON -> canonical records (inbound).

* Money: a price object ``{"amount": 100 | "99.00" | 96.33, "currency": "SAR"}`` becomes a
  decimal string with at least two decimals (Salla answers ``12.5`` to a write of ``12.50``;
  both must read as the same price) and a currency; ``price`` is the regular price
  (``sell_price``), ``sale_price`` is its own field (``0``, ``""`` or ``null``: no sale price).
* ``quantity`` comes as a number or a string; ``""``/``null`` read as unknown (no stock record).
* A product or SKU without a SKU is still mirrored, keyed ``salla:<id>`` (``salla:<product
  id>:<sku id>`` for a variant): a namespace no other platform's keys use, so it is never
  matched with another platform's item.
* Dates are Riyadh local wall-clock time (``{"date": "2022-06-16 14:48:20.000000",
  "timezone": "Asia/Riyadh"}`` or a bare string): converted to UTC. Saudi Arabia keeps UTC+3
  all year.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from salync_core.errors import DataError
from salync_core.platform import Record, Reject

Item = Mapping[str, Any]
NAMESPACE = "salla:"
RIYADH = timezone(timedelta(hours=3), "Asia/Riyadh")
STATUS = {"sale": "active", "out": "active", "hidden": "inactive"}
LOCATION = "default"
CENTS = Decimal("0.01")


def _object(raw: Any, what: str) -> Item:
    if not isinstance(raw, dict):
        raise DataError(f"a Salla {what} must be a JSON object, got {type(raw).__name__}")
    return raw


def _id(item: Item, what: str) -> str:
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value) == "":
        raise DataError(f"a Salla {what} without an id ({value!r})")
    return str(value)


def decimal_text(value: Any) -> str | None:
    """A Salla amount (number or string, maybe empty) as a decimal string; ``None`` if none."""
    if isinstance(value, dict):
        value = value.get("amount")
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise DataError(f"{value!r} is not an amount") from None
    if not number.is_finite():
        raise DataError(f"{value!r} is not an amount")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        number = number.quantize(CENTS)  # 12.5 and "12.50" are one price: written "12.50"
    return str(number)


def currency(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, dict) and isinstance(value.get("currency"), str):
            return str(value["currency"])
    return None


def sale_price(value: Any) -> str | None:
    """A sale price of zero is Salla's "no sale price"."""
    text = decimal_text(value)
    return None if text is None or Decimal(text) == 0 else text


def quantity(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.lstrip("-").isdigit():
            return int(text)
    raise DataError(f"{value!r} is not a quantity")


def riyadh_to_utc(value: Any) -> str | None:
    """A Salla date (``{"date": ..., "timezone": "Asia/Riyadh"}`` or a string) as UTC ISO."""
    if isinstance(value, dict):
        value = value.get("date")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DataError(f"{value!r} is not a date")
    text = value.strip().replace("T", " ")
    for pattern in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            local = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=RIYADH).astimezone(UTC).isoformat().replace("+00:00", "Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DataError(f"{value!r} is not a Salla date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=RIYADH)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def product_key(item: Item) -> str:
    sku = item.get("sku")
    return (
        str(sku).strip()
        if isinstance(sku, str | int) and str(sku).strip()
        else (NAMESPACE + _id(item, "product"))
    )


def product(raw: Any, locale: str) -> Iterator[Record | Reject]:
    """The product, its SKUs (variants) and the stock of each SKU."""
    item = _object(raw, "product")
    product_id = _id(item, "product")
    key = product_key(item)
    updated = riyadh_to_utc(item.get("updated_at"))
    status = item.get("status")
    fields = {
        "title": {locale: item["name"]} if isinstance(item.get("name"), str) else {},
        "description": (
            {locale: item["description"]} if isinstance(item.get("description"), str) else {}
        ),
        "status": STATUS.get(status) if isinstance(status, str) else None,
        "sell_price": decimal_text(item.get("price")),
        "sale_price": sale_price(item.get("sale_price")),
        "cost_price": decimal_text(item.get("cost_price")),
        "currency": currency(item.get("price"), item.get("sale_price")),
        "modified_at": updated,
        "attributes": {"salla_type": item.get("type"), "salla_status": status},
    }
    yield Record("product", key, fields, product_id, updated)
    variants = item.get("skus") or ()
    if not variants:
        yield from _stock(key, item.get("quantity"), item, product_id, updated)
    names = _option_names(item.get("options"))
    for raw_variant in variants:
        try:
            yield from variant(raw_variant, key, product_id, names, updated)
        except DataError as exc:
            yield Reject(raw_variant, f"SKU of product {key}: {exc}")


def variant(
    raw: Any, product_ref: str, product_id: str, names: dict[str, tuple[str, str]], updated: Any
) -> Iterator[Record]:
    item = _object(raw, "SKU")
    variant_id = _id(item, "SKU")
    sku = item.get("sku")
    key = (
        str(sku).strip()
        if isinstance(sku, str) and sku.strip()
        else (f"{NAMESPACE}{product_id}:{variant_id}")
    )
    options = {}
    for value_id in item.get("related_option_values") or ():
        if str(value_id) in names:
            option, value = names[str(value_id)]
            options[option] = value
    fields = {
        "product_ref": product_ref,
        "options": options,
        "sell_price": decimal_text(item.get("price")),
        "sale_price": sale_price(item.get("sale_price")),
        "barcode": item.get("barcode") or None,
        "modified_at": updated,
    }
    yield Record("variant", key, fields, f"{product_id}:{variant_id}", updated)
    yield from _stock(key, item.get("stock_quantity"), item, f"{product_id}:{variant_id}", updated)


def _stock(key: str, raw: Any, item: Item, external: str, updated: Any) -> Iterator[Record]:
    """Stock of a SKU (none for unlimited stock, an unknown quantity or a SKU-less item)."""
    if key.startswith(NAMESPACE) or item.get("unlimited_quantity") is True:
        return
    on_hand = quantity(raw)
    if on_hand is None:
        return
    fields = {"sku": key, "location": LOCATION, "on_hand": on_hand, "modified_at": updated}
    yield Record("stock_level", f"{key}@{LOCATION}", fields, external, updated)


def _option_names(options: Any) -> dict[str, tuple[str, str]]:
    """Option value id -> (option name, value name)."""
    names: dict[str, tuple[str, str]] = {}
    for option in options or ():
        if not isinstance(option, dict):
            continue
        for value in option.get("values") or ():
            if isinstance(value, dict) and "id" in value:
                names[str(value["id"])] = (str(option.get("name", "")), str(value.get("name", "")))
    return names


def order(raw: Any) -> Iterator[Record | Reject]:
    """An order (status, total, placed time in UTC) and one record per line."""
    item = _object(raw, "order")
    order_id = _id(item, "order")
    status = item.get("status")
    status = status if isinstance(status, dict) else {"slug": status}
    total = item.get("total") or item.get("amounts", {}).get("total")
    placed = riyadh_to_utc(item.get("date"))
    updated = riyadh_to_utc(item.get("updated_at")) or placed
    customer = item.get("customer")
    fields = {
        "number": str(item["reference_id"]) if item.get("reference_id") is not None else None,
        "status": status.get("slug"),
        "status_name": status.get("name"),
        "total": decimal_text(total),
        "currency": currency(total),
        "placed_at": placed,
        "customer_ref": str(customer["id"])
        if isinstance(customer, dict) and customer.get("id")
        else None,
        "modified_at": updated,
    }
    yield Record("order", order_id, fields, order_id, updated)
    for index, line in enumerate(item.get("items") or ()):
        try:
            yield order_line(line, order_id, index, updated)
        except DataError as exc:
            yield Reject(line, f"line {index} of order {order_id}: {exc}")


def order_line(raw: Any, order_id: str, index: int, updated: Any) -> Record:
    item = _object(raw, "order line")
    line_id = str(item["id"]) if item.get("id") is not None else str(index)
    sku = item.get("sku")
    fields = {
        "order_ref": order_id,
        "sku": sku if isinstance(sku, str) and sku else None,
        "name": item.get("name") if isinstance(item.get("name"), str) else None,
        "quantity": quantity(item.get("quantity")) or 0,
        "unit_price": decimal_text(item.get("price")),
    }
    key = f"{order_id}:{line_id}"
    return Record("order_line", key, fields, key, updated)


def customer(raw: Any) -> Record:
    item = _object(raw, "customer")
    customer_id = _id(item, "customer")
    mobile = item.get("mobile")
    code = item.get("mobile_code") or ""
    fields = {
        "first_name": item.get("first_name") or None,
        "last_name": item.get("last_name") or None,
        "email": item.get("email") or None,
        "phone": f"{code}{mobile}" if mobile not in (None, "") else None,
        "city": item.get("city") or None,
        "country": item.get("country") or None,
        "modified_at": riyadh_to_utc(item.get("updated_at")),
    }
    return Record("customer", customer_id, fields, customer_id, fields["modified_at"])
