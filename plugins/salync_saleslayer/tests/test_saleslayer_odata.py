"""The OData subset of the Sales Layer emulator: ``$select``, ``$expand``, ``$orderby``,
``$filter``, parsed against field kinds and evaluated over plain records."""

from __future__ import annotations

import operator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from salync_saleslayer.odata import (
    Expand,
    Kind,
    ODataError,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_select,
    sort_records,
)

FIELDS = {
    "prod_id": Kind.INT,
    "prod_ref": Kind.STRING,
    "prod_title": Kind.LOCALIZED,
    "prod_weight": Kind.NUMBER,
    "prod_modify": Kind.DATETIME,
    "cat_id": Kind.INT_LIST,
    "prod_tags": Kind.STRING_LIST,
    "prod_brand": Kind.STRING,
}
RECORDS: list[dict[str, Any]] = [
    {
        "prod_id": 1,
        "prod_ref": "PRD-1",
        "prod_title": {"en": "Wool coat", "es": "Abrigo de lana"},
        "prod_weight": 1.5,
        "prod_modify": "2026-01-10T08:00:00Z",
        "cat_id": [3, 5],
        "prod_tags": ["sale", "eco"],
        "prod_brand": "Norda",
    },
    {
        "prod_id": 2,
        "prod_ref": "O'Neil jacket",
        "prod_title": {"en": "Rain jacket"},
        "prod_weight": 0.8,
        "prod_modify": "2026-02-01T00:00:00Z",
        "cat_id": [5],
        "prod_tags": [],
        "prod_brand": None,
    },
    {
        "prod_id": 3,
        "prod_ref": "PRD-3",
        "prod_title": {"en": "Linen shirt", "es": "Camisa de lino"},
        "prod_weight": 0.3,
        "prod_modify": "2026-03-01T10:00:00Z",
        "cat_id": [],
        "prod_tags": ["new"],
        "prod_brand": "Cala",
    },
]


def matching(expression: str, culture: str | None = "en") -> list[int]:
    matches = parse_filter(expression, FIELDS, culture)
    return [record["prod_id"] for record in RECORDS if matches(record)]


# $select and $expand -------------------------------------------------------------------


def test_select_tolerates_spaces_and_drops_duplicates() -> None:
    assert parse_select("prod_id, prod_ref ,prod_id", FIELDS) == ("prod_id", "prod_ref")


@pytest.mark.parametrize("text", ["prod_id,,prod_ref", "prod_id,nope", ""])
def test_select_refuses_empty_and_unknown_fields(text: str) -> None:
    with pytest.raises(ODataError):
        parse_select(text, FIELDS)


def test_expand_takes_a_nested_select() -> None:
    navigations = {"Variants": {"frmt_id", "frmt_ref"}}
    assert parse_expand("Variants", navigations) == {"Variants": Expand("Variants")}
    assert parse_expand("Variants($select=frmt_id, frmt_ref)", navigations) == {
        "Variants": Expand("Variants", ("frmt_id", "frmt_ref"))
    }


@pytest.mark.parametrize(
    "text",
    ["Images", "Variants($filter=frmt_id eq 1)", "Variants($select=nope)", "Variants(", "x)"],
)
def test_expand_refuses_unknown_navigations_and_options(text: str) -> None:
    with pytest.raises(ODataError):
        parse_expand(text, {"Variants": {"frmt_id"}})


# $orderby ------------------------------------------------------------------------------


def ordered_ids(text: str, culture: str | None = "en") -> list[int]:
    keys = parse_orderby(text, FIELDS, culture)
    return [record["prod_id"] for record in sort_records(RECORDS, keys)]


def test_orderby_sorts_by_each_key_in_its_direction() -> None:
    assert ordered_ids("prod_weight") == [3, 2, 1]
    assert ordered_ids("prod_modify desc") == [3, 2, 1]
    assert ordered_ids("prod_id desc, prod_ref asc") == [3, 2, 1]


def test_orderby_puts_nulls_first_ascending_and_last_descending() -> None:
    assert ordered_ids("prod_brand") == [2, 3, 1]
    assert ordered_ids("prod_brand desc") == [1, 3, 2]


def test_orderby_on_a_localized_field_uses_the_culture() -> None:
    assert ordered_ids("prod_title", "es") == [2, 1, 3]  # no "es" title sorts first
    assert ordered_ids("prod_title", "en") == [3, 2, 1]


@pytest.mark.parametrize("text", ["cat_id", "prod_id up", "nope", "prod_id,", "a b c"])
def test_orderby_refuses_collections_unknown_fields_and_bad_directions(text: str) -> None:
    with pytest.raises(ODataError):
        parse_orderby(text, FIELDS, "en")


def test_sorting_is_stable_for_ties() -> None:
    records = [{"k": 1, "n": "b"}, {"k": 0, "n": "a"}, {"k": 1, "n": "a"}]
    keys = parse_orderby("k desc", {"k": Kind.INT, "n": Kind.STRING})
    assert sort_records(records, keys) == [records[0], records[2], records[1]]


# $filter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("prod_id eq 2", [2]),
        ("prod_id ne 2", [1, 3]),
        ("prod_weight gt 0.8", [1]),
        ("prod_weight ge 0.8", [1, 2]),
        ("prod_weight lt 1e0", [2, 3]),
        ("prod_id le -1", []),
        ("prod_ref eq 'O''Neil jacket'", [2]),
        ("prod_id eq 1 or prod_id eq 3 and prod_weight gt 1", [1]),
        ("(prod_id eq 1 or prod_id eq 3) and prod_weight lt 1", [3]),
        ("not prod_id eq 1", [2, 3]),
        ("not (prod_id eq 1 or prod_id eq 2)", [3]),
        ("prod_id in (1, 3, 99)", [1, 3]),
        ("prod_ref in ('PRD-1', 'nope')", [1]),
        ("prod_brand eq null", [2]),
        ("prod_brand ne null", [1, 3]),
        ("prod_brand ne 'Norda'", [2, 3]),
        ("prod_brand gt 'A'", [1, 3]),
        ("contains(prod_ref,'PRD')", [1, 3]),
        ("startswith(prod_ref, 'O''N')", [2]),
        ("endswith(prod_ref,'3') eq true", [3]),
        ("contains(prod_ref,'PRD') eq false", [2]),
        ("contains(prod_ref,'PRD') ne true", [2]),
        ("contains(prod_title,'coat')", [1]),
        ("prod_title eq 'Rain jacket'", [2]),
    ],
)
def test_filter_evaluates_comparisons_logic_and_functions(
    expression: str, expected: list[int]
) -> None:
    assert matching(expression) == expected


def test_filter_compares_localized_fields_in_the_culture() -> None:
    assert matching("startswith(prod_title,'Camisa')", "es") == [3]
    assert matching("prod_title eq null", "es") == [2]


def test_filter_on_a_list_field_matches_any_element() -> None:
    assert matching("cat_id eq 5") == [1, 2]
    assert matching("cat_id ne 3") == [2, 3]
    assert matching("cat_id in (3, 4)") == [1]
    assert matching("cat_id gt 4") == [1, 2]
    assert matching("cat_id eq null") == [3]  # an empty list is null
    assert matching("contains(prod_tags,'ne')") == [3]


@pytest.mark.parametrize(
    "literal",
    [
        "2026-02-01T00:00:00Z",
        "'2026-02-01T00:00:00Z'",
        "2026-02-01T01:00:00+01:00",
        "2026-01-31T23:00:00-01:00",
        "2026-02-01T00:00:00",
        "2026-02-01",
        "'2026-02-01T00:00'",
    ],
)
def test_filter_compares_datetimes_as_instants(literal: str) -> None:
    assert matching(f"prod_modify ge {literal}") == [2, 3]
    assert matching(f"prod_modify eq {literal}") == [2]


def test_filter_datetime_fractions_sort_after_the_whole_second() -> None:
    assert matching("prod_modify gt 2026-02-01T00:00:00.5Z") == [3]
    assert matching("prod_modify le 2026-02-01T00:00:00.5Z") == [1, 2]


def test_filter_reads_timestamps_in_other_forms() -> None:
    record = {"prod_modify": "2026-02-01T02:00:00.250+02:00"}
    matches = parse_filter("prod_modify gt 2026-02-01T00:00:00Z", FIELDS)
    assert matches(record)
    assert not parse_filter("prod_modify gt 2026-02-01T00:00:00.3Z", FIELDS)(record)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "prod_id",
        "prod_id eq",
        "prod_id eq 1 and",
        "prod_id eq 1)",
        "(prod_id eq 1",
        "prod_id equals 1",
        "prod_id EQ 1",
        "nope eq 1",
        "prod_id eq 'one'",
        "prod_ref eq 1",
        "prod_modify gt 'yesterday'",
        "prod_modify gt 2026-13-01",
        "prod_id gt null",
        "prod_id in ()",
        "prod_id in (1, null)",
        "prod_ref eq 'unterminated",
        "contains(prod_id,'1')",
        "contains(prod_ref, 1)",
        "contains(prod_ref,'x') eq 1",
        "prod_id eq 1 # comment",
        "prod_id eq true",
    ],
)
def test_filter_refuses_malformed_expressions(expression: str) -> None:
    with pytest.raises(ODataError):
        parse_filter(expression, FIELDS, "en")


def test_filter_on_a_localized_field_needs_a_culture() -> None:
    with pytest.raises(ODataError, match="culture"):
        parse_filter("prod_title eq 'x'", FIELDS, None)
    assert parse_filter("prod_id eq 1", FIELDS, None)(RECORDS[0])


def test_filter_errors_say_where() -> None:
    with pytest.raises(ODataError, match="position 11"):
        parse_filter("prod_id eq and", FIELDS)


# properties -----------------------------------------------------------------------------

OPERATORS = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt}
OPERATORS |= {"lt": operator.lt, "ge": operator.ge, "le": operator.le}


@given(text=st.text())
def test_any_string_survives_quoting(text: str) -> None:
    quoted = "'" + text.replace("'", "''") + "'"
    assert parse_filter(f"prod_ref eq {quoted}", FIELDS)({"prod_ref": text})


@given(
    value=st.integers(-(10**6), 10**6),
    literal=st.integers(-(10**6), 10**6),
    name=st.sampled_from(sorted(OPERATORS)),
)
def test_integer_comparisons_agree_with_python(value: int, literal: int, name: str) -> None:
    matches = parse_filter(f"prod_id {name} {literal}", FIELDS)
    assert matches({"prod_id": value}) is OPERATORS[name](value, literal)


moments = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9998, 12, 31),
    timezones=st.just(UTC),
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@given(
    stored=moments.map(lambda moment: moment.replace(microsecond=0)),
    literal=moments,
    offset=offsets,
    name=st.sampled_from(sorted(OPERATORS)),
)
def test_datetime_comparisons_agree_with_the_instants(
    stored: datetime, literal: datetime, offset: timezone, name: str
) -> None:
    record = {"prod_modify": stored.strftime("%Y-%m-%dT%H:%M:%SZ")}
    matches = parse_filter(f"prod_modify {name} {literal.astimezone(offset).isoformat()}", FIELDS)
    assert matches(record) is OPERATORS[name](stored, literal)


@given(
    a=st.integers(0, 3),
    b=st.integers(0, 3),
    value=st.integers(0, 3),
)
def test_not_distributes_as_de_morgan_says(a: int, b: int, value: int) -> None:
    record = {"prod_id": value}
    left = parse_filter(f"not (prod_id eq {a} and prod_id ne {b})", FIELDS)
    right = parse_filter(f"not prod_id eq {a} or not prod_id ne {b}", FIELDS)
    assert left(record) is right(record)


@given(
    rows=st.lists(
        st.fixed_dictionaries({"k": st.none() | st.integers(0, 5), "n": st.integers(0, 5)}),
        max_size=30,
    )
)
def test_sorting_agrees_with_python_sorted(rows: list[dict[str, Any]]) -> None:
    keys = parse_orderby("k desc, n", {"k": Kind.INT, "n": Kind.INT})

    def expected_key(row: dict[str, Any]) -> tuple[int, int]:
        return (1 if row["k"] is None else -row["k"], row["n"])  # nulls last descending

    assert sort_records(rows, keys) == sorted(rows, key=expected_key)
