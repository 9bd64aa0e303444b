"""The one converter between canonical models and JSON-ready data.

Rules, kept apart from the models (cattrs' design): datetimes are UTC ISO-8601 strings ending in
``Z`` (a naive timestamp is read as UTC, which is what Sales Layer 2.0 sends), dates are
``YYYY-MM-DD``, money is a decimal string. :class:`FieldCodec` validates and normalizes one
entity's fields one by one, so a partial record (a platform that knows only some fields) is
checked without building the whole model, and a bad field gets a readable reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.preconf.orjson import make_converter

from salync_core.errors import DataError
from salync_core.models import ENTITY_TYPES

converter = make_converter(forbid_extra_keys=True)


_CANONICAL_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


def parse_datetime(value: str | datetime) -> datetime:
    """Read an ISO-8601 timestamp; a naive one is UTC. Always returns an aware UTC datetime."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """Write a datetime as UTC ISO-8601 with a ``Z`` suffix."""
    text = parse_datetime(value).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, got {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"expected a finite decimal number, got {value!r}")
    return result


converter.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
converter.register_unstructure_hook(datetime, format_datetime)
converter.register_structure_hook(date, lambda v, _: date.fromisoformat(v))
converter.register_unstructure_hook(date, date.isoformat)
converter.register_structure_hook(Decimal, _structure_decimal)
converter.register_unstructure_hook(Decimal, str)


def entity_type(entity: str) -> type[Any]:
    """The canonical class for an entity name, or a clear error."""
    try:
        return ENTITY_TYPES[entity]
    except KeyError:
        known = ", ".join(sorted(ENTITY_TYPES))
        raise DataError(f"unknown entity {entity!r} (known: {known})") from None


def to_fields(model: Any) -> tuple[str, str, dict[str, Any]]:
    """Split a canonical model into ``(entity, key, fields)`` with JSON-ready values."""
    data: dict[str, Any] = converter.unstructure(model)
    return model.entity, data.pop("ref"), data


def from_fields(entity: str, key: str, fields: Mapping[str, Any]) -> Any:
    """Build the canonical model of ``entity`` from its key and JSON-ready fields."""
    cls = entity_type(entity)
    try:
        return converter.structure({**fields, "ref": key}, cls)
    except cattrs.BaseValidationError as exc:
        reason = "; ".join(cattrs.transform_error(exc))
        raise DataError(f"{entity} {key!r}: {reason}") from None


Normalizer = Callable[[Any], Any]


# The checks below run for every field of every record on every page, so they compare exact
# types (a bool is not an int here) instead of calling isinstance through generators, and an
# optional field's check lets ``None`` through itself rather than through a wrapper call.


def _check(kind: type, label: str, nullable: bool) -> Normalizer:
    def normalize(value: Any) -> Any:
        if type(value) is not kind and not (nullable and value is None):
            raise ValueError(f"expected {label}, got {type(value).__name__}")
        return value

    return normalize


def _localized(value: Any) -> Any:
    if type(value) is not dict:
        raise ValueError("expected a {locale: text} map of strings")
    for key, text in value.items():
        if type(key) is not str or type(text) is not str:
            raise ValueError("expected a {locale: text} map of strings")
    return value


def _string_list(value: Any) -> Any:
    if type(value) is not list:
        raise ValueError("expected a list of strings")
    for item in value:
        if type(item) is not str:
            raise ValueError("expected a list of strings")
    return value


def _timestamp(nullable: bool) -> Normalizer:
    def timestamp(value: Any) -> Any:
        """A UTC timestamp; one already in canonical form (most of them) is kept as it is."""
        if isinstance(value, str) and _CANONICAL_TIMESTAMP.fullmatch(value):
            return value
        if nullable and value is None:
            return None
        if not isinstance(value, str | datetime):
            raise ValueError(f"expected an ISO-8601 timestamp, got {type(value).__name__}")
        return format_datetime(parse_datetime(value))

    return timestamp


def _literal(allowed: frozenset[Any], nullable: bool) -> Normalizer:
    accepted = allowed | {None} if nullable else allowed

    def literal(value: Any) -> Any:
        if value not in accepted:
            raise ValueError(f"expected one of {sorted(allowed)}, got {value!r}")
        return value

    return literal


def _via_converter(tp: Any) -> Normalizer:
    def normalize(value: Any) -> Any:
        return converter.unstructure(converter.structure(value, tp), tp)

    return normalize


def _optional(inner: Normalizer) -> Normalizer:
    return lambda v: None if v is None else inner(v)


def _normalizer(tp: Any) -> Normalizer:
    """The fastest correct check for one field type; the converter for the rest."""
    args = get_args(tp)
    nullable = type(None) in args
    if nullable:  # Optional[X]: None passes, the rest is checked as X
        tp = next(a for a in args if a is not type(None))
        args = get_args(tp)
    if tp is str:
        return _check(str, "a string", nullable)
    if tp is int:
        return _check(int, "an integer", nullable)
    if tp == dict[str, Any]:
        return _check(dict, "an object", nullable)
    if tp is datetime:
        return _timestamp(nullable)
    if get_origin(tp) is Literal:
        return _literal(frozenset(args), nullable)
    check: Normalizer
    if tp == dict[str, str]:
        check = _localized
    elif tp == list[str]:
        check = _string_list
    else:
        check = _via_converter(tp)
    return _optional(check) if nullable else check


class FieldCodec:
    """Validates and normalizes the fields of one entity, field by field."""

    def __init__(self, entity: str) -> None:
        self.entity = entity
        cls = entity_type(entity)
        fields = attrs.fields_dict(cls)
        self.required = frozenset(
            name for name, a in fields.items() if a.default is attrs.NOTHING and name != "ref"
        )
        self.normalizers: dict[str, Normalizer] = {
            name: _normalizer(a.type) for name, a in fields.items() if name != "ref"
        }

    def normalize(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Return the fields in canonical JSON form, or raise :class:`DataError` naming the field.

        Fields that are already canonical (nearly all of them) are returned as the same dict.
        """
        normalizers = self.normalizers
        changed: dict[str, Any] | None = None
        for name, value in fields.items():
            normalize = normalizers.get(name)
            if normalize is None:
                raise DataError(f"{self.entity} has no field {name!r}")
            try:
                clean = normalize(value)
            except (ValueError, TypeError, cattrs.BaseValidationError) as exc:
                raise DataError(f"{self.entity}.{name}: {_reason(exc)}") from None
            if clean is not value:
                changed = changed if changed is not None else {}
                changed[name] = clean
        if changed is None and type(fields) is dict:
            return fields
        return {**fields, **(changed or {})}

    def missing_required(self, fields: Mapping[str, Any]) -> list[str]:
        """Required fields absent from ``fields``."""
        return sorted(self.required.difference(fields))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)


@cache
def codec(entity: str) -> FieldCodec:
    """The shared :class:`FieldCodec` of an entity."""
    return FieldCodec(entity)
