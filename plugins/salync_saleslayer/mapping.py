"""Sales Layer 2.0 fields <-> canonical fields.

Every Sales Layer catalog has fields of its own; those the mapping does not name are kept in
``attributes`` (only when asked for: ``$select`` requests the mapped fields plus the
connection's ``attributes`` option, or everything with ``attributes = "*"``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from salync_core.errors import DataError
from salync_core.platform import Record, Reject

STATUS_IN = {"V": "active", "I": "inactive", "D": "draft", "R": "review"}
STATUS_OUT = {v: k for k, v in STATUS_IN.items()}
DELETED = "X"


def localized(item: Mapping[str, Any], field: str) -> dict[str, str] | None:
    """A ``{culture: text}`` map from what Sales Layer sends in ``field``: a map, a list of
    ``{culture, value}`` pairs (the ``$metadata`` shape), or nothing."""
    value = item.get(field)
    if value is None:
        return None
    if type(value) is dict:
        return (
            {k: v for k, v in value.items() if v is not None} if None in value.values() else value
        )
    if isinstance(value, list):
        try:
            return {str(p["culture"]): str(p["value"]) for p in value if p.get("value") is not None}
        except (KeyError, TypeError, AttributeError):
            pass
    raise DataError(
        f"{field}: expected localized text ({{culture: text}}), got {type(value).__name__}"
    )


def ref_list(value: Any) -> list[str]:
    """``cat_ref`` arrives as one reference or a list of them."""
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _ref(item: Mapping[str, Any], field: str, what: str) -> str:
    ref = item.get(field)
    if not isinstance(ref, str) or not ref.strip():
        raise DataError(
            f"{what} without its reference {field} (id {item.get(field.split('_')[0] + '_id')})"
        )
    return ref


def _status(item: Mapping[str, Any], field: str) -> tuple[str | None, bool]:
    code = item.get(field)
    if code == DELETED:
        return None, True
    if code is not None and code not in STATUS_IN:
        raise DataError(f"{field} {code!r} is not one of V, I, D, R, X")
    return STATUS_IN.get(code) if code else None, False


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _attributes(item: Mapping[str, Any], mapped: frozenset[str]) -> dict[str, Any]:
    """The catalog's own fields: every key the mapping does not read, except OData
    annotations (``Variants@count``). ``mapped`` holds ``Variants`` too (see
    :func:`_reads`), so a key costs one set lookup before the annotation check."""
    return {k: v for k, v in item.items() if k not in mapped and "@" not in k}


def _reads(*fields: str) -> frozenset[str]:
    """The keys of an item the mapping reads (never attributes), with the expanded
    ``Variants`` of a product, which become records of their own."""
    return frozenset((*fields, "Variants"))


PRODUCT_FIELDS = frozenset(
    {
        "prod_id",
        "prod_ref",
        "prod_title",
        "prod_description",
        "prod_stat",
        "cat_ref",
        "cat_id",
        "prod_creation",
        "prod_modify",
    }
)
VARIANT_FIELDS = frozenset(
    {"frmt_id", "frmt_ref", "prod_id", "prod_ref", "frmt_stat", "frmt_creation", "frmt_modify"}
)
CATEGORY_FIELDS = frozenset(
    {
        "cat_id",
        "cat_ref",
        "cat_title",
        "cat_description",
        "cat_parent_id",
        "cat_parent_ref",
        "cat_stat",
        "cat_creation",
        "cat_modify",
    }
)
_PRODUCT_READS = _reads(*PRODUCT_FIELDS)
_CATEGORY_READS = _reads(*CATEGORY_FIELDS)


@cache
def _variant_reads(option_sources: tuple[str, ...]) -> frozenset[str]:
    """A variant's mapped fields and the connection's option fields, built once per
    connection's ``variant_options`` instead of once per variant."""
    return _reads(*VARIANT_FIELDS, *option_sources)


def product(item: Mapping[str, Any], option_fields: Mapping[str, str]) -> Iterator[Record | Reject]:
    """A product record, then one record (or reject) per expanded variant."""
    ref = _ref(item, "prod_ref", "product")
    status, deleted = _status(item, "prod_stat")
    fields = _drop_none(
        {
            "title": localized(item, "prod_title"),
            "description": localized(item, "prod_description"),
            "status": status,
            "category_refs": ref_list(item.get("cat_ref")) if "cat_ref" in item else None,
            "created_at": item.get("prod_creation"),
            "modified_at": item.get("prod_modify"),
            "attributes": _attributes(item, _PRODUCT_READS),
        }
    )
    yield Record("product", ref, fields, _id(item, "prod_id"), item.get("prod_modify"), deleted)
    for raw in item.get("Variants") or ():
        try:
            yield variant(raw, option_fields, product_ref=ref)
        except DataError as exc:
            yield Reject(raw, f"variant of product {ref}: {exc}")


def variant(
    item: Mapping[str, Any], option_fields: Mapping[str, str], product_ref: str | None = None
) -> Record:
    """A variant record; ``product_ref`` is the product it was expanded from, if any (its own
    ``prod_ref``, when it has one, comes first)."""
    ref = _ref(item, "frmt_ref", "variant")
    status, deleted = _status(item, "frmt_stat")
    options = {
        name: str(item[src]) for src, name in option_fields.items() if item.get(src) is not None
    }
    fields = _drop_none(
        {
            "product_ref": item.get("prod_ref", product_ref),
            "status": status,
            "options": options or None,
            "created_at": item.get("frmt_creation"),
            "modified_at": item.get("frmt_modify"),
            "attributes": _attributes(item, _variant_reads(tuple(option_fields))),
        }
    )
    return Record("variant", ref, fields, _id(item, "frmt_id"), item.get("frmt_modify"), deleted)


def category(item: Mapping[str, Any]) -> Record:
    ref = _ref(item, "cat_ref", "category")
    status, deleted = _status(item, "cat_stat")
    fields = _drop_none(
        {
            "title": localized(item, "cat_title"),
            "description": localized(item, "cat_description"),
            "parent_ref": item.get("cat_parent_ref"),
            "status": status,
            "created_at": item.get("cat_creation"),
            "modified_at": item.get("cat_modify"),
            "attributes": _attributes(item, _CATEGORY_READS),
        }
    )
    return Record("category", ref, fields, _id(item, "cat_id"), item.get("cat_modify"), deleted)


def _id(item: Mapping[str, Any], field: str) -> str | None:
    value = item.get(field)
    return None if value is None else str(value)


WRITABLE = {
    "product": frozenset({"title", "description", "status", "attributes"}),
    "variant": frozenset({"status", "options", "attributes"}),
    "category": frozenset({"title", "description", "status", "attributes"}),
}
PREFIX = {"product": "prod_", "variant": "frmt_", "category": "cat_"}
REF_FIELD = {"product": "prod_ref", "variant": "frmt_ref", "category": "cat_ref"}


def outbound(
    entity: str, key: str, fields: Mapping[str, Any], create: bool, option_fields: Mapping[str, str]
) -> dict[str, Any]:
    """The Sales Layer body for canonical ``fields`` of one record."""
    prefix = PREFIX[entity]
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name in ("title", "description"):
            body[f"{prefix}{name}"] = value
        elif name == "status":
            code = STATUS_OUT.get(value) if value is not None else None
            if code is None:
                raise DataError(f"{entity} status {value!r} has no Sales Layer code")
            body[f"{prefix}stat"] = code
        elif name == "options":
            by_name = {v: k for k, v in option_fields.items()}
            body.update({by_name[o]: v for o, v in (value or {}).items() if o in by_name})
        elif name == "attributes":
            body.update({k: v for k, v in (value or {}).items() if k.startswith(prefix)})
    if create:
        body[REF_FIELD[entity]] = key
    return body
