"""Canonical models, the converter and the generated schema files."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salync_core.converters import codec, format_datetime, from_fields, parse_datetime, to_fields
from salync_core.errors import DataError
from salync_core.models import Product, PurchaseOrder, PurchaseOrderLine
from salync_core.schema import generated_files


def test_a_product_round_trips_through_json_ready_fields() -> None:
    product = Product(
        ref="PRD-1",
        title={"en": "Mug", "es": "Taza"},
        status="active",
        cost_price=Decimal("12.50"),
        modified_at=datetime(2026, 3, 1, 10, tzinfo=UTC),
        attributes={"prod_brand": "Acme"},
    )
    entity, key, fields = to_fields(product)
    assert (entity, key) == ("product", "PRD-1")
    assert fields["cost_price"] == "12.50"
    assert fields["modified_at"] == "2026-03-01T10:00:00Z"
    assert from_fields(entity, key, fields) == product


def test_nested_lines_round_trip() -> None:
    order = PurchaseOrder(
        ref="po_1", lines=[PurchaseOrderLine(sku="A", quantity=3, unit_cost=Decimal("1.5"))]
    )
    assert from_fields(*to_fields(order)) == order


def test_naive_timestamps_are_utc() -> None:
    assert format_datetime(parse_datetime("2023-11-23T13:35:59")) == "2023-11-23T13:35:59Z"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"title": "Mug"},
            "product.title: expected a {locale: text} map",
            id="text-not-localized",
        ),
        pytest.param({"status": "gone"}, "product.status: expected one of", id="unknown-status"),
        pytest.param({"cost_price": "cheap"}, "product.cost_price", id="not-a-number"),
        pytest.param(
            {"low_stock_threshold": True}, "expected an integer, got bool", id="bool-is-not-int"
        ),
        pytest.param({"colour": "red"}, "product has no field 'colour'", id="unknown-field"),
        pytest.param({"modified_at": "yesterday"}, "product.modified_at", id="bad-timestamp"),
    ],
)
def test_bad_fields_are_named_in_the_error(fields: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message.replace("{", r"\{").replace("}", r"\}")):
        codec("product").normalize(fields)


def test_normalizing_canonicalizes_values() -> None:
    fields = codec("product").normalize(
        {"cost_price": 12.5, "modified_at": "2026-03-01T12:00:00+02:00"}
    )
    assert fields == {"cost_price": "12.5", "modified_at": "2026-03-01T10:00:00Z"}


@given(st.dictionaries(st.sampled_from(["en", "es", "fr", "ar"]), st.text(max_size=20)))
def test_localized_text_is_kept_as_is(title: dict[str, str]) -> None:
    assert codec("product").normalize({"title": title}) == {"title": title}


def test_the_schema_files_are_up_to_date() -> None:
    for path, text in generated_files().items():
        assert path.exists(), f"{path} is missing: run python -m salync_core.schema"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run python -m salync_core.schema"
        )
