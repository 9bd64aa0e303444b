"""Canonical records -> Salync request bodies (outbound).

What can be written (API-FACTS §4.1 and the derived §4.2): products (create, update, archive),
stock adjustments (create only: a movement is never edited), and stock levels, which Salync
changes only through adjustments, so a new ``on_hand`` is sent as the ``manual`` adjustment
that gets there from what Salync last held. A record that cannot become a request raises
:class:`DataError`; the engine turns it into a rejected push with that message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salync_core.errors import DataError
from salync_core.platform import Outbound

WRITABLE = {
    "product": frozenset(
        {"title", "description", "barcode", "cost_price", "sell_price", "low_stock_threshold"}
    ),
    "stock_adjustment": frozenset(
        {
            "sku",
            "type",
            "quantity",
            "direction",
            "reference",
            "date",
            "from_location",
            "to_location",
        }
    ),
    "stock_level": frozenset({"on_hand"}),
}
SAME_NAME = ("barcode", "cost_price", "sell_price", "low_stock_threshold")


def body(item: Outbound, locale: str) -> Any:
    """The JSON body for one outbound record (``None``: nothing to send)."""
    if item.entity == "product":
        return _archive(item) if item.op == "delete" else product(item, locale)
    if item.op == "delete":
        raise DataError(f"Salync never deletes a {item.entity}; {item.key} stays there")
    if item.entity == "stock_adjustment":
        return adjustment(item)
    return stock_change(item)


def _archive(item: Outbound) -> None:
    """Deleting a product archives it, by its Salync id (the archive route takes no body)."""
    if item.external_id is None:
        raise DataError(f"product {item.key} has no Salync id to archive it by")


def _text_in(value: Any, locale: str, field: str, key: str) -> str | None:
    """The ``locale`` text of a ``{locale: text}`` map (None for an empty map)."""
    if not value:
        return None
    if locale not in value:
        raise DataError(
            f"product {key}: {field} has no {locale!r} text to send (Salync text is "
            f"single-language; it has {', '.join(sorted(value))})"
        )
    return str(value[locale])


def product(item: Outbound, locale: str) -> dict[str, Any]:
    """``POST /products`` for a product Salync does not have yet, else ``PATCH``'s body."""
    fields, create = item.fields, item.external_id is None
    out: dict[str, Any] = {name: fields[name] for name in SAME_NAME if name in fields}
    if "description" in fields:
        out["description"] = _text_in(fields["description"], locale, "description", item.key)
    if "title" in fields or create:
        name = _text_in(fields.get("title"), locale, "title", item.key)
        if name is None:
            raise DataError(f"product {item.key}: Salync needs a name, and its title is empty")
        out["name"] = name
    return {"sku": item.key, **out} if create else out


def adjustment(item: Outbound) -> dict[str, Any]:
    """``POST /stock/adjustments`` for a movement recorded here (one Salync already holds, as
    its base says, can never change)."""
    if item.base:
        raise DataError(
            f"stock adjustment {item.key} is already in Salync; "
            "a movement cannot be changed, record a new one"
        )
    fields = item.fields
    out = {name: fields.get(name) for name in ("sku", "type", "quantity")}
    if fields.get("direction") is not None and fields.get("type") == "manual":
        out["direction"] = fields["direction"]
    for name in ("reference", "date"):
        if fields.get(name) is not None:
            out[name] = fields[name]
    return {**out, **_locations(item.key, fields)}


def _locations(key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of the inbound mapping: one ``location_id`` outside transfers."""
    source, destination = fields.get("from_location"), fields.get("to_location")
    if fields.get("type") == "transfer":
        return {"from_location_id": source, "to_location_id": destination}
    if source is not None and destination is not None:
        raise DataError(f"stock adjustment {key}: only a transfer has two locations")
    location = source if source is not None else destination
    return {} if location is None else {"location_id": location}


def stock_change(item: Outbound) -> dict[str, Any] | None:
    """The manual adjustment taking Salync's level (``item.base``) to the mirror's."""
    sku, _, location = item.key.rpartition("@")
    held, wanted = item.base.get("on_hand"), item.fields.get("on_hand")
    if not sku or not isinstance(held, int) or not isinstance(wanted, int):
        raise DataError(
            f"stock level {item.key}: Salync's current level is not known (sync its stock "
            "first); a level changes only by an adjustment from it"
        )
    delta = wanted - held
    if delta == 0:
        return None
    direction = "increase" if delta > 0 else "decrease"
    return {
        "sku": sku,
        "type": "manual",
        "quantity": abs(delta),
        "direction": direction,
        "location_id": location,
    }
