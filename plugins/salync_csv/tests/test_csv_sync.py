"""A CSV export feeds the mirror: bad rows aside with their line numbers, the file's own
encoding and dialect, nothing read twice, and rows that left the file reconciled away."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from csv_support import (
    HEADER,
    catalog,
    csv_config,
    dead_letters,
    products,
    replace_keeping_stat,
    tombstoned,
    write_export,
)

from salync_core import Engine

pytestmark = pytest.mark.anyio


async def test_bad_rows_go_to_dead_letters_with_their_line_and_the_good_rows_apply(
    tmp_path: Path,
) -> None:
    write_export(
        tmp_path,
        HEADER
        + "SKU-1,Mug,4.50,Acme\n"  # line 2
        + "SKU-2,Plate,3.00\n"  # line 3: a value short
        + "SKU-3,Bowl,cheap,Acme\n"  # line 4: not a decimal
        + ",Cup,1.00,Acme\n"  # line 5: no key
        + "SKU-1,Mug again,9.99,Acme\n"  # line 6: a key seen on line 2
        + '"SKU-4","Jug, ""large""",12,Acme\n',  # line 7
    )
    async with Engine.open(csv_config(tmp_path)) as engine:
        (report,) = await engine.sync()

        assert set(products(engine)) == {"SKU-1", "SKU-4"}
        assert products(engine)["SKU-1"]["title"] == {"en": "Mug"}
        assert products(engine)["SKU-1"]["cost_price"] == "4.50"
        assert products(engine)["SKU-4"]["title"] == {"en": 'Jug, "large"'}
        assert products(engine)["SKU-4"]["attributes"] == {"brand": "Acme"}
        reasons = sorted(reason for _, reason in dead_letters(engine))
        assert reasons == [
            "line 3: 3 values where the header has 4 columns",
            "line 4: product.cost_price: expected a decimal number, got 'cheap' (column 'Cost')",
            "line 5: no item reference in the key column 'SKU'",
            "line 6: key 'SKU-1' already appeared on line 2; the first one was kept",
        ]
        assert report.stream("rows").rejected == 4
        kept = {raw for raw, reason in dead_letters(engine) if reason.startswith("line 4:")}
        assert kept == {
            '{"line":4,"row":{"SKU":"SKU-3","Name":"Bowl","Cost":"cheap","Brand":"Acme"}}'
        }
        assert not any(p.fatal for p in report.problems)


async def test_a_cp1252_export_with_accented_text_is_read_as_cp1252(tmp_path: Path) -> None:
    text = (
        "SKU;Name;Cost;Brand\r\n"
        "CAF-1;Café crème;2.10;Müller\r\n"
        "THE-1;Thé à la menthe;3.20;Señor\r\n"
    )
    write_export(tmp_path, text.encode("cp1252"))
    async with Engine.open(csv_config(tmp_path)) as engine:
        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert products(engine)["CAF-1"]["title"] == {"en": "Café crème"}
        assert products(engine)["THE-1"]["attributes"] == {"brand": "Señor"}
        cursor = engine.store.conn.execute("SELECT cursor FROM cursors").fetchone()[0]
        assert '"encoding":"cp1252"' in cursor
        assert "not UTF-8" in cursor  # the guess is said, so a declared encoding can settle it


async def test_a_declared_encoding_is_taken_as_given(tmp_path: Path) -> None:
    # these bytes are valid cp1252 too ("Ã©"): only the declaration can say they are latin-1
    write_export(tmp_path, (HEADER + "SKU-1,Caf\u00e9,1.00,Acme\n").encode("utf-8"))
    async with Engine.open(csv_config(tmp_path, encoding="latin-1")) as engine:
        await engine.sync()

        assert products(engine)["SKU-1"]["title"] == {"en": "Caf\u00c3\u00a9"}


async def test_a_utf8_export_with_a_byte_order_mark_keeps_its_first_column_name(
    tmp_path: Path,
) -> None:
    write_export(tmp_path, b"\xef\xbb\xbf" + catalog(3).encode())
    async with Engine.open(csv_config(tmp_path)) as engine:
        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert len(products(engine)) == 3


async def test_semicolons_and_quoted_cells_over_several_lines_are_detected(
    tmp_path: Path,
) -> None:
    write_export(
        tmp_path,
        'SKU;Name;Cost;Brand\n"SKU-1";"Mug\nwith a handle";4.50;"Acme; Ltd"\nSKU-2;Plate;3;Acme\n'
        "SKU-3;Bowl;2;Acme;extra\n",  # line 5 (the quoted name spans lines 2 and 3)
    )
    async with Engine.open(csv_config(tmp_path)) as engine:
        await engine.sync()

        assert products(engine)["SKU-1"]["title"] == {"en": "Mug\nwith a handle"}
        assert products(engine)["SKU-1"]["attributes"] == {"brand": "Acme; Ltd"}
        assert products(engine)["SKU-2"]["cost_price"] == "3"
        assert [reason for _, reason in dead_letters(engine)] == [
            "line 5: 5 values where the header has 4 columns"
        ]


async def test_a_file_that_did_not_change_is_not_read_again(tmp_path: Path) -> None:
    path = write_export(tmp_path, catalog(5))
    async with Engine.open(csv_config(tmp_path)) as engine:
        await engine.sync()
        # Same size, same modification time, other bytes: only reading the file would see them.
        replace_keeping_stat(path, catalog(5).replace("Product 1,", "Renamed 1,"))

        (report,) = await engine.sync()

        assert report.stream("rows").pages == 0
        assert products(engine)["SKU-0001"]["title"] == {"en": "Product 1"}


async def test_a_touched_file_with_the_same_bytes_is_not_applied_again(tmp_path: Path) -> None:
    path = write_export(tmp_path, catalog(5))
    async with Engine.open(csv_config(tmp_path)) as engine:
        await engine.sync()
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

        (report,) = await engine.sync()
        (again,) = await engine.sync()

        assert report.stream("rows").applied.received == 0  # its hash, not its rows, was read
        assert again.stream("rows").pages == 0  # and the new time is remembered


async def test_a_changed_file_is_read_again_in_pages(tmp_path: Path) -> None:
    path = write_export(tmp_path, catalog(25))
    async with Engine.open(csv_config(tmp_path, page_size=10)) as engine:
        (first,) = await engine.sync()
        path.write_text(catalog(25).replace("Product 7,", "Product seven,"), encoding="utf-8")

        (second,) = await engine.sync()

        assert first.stream("rows").pages == 3
        assert second.stream("rows").applied.changed == 1
        assert products(engine)["SKU-0007"]["title"] == {"en": "Product seven"}


async def test_rows_missing_from_a_new_full_file_become_tombstones(tmp_path: Path) -> None:
    path = write_export(tmp_path, catalog(30))
    async with Engine.open(csv_config(tmp_path)) as engine:
        await engine.sync()
        path.write_text(catalog(29), encoding="utf-8")  # SKU-0030 left the export

        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert report.stream("rows").deleted == 1
        assert len(products(engine)) == 29
        assert tombstoned(engine) == {"SKU-0030"}


async def test_a_bad_row_that_may_be_an_existing_item_holds_back_the_deletions(
    tmp_path: Path,
) -> None:
    path = write_export(tmp_path, catalog(3))
    async with Engine.open(csv_config(tmp_path)) as engine:
        await engine.sync()
        # SKU-0002's cost is unreadable and SKU-0003 left the export
        path.write_text(catalog(2).replace("2.50", "two fifty"), encoding="utf-8")

        (report,) = await engine.sync()

        assert report.stream("rows").rejected == 1
        assert set(products(engine)) == {"SKU-0001", "SKU-0002", "SKU-0003"}

        (reconciled,) = await engine.reconcile()  # a key scan counts the bad row as present

        assert reconciled.ok, reconciled.problems
        assert set(products(engine)) == {"SKU-0001", "SKU-0002"}
        assert tombstoned(engine) == {"SKU-0003"}


async def test_a_mass_disappearance_is_refused_by_the_guard(tmp_path: Path) -> None:
    path = write_export(tmp_path, catalog(100))
    async with Engine.open(csv_config(tmp_path)) as engine:
        await engine.sync()
        path.write_text(catalog(40), encoding="utf-8")  # a truncated export

        (refused,) = await engine.sync()
        (scan_refused,) = await engine.reconcile()

        assert len(products(engine)) == 100
        assert "did not send 60 of 100 product records again" in str(refused.problems)
        assert "would delete 60 of 100 product records" in str(scan_refused.problems)

        (confirmed,) = await engine.sync(full=True, allow_mass_delete=True)

        assert confirmed.ok, confirmed.problems
        assert len(products(engine)) == 40


async def test_a_missing_mapped_column_stops_the_connection_with_the_columns_it_has(
    tmp_path: Path,
) -> None:
    write_export(tmp_path, "SKU,Title\nSKU-1,Mug\n")
    async with Engine.open(csv_config(tmp_path)) as engine:
        (report,) = await engine.sync()

        assert report.problems[0].fatal
        assert "no column 'Name', 'Cost', 'Brand' (its columns: 'SKU', 'Title')" in str(
            report.problems[0]
        )


async def test_an_export_of_categories_feeds_categories(tmp_path: Path) -> None:
    write_export(tmp_path, "Code;Label;Parent\nROOT;All;\nMUGS;Mugs;ROOT\n", "categories.csv")
    columns = {"Code": "key", "Label": "title.en", "Parent": "parent_ref"}
    config = csv_config(tmp_path, path="exports/categories.csv", entity="category", columns=columns)
    async with Engine.open(config) as engine:
        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert engine.get("category", "MUGS").parent_ref == "ROOT"
        assert engine.get("category", "ROOT").parent_ref is None
        assert list(engine.records("product")) == []


async def test_a_file_without_a_header_is_mapped_by_column_number(tmp_path: Path) -> None:
    write_export(tmp_path, "SKU-1\tMug\nSKU-2\tPlate\n")
    columns = {"1": "key", "2": "title.en"}
    config = csv_config(tmp_path, columns=columns, has_header=False, delimiter="tab")
    async with Engine.open(config) as engine:
        await engine.sync()

        assert products(engine)["SKU-1"]["title"] == {"en": "Mug"}
        assert set(products(engine)) == {"SKU-1", "SKU-2"}


async def test_decimals_written_with_a_comma_are_read_when_declared(tmp_path: Path) -> None:
    write_export(tmp_path, "SKU;Name;Cost;Brand\nSKU-1;Mug;4,50;Acme\nSKU-2;Jug;1.234,50;Acme\n")
    async with Engine.open(csv_config(tmp_path, decimal_separator=",")) as engine:
        await engine.sync()

        assert products(engine)["SKU-1"]["cost_price"] == "4.50"
        # a thousands separator is not guessed at: the row is set aside, not misread
        assert [reason for _, reason in dead_letters(engine)] == [
            "line 3: product.cost_price: expected a decimal number, got '1.234.50' (column 'Cost')"
        ]
