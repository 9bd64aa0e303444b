"""The declared column-to-field map, and one row's cells typed into canonical fields.

``columns = { SKU = "key", Name = "title.en", Cost = "cost_price", Brand = "attributes.brand" }``
names, for each column used, the field it feeds: ``key`` is the item reference, a dotted path
writes one key of a keyed map (a locale of localized text, an attribute). Every cell is text;
whole numbers and lists are read here, and everything else (decimals, timestamps, choices) is
checked and normalized by the canonical model's own converter, so a CSV value means what the
same value means from any other platform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, get_args, get_origin

import attrs
from attrs import frozen

from salync_core.converters import codec, entity_type
from salync_core.errors import ConfigError, DataError

KEY = "key"
LIST_SEPARATOR = "|"
"""How a list field (``category_refs``) is written in one cell: ``SHOES|SALE``."""

Parse = Callable[[str], Any]


@frozen
class Column:
    """One mapped column: the field it feeds and, for a keyed map, the key in it."""

    name: str
    field: str
    map_key: str | None
    parse: Parse
    optional: bool
    """An empty cell sets the field to nothing (``None``) rather than being left out."""


@frozen
class ColumnMap:
    entity: str
    key_column: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every column the map reads, the key column first."""
        return (self.key_column, *(c.name for c in self.columns))

    def fields(self, cells: Mapping[str, str]) -> dict[str, Any]:
        """One row's cells as canonical fields; :class:`DataError` names the bad column."""
        fields: dict[str, Any] = {}
        for column in self.columns:
            text = cells.get(column.name, "").strip()
            if not text:
                if column.optional and column.map_key is None:
                    fields[column.field] = None
                continue
            try:
                value = column.parse(text)
            except ValueError as exc:
                raise DataError(f"column {column.name!r}: {exc}") from None
            if column.map_key is None:
                fields[column.field] = value
            else:
                fields.setdefault(column.field, {})[column.map_key] = value
        try:
            return codec(self.entity).normalize(fields)
        except DataError as exc:
            raise DataError(f"{exc} (column {self._column_of(str(exc))!r})") from None

    def _column_of(self, message: str) -> str:
        for column in self.columns:
            if message.startswith(f"{self.entity}.{column.field}:"):
                return column.name
        return "?"


def column_map(entity: str, declared: Any, decimal_separator: str = ".") -> ColumnMap:
    """Check the ``columns`` option against the entity's fields; :class:`ConfigError` if wrong.
    ``decimal_separator`` is how the file writes the point of a decimal (``","``: ``4,50``)."""
    cls = entity_type(entity)
    if not isinstance(declared, Mapping) or not declared:
        raise ConfigError('columns: expected a table such as { SKU = "key", Name = "title.en" }')
    keys = [name for name, target in declared.items() if target == KEY]
    if len(keys) != 1:
        raise ConfigError(
            f'columns: exactly one column must be "key" (the item reference), found {len(keys)}'
        )
    fields = attrs.fields_dict(cls)
    columns = tuple(
        _column(str(name), target, entity, fields, decimal_separator)
        for name, target in declared.items()
        if target != KEY
    )
    return ColumnMap(entity, str(keys[0]), columns)


def _column(
    name: str,
    target: Any,
    entity: str,
    fields: Mapping[str, attrs.Attribute[Any]],
    decimal_separator: str,
) -> Column:
    if not isinstance(target, str) or not target:
        raise ConfigError(f"columns {name}: expected a field name, got {target!r}")
    field, _, map_key = target.partition(".")
    if field not in fields or field == "ref":
        known = ", ".join(sorted(f for f in fields if f != "ref"))
        raise ConfigError(f"columns {name}: {entity} has no field {field!r} (fields: {known})")
    tp, optional = _unwrap(fields[field].type)
    is_map = get_origin(tp) is dict
    if is_map != bool(map_key):
        hint = f'"{field}.KEY", such as "{field}.en"' if is_map else f'"{field}"'
        raise ConfigError(f"columns {name}: {field} is written {hint}")
    parse = _parser(get_args(tp)[1] if is_map else tp, f"columns {name}", decimal_separator)
    return Column(name, field, map_key or None, parse, optional)


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """``X | None`` as ``(X, True)``; anything else as ``(tp, False)``."""
    args = get_args(tp)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def _parser(tp: Any, where: str, decimal_separator: str = ".") -> Parse:
    if tp is Decimal and decimal_separator != ".":
        return lambda text: text.replace(decimal_separator, ".")
    if tp is int:
        return _whole_number
    if tp == list[str]:
        return _list
    if get_origin(tp) is list or attrs.has(tp):
        raise ConfigError(f"{where}: a {tp} field cannot be read from one CSV cell")
    return str  # text, and what the converter reads from text: decimals, dates, choices


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]
