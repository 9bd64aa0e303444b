"""How a CSV is understood before any row is applied: its encoding, its dialect, and the
column map checked against the canonical model."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salync_csv.columns import column_map
from salync_csv.dialect import Dialect, detect_dialect, detect_encoding
from salync_csv.rows import RowReader

from salync_core.errors import ConfigError, DataError

ACCENTED = "SKU,Name\nCAF-1,Café crème\n"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        pytest.param(codecs.BOM_UTF8 + ACCENTED.encode(), "utf-8-sig", id="utf-8 BOM"),
        pytest.param(ACCENTED.encode("utf-16"), "utf-16", id="utf-16 BOM"),
        pytest.param(ACCENTED.encode(), "utf-8", id="plain utf-8"),
        pytest.param(ACCENTED.encode("cp1252"), "cp1252", id="cp1252 guessed"),
        pytest.param(b"SKU,Name\nX,\x81\xe9\n", "latin-1", id="latin-1 where cp1252 has a hole"),
    ],
)
def test_the_encoding_is_taken_from_the_bytes(sample: bytes, expected: str) -> None:
    assert detect_encoding(sample).name == expected


def test_a_guessed_encoding_says_it_is_a_guess() -> None:
    guess = detect_encoding(ACCENTED.encode("cp1252"))

    assert (
        guess.note == "not UTF-8 (byte 0xe9 at offset 18); read as cp1252: set encoding to be sure"
    )


def test_a_utf8_character_cut_by_the_sample_end_is_still_utf8() -> None:
    assert detect_encoding(ACCENTED.encode()[:-4]).name == "utf-8"


def test_a_declared_encoding_wins_and_an_unknown_one_is_refused() -> None:
    assert detect_encoding(ACCENTED.encode(), "Latin-1").name == "iso8859-1"
    with pytest.raises(ConfigError, match="'klingon' is not an encoding"):
        detect_encoding(b"", "klingon")


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a;b;c\n1;2,5;3\n4;5;6\n", ";"),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        ('a,b\n"x, y",2\n"z",3\n', ","),
    ],
)
def test_the_delimiter_is_sniffed(text: str, delimiter: str) -> None:
    assert detect_dialect(text).delimiter == delimiter


def test_declared_parts_of_the_dialect_are_taken_as_given() -> None:
    dialect = detect_dialect("a;b\n'x';2\n", delimiter=",", quotechar="'")

    assert (dialect.delimiter, dialect.quotechar) == (",", "'")


def test_a_sample_the_sniffer_cannot_read_falls_back_to_commas() -> None:
    assert detect_dialect("just one column\n").delimiter == ","


def test_cells_are_typed_through_the_canonical_model() -> None:
    columns = column_map(
        "product",
        {
            "SKU": "key",
            "Name": "title.fr",
            "Cost": "cost_price",
            "Low": "low_stock_threshold",
            "Cats": "category_refs",
            "Made": "created_at",
            "Barcode": "barcode",
        },
    )

    fields = columns.fields(
        {
            "Name": "Tasse",
            "Cost": " 4.5 ",
            "Low": "3",
            "Cats": "MUGS|SALE",
            "Made": "2026-01-02 03:04:05",
            "Barcode": "",
        }
    )

    assert fields == {
        "title": {"fr": "Tasse"},
        "cost_price": "4.5",
        "low_stock_threshold": 3,
        "category_refs": ["MUGS", "SALE"],
        "created_at": "2026-01-02T03:04:05Z",
        "barcode": None,
    }


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"Low": "3.5"}, "column 'Low': expected a whole number, got '3.5'"),
        ({"Status": "gone"}, "product.status: expected one of"),
        ({"Made": "yesterday"}, "(column 'Made')"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_column(cells: dict[str, str], reason: str) -> None:
    columns = column_map(
        "product",
        {"SKU": "key", "Low": "low_stock_threshold", "Status": "status", "Made": "created_at"},
    )

    with pytest.raises(DataError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        columns.fields(cells)


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        ({"Name": "title.en"}, 'exactly one column must be "key"'),
        ({"A": "key", "B": "key"}, 'exactly one column must be "key"'),
        ({"SKU": "key", "X": "colour"}, "product has no field 'colour'"),
        ({"SKU": "key", "Name": "title"}, 'title is written "title.KEY"'),
        ({"SKU": "key", "Cost": "cost_price.eur"}, 'cost_price is written "cost_price"'),
        ("SKU", "expected a table"),
    ],
)
def test_a_wrong_column_map_is_refused(declared: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        column_map("product", declared)


def test_lines_of_a_purchase_order_cannot_come_from_one_cell() -> None:
    with pytest.raises(ConfigError, match="cannot be read from one CSV cell"):
        column_map("purchase_order", {"PO": "key", "Lines": "lines"})


cell_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=12
)


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(cell_text, min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_any_text_written_as_csv_reads_back_with_the_line_it_starts_on(
    names: list[str], delimiter: str
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["SKU", "Name"])
    starts = []
    for n, name in enumerate(names):
        starts.append(out.getvalue().count("\n") + 1)
        writer.writerow([f"K{n}", name])
    columns = column_map("product", {"SKU": "key", "Name": "attributes.name"})
    reader = RowReader(
        io.StringIO(out.getvalue(), newline=""), Dialect(delimiter=delimiter), columns
    )

    reader.read_header()
    items = [item for batch in reader.batches(3) for item in batch.items]

    expected = [(f"K{n}", name.strip(), starts[n]) for n, name in enumerate(names)]
    read = [(i["key"], i["fields"].get("attributes", {}).get("name", ""), i["line"]) for i in items]
    assert read == [(k, v, line) for k, v, line in expected]
