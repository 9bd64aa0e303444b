"""Sales Layer API 1.18 end to end: the connectors' emulator on loopback, the engine, a real
SQLite mirror. A connection chooses 1.18 with ``api = "1.18"``."""

from __future__ import annotations

import gzip
import logging
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from salync_saleslayer import mapping118
from salync_saleslayer.emulator118 import SalesLayer118Emulator, page_size, php_form, signature
from salync_saleslayer.import118 import MAX_POLLS, poll_waits
from support import count, live_refs

from salync_core import Engine, Record
from salync_core.store.mirror import apply_records
from salync_core.testing.clock import ScaledClock
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

SECRET = "sl-118-export-secret"
IMPORT_SECRET = "sl-118-import-secret"


def connection(emulator: SalesLayer118Emulator, **options: Any) -> dict[str, Any]:
    return {
        "plugin": "saleslayer",
        "api": "1.18",
        "base_url": emulator.root_url,
        "connector_code": "CN118EXPORT",
        "secret_key": SECRET,
        "import_code": "CN118IMPORT",
        "import_secret": IMPORT_SECRET,
        "pagination": 500,
        "transient_wait": 0.0,
        "import_poll_seconds": 0.0,
        "rate_limits": "none",
        "retry_attempts": 2,
        "variant_options": {"format_size": "size", "format_color": "color"},
        **options,
    }


@pytest.fixture
async def pim() -> AsyncIterator[SalesLayer118Emulator]:
    """600 products: 12 categories, 600 products and about 870 variants: three pages of 500."""
    emulator = SalesLayer118Emulator(products=600, seed=1)
    async with emulator.running():
        yield emulator


def config(tmp_path: Path, emulator: SalesLayer118Emulator, **options: Any) -> Path:
    sync = options.pop("sync", None)
    return write_config(tmp_path, {"pim": connection(emulator, **options)}, sync=sync)


def mirror_dump(engine: Engine) -> str:
    """Every text the mirror holds, to look for a secret in it."""
    conn = engine.store.conn
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(
        repr(row) for table in tables for row in conn.execute(f"SELECT * FROM [{table}]")
    )


# export ---------------------------------------------------------------------------------


async def test_a_full_export_mirrors_the_catalog_without_revealing_the_secret(
    pim: SalesLayer118Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with Engine.open(config(tmp_path, pim)) as engine:
            (report,) = await engine.sync()

            assert report.ok, report.problems
            assert live_refs(engine, "category") == pim.live_refs("catalogue")
            assert live_refs(engine, "product") == pim.live_refs("products")
            assert live_refs(engine, "variant") == pim.live_refs("product_formats")
            assert report.stream("catalog").pages == 3
            product = engine.get("product", "PRD-000001")
            assert set(product.title) == {"en", "es", "fr"}
            source = pim.item("products", "PRD-000001")
            assert source is not None
            assert product.attributes["product_material"] == source["product_material"]
            assert product.attributes["product_image"][0]["ORG"].endswith("/ORG/PRD-000001-1.jpg")
            cat_refs = {pim.tables["catalogue"].items[i]["REF"] for i in source["ID_catalogue"]}
            assert set(product.category_refs) == cat_refs
            variant = engine.get("variant", "PRD-000001-1")
            assert variant.product_ref == "PRD-000001"
            assert set(variant.options) == {"size", "color"}
            secret_free = mirror_dump(engine)
    assert "key256=" in caplog.text  # requests are logged, signed
    assert SECRET not in caplog.text
    assert SECRET not in secret_free


async def test_a_product_listed_once_per_category_is_one_record(
    pim: SalesLayer118Emulator,
) -> None:
    """Without ``group_category_id`` the connector lists a product once per category."""
    now, unique = str(int(datetime.now(UTC).timestamp())), "77"
    params = {
        "code": "CN118EXPORT",
        "time": now,
        "unique": unique,
        "key256": signature("CN118EXPORT", SECRET, now, unique),
        "ver": "1.18",
        "pagination": "100000",
    }
    async with aiohttp.ClientSession() as http, http.get(pim.root_url, params=params) as answer:
        data = await answer.json(content_type=None, loads=_loads_bom)
    rows = data["data"]["products"]
    multi = [p for p in pim.tables["products"].items.values() if len(p["ID_catalogue"]) > 1]
    assert multi
    assert len(rows) == 600 + sum(len(p["ID_catalogue"]) - 1 for p in multi)

    decoded = mapping118.decode(data, mapping118.RefIndex(), None)

    products = [i for (entity, _), i in decoded.items.items() if entity == "product"]
    assert len(products) == 600
    merged = decoded.items["product", multi[0]["REF"]]["fields"]["category_refs"]
    assert len(merged) == len(multi[0]["ID_catalogue"])


def _loads_bom(text: str) -> Any:
    import orjson

    return orjson.loads(text.removeprefix("\ufeff"))


async def test_a_three_page_update_applies_m_rows_and_tombstones_d_rows(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    async with Engine.open(config(tmp_path, pim)) as engine:
        await engine.sync()
        for ref in pim.live_refs("products"):
            pim.modify("products", ref, product_name={"en": f"New {ref}"})
        for ref in sorted(pim.live_refs("product_formats"))[:450]:
            pim.modify("product_formats", ref, format_color="teal")
        gone = sorted(pim.live_refs("products"))[:3]
        for ref in gone:
            pim.delete("products", ref)
        variant = sorted(pim.live_refs("product_formats"))[-1]
        pim.delete("product_formats", variant)
        pim.stats.by_route.clear()

        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert pim.stats.by_route["GET /"] == 3
        assert report.stream("catalog").pages == 3
        assert report.stream("catalog").deleted == 4
        assert live_refs(engine, "product") == pim.live_refs("products")
        assert variant not in live_refs(engine, "variant")
        assert engine.get("product", "PRD-000100").title["en"] == "New PRD-000100"
        assert engine.get("product", "PRD-000100").title["es"]  # other locales kept


async def test_the_next_export_starts_at_the_answers_own_time(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    async with Engine.open(config(tmp_path, pim)) as engine:
        await engine.sync()
        pim.modify("products", "PRD-000002", product_name={"en": "Renamed"})

        (report,) = await engine.sync()

        assert report.stream("catalog").applied.received == 1
        assert engine.get("product", "PRD-000002").title["en"] == "Renamed"
        cursor = engine.store.conn.execute("SELECT cursor FROM cursors").fetchone()[0]
        assert '"next":null' in cursor.replace(" ", "")


async def test_a_stale_time_is_re_signed_on_the_servers_clock(tmp_path: Path) -> None:
    ahead = ScaledClock(start=datetime.now(UTC) + timedelta(hours=1))
    emulator = SalesLayer118Emulator(products=20, seed=2, clock=ahead)
    async with emulator.running(), Engine.open(config(tmp_path, emulator)) as engine:
        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert live_refs(engine, "product") == emulator.live_refs("products")
        assert emulator.stats.by_route["GET /"] == 2  # error 13, then the re-signed request


async def test_an_expired_time_that_persists_is_a_clear_error(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    pim.error_codes.extend([13, 13])
    async with Engine.open(config(tmp_path, pim)) as engine:
        (report,) = await engine.sync()

        assert not report.ok
        (problem,) = report.problems
        assert "error 13 (Date code has expired)" in str(problem)
        assert "clock" in str(problem)
        assert count(engine, "SELECT count(*) FROM records") == 0


async def test_a_wrong_secret_is_refused_with_error_9(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    async with Engine.open(config(tmp_path, pim, secret_key="not-the-secret")) as engine:
        (report,) = await engine.sync()

        (problem,) = report.problems
        assert problem.fatal
        assert "error 9 (Invalid private key)" in str(problem)
        assert "not-the-secret" not in str(problem)
        assert count(engine, "SELECT count(*) FROM records") == 0


async def test_busy_answers_are_retried_and_then_left_for_later_with_the_cursor_kept(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    async with Engine.open(config(tmp_path, pim)) as engine:
        pim.error_codes.append(14)
        (report,) = await engine.sync()
        assert report.ok, report.problems  # one "updating data" answer: retried at once

        pim.modify("products", "PRD-000005", product_name={"en": "Later"})
        before = engine.store.conn.execute("SELECT cursor FROM cursors").fetchone()[0]
        pim.error_codes.extend([10, 11, 14])
        (report,) = await engine.sync()

        assert not report.ok
        assert "error 14 (Updating data. Try later)" in str(report.problems[0])
        assert engine.store.conn.execute("SELECT cursor FROM cursors").fetchone()[0] == before

        (report,) = await engine.sync()

        assert report.ok
        assert engine.get("product", "PRD-000005").title["en"] == "Later"


async def test_a_next_page_on_another_host_is_refused(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    """``next_page`` carries its own authentication: it is followed only on the same host."""
    real = pim.root_url
    pim.root_url = real.replace("127.0.0.1", "localhost")
    async with Engine.open(config(tmp_path, pim, base_url=real)) as engine:
        (report,) = await engine.sync()
    assert not report.ok
    assert "refusing to send credentials" in str(report.problems[0])


# refresh ------------------------------------------------------------------------------


async def test_a_connector_change_refreshes_and_tombstones_what_it_no_longer_sends(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    async with Engine.open(config(tmp_path, pim)) as engine:
        await engine.sync()
        left_out = {"PRD-000007", "PRD-000008"}
        async with aiohttp.ClientSession() as http:
            change = pim.root_url + "/_emulator/connector"
            async with http.post(change, json={"exclude": sorted(left_out)}) as answer:
                assert answer.status == 200

        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert report.stream("catalog").deleted == 2
        assert live_refs(engine, "product") == pim.live_refs("products") - left_out
        assert len(live_refs(engine, "variant")) == len(pim.live_refs("product_formats"))


async def test_a_refresh_that_would_delete_too_much_is_held_back_by_the_guard(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    async with Engine.open(config(tmp_path, pim)) as engine:
        await engine.sync()
        half = set(sorted(pim.live_refs("products"))[:300])
        pim.change_connector(exclude=half)

        (report,) = await engine.sync()

        assert not report.ok
        assert "did not send 300 of 600 product records" in str(report.problems[0])
        assert "--allow-mass-delete" in str(report.problems[0])
        assert len(live_refs(engine, "product")) == 600

        (report,) = await engine.sync(full=True, allow_mass_delete=True)

        assert report.ok, report.problems
        assert live_refs(engine, "product") == pim.live_refs("products") - half


# import -------------------------------------------------------------------------------


def local_products(engine: Engine, refs: list[str]) -> None:
    """Arrange many host-app edits at once (the path ``Engine.upsert`` takes, one transaction)."""
    records = [
        Record("product", ref, {"title": {"en": f"Local {ref}"}}, source_ts="2026-01-01T00:00:00Z")
        for ref in refs
    ]
    with engine.store.write() as txn:
        apply_records(txn, "local", records, engine.resolver, track_base=False)


@pytest.mark.slow
async def test_sixty_thousand_edits_go_in_two_import_calls_followed_to_the_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = SalesLayer118Emulator(products=10, seed=4)
    async with emulator.running():
        path = config(tmp_path, emulator, push=["product"])
        async with Engine.open(path) as engine:
            local_products(engine, [f"NEW-{n:05d}" for n in range(60_000)])

            with caplog.at_level(logging.INFO, logger="salync.saleslayer"):
                (report,) = await engine.push()

            assert report.ok, report.problems
            assert report.pushed == 60_000
            assert [call["items"] for call in emulator.imports] == [50_000, 10_000]
            assert len(emulator.live_refs("products")) == 60_010
            item = emulator.item("products", "NEW-00042")
            assert item is not None
            assert item["product_name"] == {"en": "Local NEW-00042"}
            assert "started 50%" in caplog.text
            assert "end 100%" in caplog.text


async def test_items_the_import_refuses_go_to_dead_letters_and_the_rest_apply(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    path = config(tmp_path, pim, push=["product"])
    async with Engine.open(path) as engine:
        await engine.sync()
        await engine.upsert("product", "PRD-000001", {"title": {"en": "Good"}})
        await engine.upsert("product", "PRD-000002", {"attributes": {"no_such_field": 1}})
        await engine.upsert("product", "PRD-000003", {"category_refs": ["CAT-99999"]})

        (report,) = await engine.push()

        assert report.pushed == 1
        assert report.push_failed == 2
        assert pim.item("products", "PRD-000001")["product_name"]["en"] == "Good"  # type: ignore[index]
        reasons = [r[0] for r in engine.store.conn.execute("SELECT reason FROM dead_letters")]
        assert any('REF "PRD-000002"' in r and "no_such_field" in r for r in reasons)
        assert any('REF "PRD-000003"' in r and "CAT-99999" in r for r in reasons)


async def test_a_chunk_that_failed_half_way_is_sent_again_without_duplicates(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    pim.fail_halfway = 1
    path = config(tmp_path, pim, push=["product"])
    async with Engine.open(path) as engine:
        local_products(engine, [f"NEW-{n:03d}" for n in range(100)])

        (report,) = await engine.push()

        assert report.ok, report.problems
        assert pim.stats.by_status[500] == 1
        assert len(emulator_refs := pim.live_refs("products")) == 700
        assert {f"NEW-{n:03d}" for n in range(100)} <= emulator_refs
        assert len(pim.tables["products"].by_ref) == 700


async def test_deleting_a_record_sends_delete_data(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    path = config(tmp_path, pim, push=["product"])
    async with Engine.open(path) as engine:
        await engine.sync()
        assert await engine.delete("product", "PRD-000004")

        (report,) = await engine.push()

        assert report.pushed == 1
        assert pim.item("products", "PRD-000004") is None


# the emulator's wire formats ----------------------------------------------------------


def test_php_bracket_keys_read_as_nested_tables() -> None:
    pairs = [
        ("input_data[products][0][REF]", "P1"),
        ("input_data[products][0][product_name_en]", "Mug"),
        ("input_data[products][1][REF]", "P2"),
        ("delete_data[catalogue][0][REF]", "C9"),
    ]
    assert php_form(pairs) == {
        "input_data": {"products": [{"REF": "P1", "product_name_en": "Mug"}, {"REF": "P2"}]},
        "delete_data": {"catalogue": [{"REF": "C9"}]},
    }


def test_page_sizes_follow_the_servers_ranges() -> None:
    assert [page_size(p) for p in (None, 100, 1000, 1001, 1500, 5000, 10**6)] == [
        1000, 500, 500, 1000, 1000, 4500, 100_000,
    ]  # fmt: skip


async def test_the_emulator_checks_signatures_and_reads_form_bodies(
    pim: SalesLayer118Emulator,
) -> None:
    now = str(int(pim.clock.time()))
    good = signature("CN118IMPORT", IMPORT_SECRET, now, "5")
    cases = {
        2: {"code": "NOPE", "time": now, "unique": "5", "key256": good},
        3: {"code": "CN118IMPORT", "time": now, "unique": "x", "key256": good},
        4: {"code": "CN118IMPORT", "time": now, "unique": "5", "key256": "abc"},
        9: {"code": "CN118IMPORT", "time": now, "unique": "5", "key256": "0" * 64},
        12: {"code": "CN118IMPORT", "time": "soon", "unique": "5", "key256": good},
        13: {"code": "CN118IMPORT", "time": str(int(now) - 3600), "unique": "5", "key256": good},
    }
    async with aiohttp.ClientSession() as http:
        for code, params in cases.items():
            async with http.post(pim.root_url, data=params) as answer:
                assert (await answer.json(content_type=None, loads=_loads_bom))["error"] == code
        form = {
            "code": "CN118IMPORT",
            "time": now,
            "unique": "5",
            "key256": good,
            "input_data[products][0][REF]": "FORM-1",
            "input_data[products][0][product_name_en]": "From a form",
        }
        async with http.post(pim.root_url, data=form) as answer:
            result = (await answer.json(content_type=None, loads=_loads_bom))["input_response"]
    assert result["result"] == 1
    assert result["new_items"] == 1
    assert pim.item("products", "FORM-1")["product_name"] == {"en": "From a form"}  # type: ignore[index]


def test_salync_emulate_saleslayer_api_1_18_serves_a_connection(tmp_path: Path) -> None:
    """`salync emulate saleslayer --api 1.18` in its own process, then `salync sync`."""
    command = [sys.executable, "-m", "salync_core"]
    emulate = [*command, "emulate", "saleslayer", "--api", "1.18", "--products", "30"]
    with subprocess.Popen(emulate, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), url
            settings = {
                "plugin": "saleslayer",
                "api": "1.18",
                "base_url": url,
                "connector_code": "CN118EXPORT",
                "secret_key": SECRET,
            }
            path = write_config(tmp_path, {"pim": settings})
            synced = subprocess.run(
                [*command, "sync", "--config", str(path), "--no-progress"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            process.terminate()
    assert synced.returncode == 0, synced.stderr
    with sqlite3.connect(tmp_path / "salync.db") as db:
        (products,) = db.execute(
            "SELECT count(*) FROM records WHERE entity = 'product' AND deleted = 0"
        ).fetchone()
    assert products == 30


async def test_an_import_carries_only_the_fields_the_connection_may_receive(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    path = write_config(
        tmp_path,
        {"pim": connection(pim, push=["product"])},
        policies={"product": {"description": {"owner": "pim"}}},
    )
    async with Engine.open(path) as engine:
        await engine.sync()
        await engine.upsert(
            "product", "PRD-000009", {"title": {"en": "Mine"}, "barcode": "4006381333931"}
        )

        (report,) = await engine.push()

        assert report.pushed == 1
        sent = pim.imports[-1]["first"]
        assert sent["REF"] == "PRD-000009"
        assert sent["product_name_en"] == "Mine"
        assert set(sent) == {"REF", "product_name_en", "product_name_es", "product_name_fr"}


async def test_answers_come_gzipped_with_a_byte_order_mark_and_are_read(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    """The emulator answers as the API may (gzip on ``compression=1``, a UTF-8 BOM); the
    connection reads such answers."""
    now, unique = str(int(pim.clock.time())), "3"
    params = {
        "code": "CN118EXPORT",
        "time": now,
        "unique": unique,
        "key256": signature("CN118EXPORT", SECRET, now, unique),
        "compression": "1",
    }
    headers = {"Accept-Encoding": "gzip"}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(pim.root_url, params=params, headers=headers) as answer,
    ):
        assert answer.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await answer.read()).startswith(b"\xef\xbb\xbf{")
    async with Engine.open(config(tmp_path, pim)) as engine:
        (report,) = await engine.sync()
    assert report.ok, report.problems


def test_an_unknown_api_version_is_refused_when_the_configuration_loads(
    tmp_path: Path,
) -> None:
    from salync_core.config import load_config
    from salync_core.errors import ConfigError

    settings = {"plugin": "saleslayer", "api": "1.19", "base_url": "https://api.saleslayer.com"}
    path = write_config(tmp_path, {"pim": settings})
    with pytest.raises(ConfigError, match="api"):
        load_config(path)


def test_the_tracking_url_is_polled_soon_then_less_and_less_often() -> None:
    """A small import ends within a fraction of a second: the first polls come quickly, then
    the waits double up to ``import_poll_seconds``, so a long import is polled once a second."""
    assert poll_waits(1.0)[:7] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert set(poll_waits(0.0)) == {0.0}
    assert len(poll_waits(1.0)) == MAX_POLLS
