"""The OData subset the Sales Layer Catalog API 2.0 understands: ``$select``, ``$orderby``,
``$expand`` and ``$filter``, parsed against an entity's field kinds and compiled to plain Python
callables over records (``dict``s).

Pure and synchronous: no I/O, no knowledge of HTTP. Every malformed or unsupported option raises
:class:`ODataError`, whose message the emulator returns in a 400 answer.

Semantics worth knowing (choices where the public documentation is silent):

* Operators and keywords are lower case (``eq``, ``and``, ``true``), as in OData. ``not``
  applies to what follows it: ``not prod_id eq 1`` reads as ``not (prod_id eq 1)``.
* String comparisons and ``contains``/``startswith``/``endswith`` are case-sensitive.
* Localized fields (``{culture: text}`` maps) are compared through the request's culture.
* List-valued fields (``cat_id``, ``prod_tags``) match when *any* element matches:
  ``cat_id eq 3`` is true when 3 is in the list, ``ne`` is its negation, ``in (..)`` means the
  lists overlap, and an empty list counts as ``null``.
* ``null`` compares with ``eq``/``ne`` only; a ``null`` value never satisfies ``gt``/``lt``/
  ``ge``/``le``. As in OData, ``prod_brand ne 'x'`` is true when ``prod_brand`` is null.
* Datetime fields accept unquoted ISO 8601 literals (``2024-01-01T00:00:00Z``, a bare date, or an
  offset) and quoted ones; a literal without a zone is UTC. They are compared as instants.
* Sorting puts nulls first ascending (last descending) and is stable, so records that tie keep
  the order they came in.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


class ODataError(ValueError):
    """A query option that is malformed, names an unknown field, or mixes incompatible types."""


class Kind(enum.Enum):
    """How a field's values are typed, which decides which literals and functions apply."""

    INT = "int"
    NUMBER = "number"
    STRING = "string"
    LOCALIZED = "localized"
    DATETIME = "datetime"
    INT_LIST = "int_list"
    STRING_LIST = "string_list"


_NUMERIC = frozenset({Kind.INT, Kind.NUMBER, Kind.INT_LIST})
_TEXTUAL = frozenset({Kind.STRING, Kind.LOCALIZED, Kind.STRING_LIST})
_LISTS = frozenset({Kind.INT_LIST, Kind.STRING_LIST})

# $select ---------------------------------------------------------------------------------


def parse_select(text: str, fields: Collection[str]) -> tuple[str, ...]:
    """``"prod_id, prod_ref"`` -> ``("prod_id", "prod_ref")``; spaces tolerated, duplicates
    dropped, unknown fields refused."""
    names = [part.strip() for part in text.split(",")]
    if any(not name for name in names):
        raise ODataError(f"empty field name in {text!r}")
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise ODataError(f"unknown field(s): {', '.join(unknown)}")
    return tuple(dict.fromkeys(names))


# $expand ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expand:
    """One ``$expand`` item: a navigation and, from ``Name($select=..)``, its nested select."""

    name: str
    select: tuple[str, ...] | None = None


_EXPAND_ITEM = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", re.DOTALL)


def parse_expand(text: str, navigations: Mapping[str, Collection[str]]) -> dict[str, Expand]:
    """Parse ``Variants`` or ``Variants($select=frmt_id,frmt_ref)``; ``navigations`` maps each
    expandable name to the fields its nested ``$select`` may name. Only ``$select`` may nest."""
    expands: dict[str, Expand] = {}
    for item in _split_top_level(text):
        match = _EXPAND_ITEM.fullmatch(item)
        if match is None:
            raise ODataError(f"malformed $expand item {item!r}")
        name, options = match.group(1), match.group(2)
        if name not in navigations:
            known = ", ".join(navigations) or "none"
            raise ODataError(f"cannot expand {name!r} (expandable: {known})")
        select = None if options is None else _nested_select(options, navigations[name])
        expands[name] = Expand(name, select)
    return expands


def _nested_select(options: str, fields: Collection[str]) -> tuple[str, ...] | None:
    select = None
    for option in filter(None, (part.strip() for part in options.split(";"))):
        key, sep, value = option.partition("=")
        if key.strip() != "$select" or not sep:
            raise ODataError(f"unsupported nested option {option!r} (only $select may nest)")
        select = parse_select(value, fields)
    return select


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ODataError(f"unbalanced parentheses in {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth:
        raise ODataError(f"unbalanced parentheses in {text!r}")
    parts.append(text[start:])
    if any(not part.strip() for part in parts):
        raise ODataError(f"empty item in {text!r}")
    return parts


# $orderby --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderKey:
    """One ``$orderby`` term, with the function that extracts its sort value from a record."""

    field: str
    descending: bool
    key: Callable[[Record], Any] = dataclasses.field(compare=False, repr=False)


def parse_orderby(
    text: str, fields: Mapping[str, Kind], culture: str | None = None
) -> tuple[OrderKey, ...]:
    """``"prod_modify desc, prod_id"`` -> order keys. Collections cannot be ordered by; a
    localized field orders by its text in ``culture``."""
    keys = []
    for term in text.split(","):
        words = term.split()
        if not words or len(words) > 2:
            raise ODataError(f"malformed $orderby term {term.strip()!r}")
        name = words[0]
        direction = words[1] if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise ODataError(f"expected asc or desc after {name}, got {direction!r}")
        kind = _field_kind(name, fields)
        if kind in _LISTS:
            raise ODataError(f"cannot order by {name}: it is a collection")
        getter = _getter(name, kind, culture)
        keys.append(OrderKey(name, direction == "desc", _null_first(getter)))
    return tuple(keys)


def _null_first(getter: Callable[[Record], Any]) -> Callable[[Record], Any]:
    def key(record: Record) -> tuple[bool, Any]:
        value = getter(record)
        return (value is not None, value)

    return key


def sort_records(records: Sequence[Record], keys: Sequence[OrderKey]) -> list[Record]:
    """Records ordered by ``keys``: stable passes from the last key to the first, so mixed
    directions work and full ties keep their incoming order."""
    ordered = list(records)
    for order_key in reversed(keys):
        ordered.sort(key=order_key.key, reverse=order_key.descending)
    return ordered


# $filter: tokens ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_]\w*)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"true": True, "false": False, "null": None}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "lt": operator.lt,
    "ge": operator.ge,
    "le": operator.le,
}
_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "contains": operator.contains,
    "startswith": str.startswith,
    "endswith": str.endswith,
}


@dataclass(frozen=True)
class _Token:
    kind: str  # "literal", "name", "punct" or "end"
    text: str
    position: int
    value: Any = None


def _tokenize(text: str) -> list[_Token]:
    tokens, position = [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            tokens.append(_Token("end", "", position))
            return tokens
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise ODataError(f"unexpected character {text[position]!r} at position {position}")
        tokens.append(_make_token(match.lastgroup, match.group(match.lastgroup), position))
        position = match.end()


def _make_token(group: str, raw: str, position: int) -> _Token:
    if group == "string":
        return _Token("literal", raw, position, raw[1:-1].replace("''", "'"))
    if group == "datetime":
        return _Token("literal", raw, position, _parse_datetime(raw))
    if group == "number":
        number = float(raw) if any(c in raw for c in ".eE") else int(raw)
        return _Token("literal", raw, position, number)
    if group == "name" and raw in _KEYWORDS:
        return _Token("literal", raw, position, _KEYWORDS[raw])
    return _Token(group, raw, position)


def _parse_datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ODataError(f"invalid datetime {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def instant(value: Any) -> str | None:
    """A stored timestamp as a string that orders chronologically (see :func:`_instant_of`).
    Values in the API's own form (``2026-03-01T10:00:00Z``) take a fast path that skips
    parsing: a filter over a 100k catalog reads every record's timestamp."""
    if value is None:
        return None
    if len(value) == 20 and value[19] == "Z" and value[10] == "T":
        return str(value[:19])
    return _instant_of(_parse_datetime(value))


def _instant_of(moment: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS``, plus ``.ffffff`` when there is a fraction: fixed-width
    fields, so comparing the strings compares the instants (a whole second is a prefix of,
    and so sorts before, the same second with a fraction)."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")


# $filter: parser ---------------------------------------------------------------------------


def parse_filter(text: str, fields: Mapping[str, Kind], culture: str | None = None) -> Predicate:
    """Compile a ``$filter`` expression to a predicate over records. ``culture`` is needed only
    when the expression touches a localized field."""
    parser = _FilterParser(_tokenize(text), fields, culture)
    predicate = parser.expression()
    parser.expect_end()
    return predicate


class _FilterParser:
    """Recursive descent: ``or`` < ``and`` < ``not`` < comparison / function / parentheses."""

    def __init__(self, tokens: list[_Token], fields: Mapping[str, Kind], culture: str | None):
        self.tokens, self.fields, self.culture = tokens, fields, culture
        self.index = 0

    # token helpers

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        return token.kind == kind and (text is None or token.text == text)

    def expect(self, kind: str, text: str | None = None) -> _Token:
        if not self.at(kind, text):
            raise self.error(f"expected {text or kind}")
        return self.advance()

    def expect_end(self) -> None:
        if not self.at("end"):
            raise self.error("expected end of expression")

    def error(self, message: str) -> ODataError:
        token = self.peek()
        found = "end of expression" if token.kind == "end" else repr(token.text)
        return ODataError(f"{message} at position {token.position}, found {found}")

    # grammar

    def expression(self) -> Predicate:
        terms = [self.conjunction()]
        while self.at("name", "or"):
            self.advance()
            terms.append(self.conjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda record: any(term(record) for term in terms)

    def conjunction(self) -> Predicate:
        terms = [self.negation()]
        while self.at("name", "and"):
            self.advance()
            terms.append(self.negation())
        if len(terms) == 1:
            return terms[0]
        return lambda record: all(term(record) for term in terms)

    def negation(self) -> Predicate:
        if self.at("name", "not"):
            self.advance()
            inner = self.negation()
            return lambda record: not inner(record)
        return self.primary()

    def primary(self) -> Predicate:
        if self.at("punct", "("):
            self.advance()
            inner = self.expression()
            self.expect("punct", ")")
            return inner
        if not self.at("name"):
            raise self.error("expected a field name, function or '('")
        name = self.advance().text
        if name in _FUNCTIONS and self.at("punct", "("):
            return self.function_call(name)
        return self.comparison(name)

    def comparison(self, name: str) -> Predicate:
        kind = _field_kind(name, self.fields)
        getter = _getter(name, kind, self.culture)
        if self.at("name", "in"):
            self.advance()
            return _in_predicate(kind, getter, self.literal_list(name, kind))
        operator_name = self.peek().text
        if not self.at("name") or operator_name not in _COMPARISONS:
            raise self.error(f"expected a comparison operator after {name}")
        self.advance()
        return _compare(name, kind, getter, operator_name, self.literal(name, kind))

    def function_call(self, function: str) -> Predicate:
        self.expect("punct", "(")
        name = self.expect("name").text
        kind = _field_kind(name, self.fields)
        if kind not in _TEXTUAL:
            raise ODataError(f"{function}() needs a text field; {name} is {kind.value}")
        self.expect("punct", ",")
        needle = self.expect("literal")
        if not isinstance(needle.value, str):
            raise ODataError(f"{function}() needs a quoted string, got {needle.text}")
        self.expect("punct", ")")
        getter = _getter(name, kind, self.culture)
        predicate = _text_function(_FUNCTIONS[function], getter, needle.value, kind in _LISTS)
        return self.optional_boolean_comparison(predicate)

    def optional_boolean_comparison(self, predicate: Predicate) -> Predicate:
        """``contains(f,'x') eq true`` and ``... ne false`` are the same as the bare call."""
        if not (self.at("name", "eq") or self.at("name", "ne")):
            return predicate
        negate = self.advance().text == "ne"
        literal = self.expect("literal")
        if not isinstance(literal.value, bool):
            raise ODataError(f"a function result compares with true or false, not {literal.text}")
        if literal.value is negate:
            return lambda record: not predicate(record)
        return predicate

    def literal(self, name: str, kind: Kind) -> Any:
        if not self.at("literal"):
            raise self.error(f"expected a value to compare {name} with")
        return _coerce_literal(name, kind, self.advance())

    def literal_list(self, name: str, kind: Kind) -> list[Any]:
        self.expect("punct", "(")
        values = [self.literal(name, kind)]
        while self.at("punct", ","):
            self.advance()
            values.append(self.literal(name, kind))
        self.expect("punct", ")")
        if any(value is None for value in values):
            raise ODataError(f"null is not allowed in an in-list (use {name} eq null)")
        return values


# $filter: compiled pieces ----------------------------------------------------------------


def _field_kind(name: str, fields: Mapping[str, Kind]) -> Kind:
    try:
        return fields[name]
    except KeyError:
        raise ODataError(f"unknown field {name!r}") from None


def _getter(name: str, kind: Kind, culture: str | None) -> Callable[[Record], Any]:
    """Reads the comparable value: a localized map's text in ``culture``, a timestamp as a
    sortable UTC string, a list as-is (empty lists read as ``None``)."""
    if kind is Kind.LOCALIZED:
        if culture is None:
            raise ODataError(f"{name} is localized and the request has no usable culture")
        return lambda record: (record.get(name) or {}).get(culture)
    if kind is Kind.DATETIME:
        return lambda record: instant(record.get(name))
    if kind in _LISTS:
        return lambda record: record.get(name) or None
    return lambda record: record.get(name)


def _coerce_literal(name: str, kind: Kind, token: _Token) -> Any:
    value = token.value
    if value is None:
        return None
    if kind is Kind.DATETIME:
        if isinstance(value, str):
            value = _parse_datetime(value)
        if isinstance(value, datetime):
            return _instant_of(value)
    elif kind in _NUMERIC:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif kind in _TEXTUAL and isinstance(value, str):
        return value
    raise ODataError(f"cannot compare {name} ({kind.value}) with {token.text}")


def _compare(
    name: str, kind: Kind, getter: Callable[[Record], Any], op_name: str, literal: Any
) -> Predicate:
    if literal is None:
        if op_name not in ("eq", "ne"):
            raise ODataError(f"null can only be compared with eq or ne ({name} {op_name} null)")
        is_null = op_name == "eq"
        return lambda record: (getter(record) is None) is is_null
    compare = _COMPARISONS[op_name]
    if kind in _LISTS:
        return _list_compare(getter, op_name, compare, literal)
    if op_name in ("eq", "ne"):
        return lambda record: compare(getter(record), literal)

    def ordered(record: Record) -> bool:
        value = getter(record)
        return value is not None and compare(value, literal)

    return ordered


def _list_compare(
    getter: Callable[[Record], Any], op_name: str, compare: Callable[[Any, Any], bool], literal: Any
) -> Predicate:
    if op_name == "eq":
        return lambda record: literal in (getter(record) or ())
    if op_name == "ne":
        return lambda record: literal not in (getter(record) or ())
    return lambda record: any(compare(item, literal) for item in getter(record) or ())


def _in_predicate(kind: Kind, getter: Callable[[Record], Any], literals: list[Any]) -> Predicate:
    wanted = frozenset(literals)
    if kind in _LISTS:
        return lambda record: not wanted.isdisjoint(getter(record) or ())
    return lambda record: getter(record) in wanted


def _text_function(
    function: Callable[[str, str], bool],
    getter: Callable[[Record], Any],
    needle: str,
    is_list: bool,
) -> Predicate:
    if is_list:
        return lambda record: any(function(item, needle) for item in getter(record) or ())

    def test(record: Record) -> bool:
        value = getter(record)
        return value is not None and function(value, needle)

    return test
