"""Salync end to end: the emulator on loopback, the engine, a real SQLite mirror.

Each test is one promise the Salync plugin keeps (the acceptance criteria of "tests against the
emulator"). Platform time starts at a fixed noon; the rate-limit tests run it 60 times faster
(a minute lasts a second) so plans, bursts and days can be tested in seconds.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from salync_inventory.emulator import SalyncEmulator
from salync_inventory.emulator.models import Product

from salync_core import Engine
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

KEY = "sk_live_4f7c2a9e1b8d6c3f"
SECOND_KEY = "sk_live_9a1e5d3c7b2f8e4a"
NOON = datetime(2026, 11, 23, 12, tzinfo=UTC)
PUSH = ["product", "stock_adjustment", "stock_level"]


# helpers ---------------------------------------------------------------------------------


def connection(base_url: str, **options: Any) -> dict[str, Any]:
    """A ``[connections.inv]`` table for a Salync emulator."""
    return {"plugin": "salync", "base_url": base_url, "api_key": KEY, **options}


async def call(emulator: SalyncEmulator, method: str, path: str, body: Any = None) -> Any:
    """Change the workspace through Salync's API, as a person using Salync would."""
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, emulator.base_url + path, json=body) as response,
    ):
        assert response.status < 300, await response.text()
        return await response.json()


async def admin(emulator: SalyncEmulator, route: str, body: Any) -> None:
    """The emulator's own controls (Settings screens, the platform's clock)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emulator.root_url}/_emulator/{route}", json=body) as response,
    ):
        assert response.status == 200, await response.text()


def stocked(emulator: SalyncEmulator, count: int = 1) -> list[Product]:
    """Products without variants holding at least 10 units at ``loc_main``."""
    ws = emulator.workspace
    found = [
        p for p in ws.products.values() if not p.has_variants and ws.on_hand(p.id, "loc_main") >= 10
    ]
    return found[:count]


def expected_counts(emulator: SalyncEmulator) -> dict[str, int]:
    ws = emulator.workspace
    return {
        "channel": len(ws.channels),
        "listing": len(ws.listings),
        "product": len(ws.products),
        "purchase_order": len(ws.purchase_orders),
        "stock_adjustment": len(ws.adjustments),
        "stock_level": len(ws.levels),
        "supplier": len(ws.suppliers),
        "variant": len(ws.variants),
    }


def mirror_counts(engine: Engine) -> dict[str, int]:
    sql = "SELECT entity, count(*) FROM records WHERE deleted = 0 GROUP BY entity"
    return dict(engine.store.conn.execute(sql).fetchall())


def one(engine: Engine, sql: str, *params: Any) -> Any:
    return engine.store.conn.execute(sql, params).fetchone()[0]


def stored_cursor(engine: Engine, stream: str) -> Any:
    raw = one(engine, "SELECT cursor FROM cursors WHERE stream = ?", stream)
    return orjson.loads(raw)


REPEATED_CHANGES = (
    "SELECT count(*) FROM (SELECT entity, key FROM changes"
    " GROUP BY entity, key HAVING count(*) > 1)"
)


def mirror_files(directory: Path) -> list[str]:
    """The mirror's files (the database and its WAL) as text, to search for secrets."""
    return [f.read_bytes().decode("latin-1") for f in directory.glob("salync.db*")]


@pytest.fixture
async def emulator() -> AsyncIterator[SalyncEmulator]:
    """30 seeded products on the Pro plan, its limits off (the limit tests make their own)."""
    salync = SalyncEmulator(
        products=30, seed=11, plan="pro", api_keys=(KEY,), start=NOON, rate_limit=False
    )
    async with salync.running():
        yield salync


@pytest.fixture
def config(tmp_path: Path, emulator: SalyncEmulator) -> Callable[..., Path]:
    """Write a salync.toml with one Salync connection called ``inv``."""

    def make(**options: Any) -> Path:
        return write_config(tmp_path, {"inv": connection(emulator.base_url, plan="pro", **options)})

    return make


# reading ---------------------------------------------------------------------------------


async def test_a_full_sync_mirrors_every_stream(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    ws = emulator.workspace
    async with Engine.open(config()) as engine:
        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert mirror_counts(engine) == expected_counts(emulator)
        shirt = next(p for p in ws.products.values() if p.has_variants)
        product = engine.get("product", shirt.sku)
        assert product.title == {"en": shirt.name}
        assert product.sell_price == shirt.sell_price
        assert product.supplier_ref == shirt.supplier_id
        assert product.attributes["salync_has_variants"] is True
        external = "SELECT external_id FROM id_map WHERE entity = 'product' AND key = ?"
        assert one(engine, external, shirt.sku) == shirt.id
        variant = ws.variants[shirt.variant_ids[0]]
        mirrored = engine.get("variant", variant.sku)
        assert (mirrored.product_ref, mirrored.options) == (shirt.sku, variant.option_values)
        (item_id, place), level = next(iter(ws.levels.items()))
        assert engine.get("stock_level", f"{ws.sku_of(item_id)}@{place}").on_hand == level.on_hand
        order = next(po for po in ws.purchase_orders.values() if po.status == "received")
        lines = engine.get("purchase_order", order.id).lines
        assert [(x.sku, x.quantity) for x in lines] == [
            (x.sku, x.quantity) for x in order.line_items
        ]
        (channel_id, listed), listing = next(iter(ws.listings.items()))
        assert engine.get("listing", f"{channel_id}:{ws.sku_of(listed)}").state == listing.state
        assert not any(stored_cursor(engine, s.stream)["pass_start"] for s in report.streams)


async def test_an_incremental_sync_reads_only_what_changed(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    renamed, sold = stocked(emulator, 2)
    async with Engine.open(config()) as engine:
        await engine.sync()
        (before,) = engine.store.conn.execute("SELECT max(seq) FROM changes").fetchone()
        await call(emulator, "PATCH", f"/products/{renamed.id}", {"name": "Renamed"})
        sale = {"sku": sold.sku, "type": "sale", "quantity": 2}
        made = await call(emulator, "POST", "/stock/adjustments", sale)

        (report,) = await engine.sync()

        assert report.ok, report.problems
        received = {s.stream: s.applied.received for s in report.streams}
        assert received == {
            "products": 2,
            "stock": 1,
            "stock_adjustments": 1,
            "suppliers": 0,
            "purchase_orders": 0,
            "channels": 0,
            "listings": 0,
        }
        assert report.requests == 6 + 1 + len(emulator.workspace.channels)  # + one per channel
        changed = engine.store.conn.execute(
            "SELECT entity, count(*) FROM changes WHERE seq > ? GROUP BY entity", (before,)
        ).fetchall()
        # The sale moved the sold product's updated_at too, but a timestamp alone is no change.
        assert dict(changed) == {"product": 1, "stock_level": 1, "stock_adjustment": 1}
        assert engine.get("product", renamed.sku).title == {"en": "Renamed"}
        level = engine.get("stock_level", f"{sold.sku}@loc_main")
        assert level.on_hand == emulator.stock_on_hand(sold.sku)
        adjustment = engine.get("stock_adjustment", made["adjustment"]["id"])
        assert (adjustment.type, adjustment.quantity, adjustment.from_location) == (
            "sale",
            2,
            "loc_main",
        )


async def test_archiving_a_product_tombstones_it_and_its_variants(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    shirt = next(p for p in emulator.workspace.products.values() if p.has_variants)
    variant_skus = {emulator.workspace.variants[v].sku for v in shirt.variant_ids}
    async with Engine.open(config()) as engine:
        await engine.sync()
        await call(emulator, "POST", f"/products/{shirt.id}/archive")

        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert report.stream("products").deleted == 1 + len(variant_skus)
        assert engine.get("product", shirt.sku) is None
        assert shirt.sku in {r["ref"] for r in engine.records("product", deleted=True)}
        assert not variant_skus & {r["ref"] for r in engine.records("variant")}
        tombstone = "SELECT origin FROM tombstones WHERE entity = 'product' AND key = ?"
        assert one(engine, tombstone, shirt.sku) == "inv"


async def test_bad_items_go_to_dead_letters_and_the_page_goes_on(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    ws = emulator.workspace
    skuless, odd = stocked(emulator, 2)
    shirt = next(p for p in ws.products.values() if p.has_variants)
    skuless.sku = ""  # the emulator now serves three items no client could use
    odd.low_stock_threshold = "many"
    ws.variants[shirt.variant_ids[0]].sku = None
    async with Engine.open(config()) as engine:
        (report,) = await engine.sync(streams=["products"])

        assert report.stream("products").rejected == 3
        reasons = [r for (r,) in engine.store.conn.execute("SELECT reason FROM dead_letters")]
        assert any("without its sku" in r for r in reasons)
        assert any("low_stock_threshold" in r for r in reasons)
        assert any(r.startswith(f"variant of product {shirt.sku}") for r in reasons)
        counts = mirror_counts(engine)
        assert counts["product"] == len(ws.products) - 2
        assert counts["variant"] == len(ws.variants) - 1
        assert engine.get("product", shirt.sku) is not None


# rate limits and quotas ------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "products", "burst"), [("growth", 300, 20), ("pro", 2500, 200)])
async def test_pacing_to_the_plan_never_meets_a_429(
    tmp_path: Path, plan: str, products: int, burst: int
) -> None:
    emulator = SalyncEmulator(
        products=products, seed=5, plan=plan, api_keys=(KEY,), time_scale=60, start=NOON
    )
    async with emulator.running() as base_url:
        config = write_config(tmp_path, {"inv": connection(base_url, plan=plan, time_scale=60)})
        async with Engine.open(config) as engine:
            started = emulator.clock.time()
            (report,) = await engine.sync()
            ended = emulator.clock.time()

    assert report.ok, report.problems
    assert emulator.stats.requests > burst  # more than one minute's burst allows
    assert 429 not in emulator.stats.by_status
    assert ended >= (started // 60 + 1) * 60  # it waited for the next (platform) minute instead


PACED_SCALE = 12
"""A minute lasts 5 s: slow enough that this small sync's 20 requests fit in the 10 s left of
its first minute, so the burst limit, not the engine's speed, decides when the sync ends."""


async def test_the_burst_headers_let_a_paced_sync_use_the_rest_of_the_current_minute(
    tmp_path: Path,
) -> None:
    """The emulator counts its burst in fixed windows aligned on the minute and says so in its
    ``X-RateLimit-Burst-*`` headers; a sync starting 50 s into a minute sends a full burst in
    the 10 s left and the next one as soon as the minute turns, where a sliding window of 20
    a minute would have to wait a whole minute after each burst."""
    burst = 20
    emulator = SalyncEmulator(
        products=300, seed=5, plan="growth", api_keys=(KEY,), time_scale=PACED_SCALE, start=NOON
    )
    async with emulator.running() as base_url:
        options = connection(base_url, plan="growth", time_scale=PACED_SCALE)
        config = write_config(tmp_path, {"inv": options})
        async with Engine.open(config) as engine:
            emulator.clock.advance((50 - emulator.clock.time()) % 60)  # 10 s before a minute
            started = emulator.clock.time()
            (report,) = await engine.sync()
            platform_seconds = emulator.clock.time() - started

    assert report.ok, report.problems
    assert 429 not in emulator.stats.by_status
    windows = math.ceil(emulator.stats.requests / burst)
    assert windows >= 2
    # a sliding window sends each burst a whole minute after the one before; the fixed window
    # sends the second as soon as the minute turns, 10 s (and the pacer's margin) after the start
    sliding_minimum = (windows - 1) * 60.0
    assert platform_seconds < sliding_minimum


async def test_a_forced_429_is_waited_out_for_its_retry_after(tmp_path: Path) -> None:
    emulator = SalyncEmulator(products=30, seed=11, api_keys=(KEY,), time_scale=60, start=NOON)
    emulator.faults.update({"rate_limited": 2, "retry_after": "30"})  # 30 s = 0.5 s scaled
    async with emulator.running() as base_url:
        config = write_config(tmp_path, {"inv": connection(base_url, time_scale=60)})
        async with Engine.open(config) as engine:
            started = time.monotonic()
            (report,) = await engine.sync()
            elapsed = time.monotonic() - started

            assert report.ok, report.problems
            assert emulator.stats.by_status[429] == 2
            assert elapsed >= 2 * 0.5 - 0.01  # two waits of 30 platform seconds
            assert one(engine, "SELECT sum(throttled) FROM ledger") == 2
            assert mirror_counts(engine) == expected_counts(emulator)


async def test_a_spent_quota_pauses_at_a_committed_page_and_resumes_the_next_day(
    tmp_path: Path,
) -> None:
    emulator = SalyncEmulator(products=250, seed=11, api_keys=(KEY,), time_scale=60, start=NOON)
    async with emulator.running() as base_url:
        await admin(emulator, "config", {"daily_limit": 2})  # a custom plan: 2 requests a day
        config = write_config(tmp_path, {"inv": connection(base_url, time_scale=60)})
        async with Engine.open(config) as engine:
            (today,) = await engine.sync()

            assert today.status == "paused"
            assert today.problems == []
            assert today.paused_until is not None
            assert today.paused_until.startswith("2026-11-24T00:00")
            assert mirror_counts(engine)["product"] == 200  # two pages, committed
            products = stored_cursor(engine, "products")
            assert products["pass_start"] is not None  # the pass goes on from here
            assert products["next"] is not None

        await admin(emulator, "clock", {"advance_seconds": 86_400})
        await admin(emulator, "config", {"daily_limit": None})  # back to Growth's 500
        async with Engine.open(config) as engine:  # the next day's run
            (next_day,) = await engine.sync()

            assert next_day.status == "ok", next_day.problems
            assert mirror_counts(engine) == expected_counts(emulator)
            assert one(engine, REPEATED_CHANGES) == 0
            assert one(engine, "SELECT count(*) FROM changes") == sum(
                mirror_counts(engine).values()
            )
    assert emulator.stats.by_route["GET /v1/products"] == 3  # no page read twice
    assert 429 not in emulator.stats.by_status  # it stopped before the wall


INV_CURSORS = "SELECT * FROM cursors WHERE connection = 'inv' ORDER BY stream"


async def test_a_revoked_key_is_one_clear_error_naming_the_connection(
    emulator: SalyncEmulator, tmp_path: Path
) -> None:
    emulator.keys.add(SECOND_KEY)
    url = emulator.base_url
    config = write_config(
        tmp_path,
        {
            "inv": connection(url, plan="pro"),
            "backup": connection(url, api_key=SECOND_KEY, plan="pro"),
        },
    )
    async with Engine.open(config) as engine:
        await engine.sync()
        mirrored = mirror_counts(engine)
        cursors = engine.store.conn.execute(INV_CURSORS).fetchall()
        await admin(emulator, "keys", {"revoke": KEY})

        inv, backup = await engine.sync()

        assert inv.status == "failed"
        (problem,) = inv.problems
        message = str(problem)
        assert message.startswith("inv")
        assert "401: api_key_revoked - This API key has been revoked" in message
        assert "Traceback" not in message
        assert KEY not in message
        assert backup.ok, backup.problems
        assert mirror_counts(engine) == mirrored
        assert engine.store.conn.execute(INV_CURSORS).fetchall() == cursors


async def test_the_api_key_never_leaks_into_logs_output_or_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = SalyncEmulator(
        products=30, seed=11, api_keys=(KEY, SECOND_KEY), start=NOON, rate_limit=False
    )
    emulator.keys.revoke(SECOND_KEY)  # so failures are logged and reported too
    emulator.faults.update({"rate_limited": 1, "server_errors": 1})
    env = {**os.environ, "SALYNC_TEST_KEY": KEY, "SALYNC_TEST_OLD_KEY": SECOND_KEY}
    for name in ("SALYNC_TEST_KEY", "SALYNC_TEST_OLD_KEY"):
        monkeypatch.setenv(name, env[name])
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="salync")
    async with emulator.running() as url:
        config = write_config(
            tmp_path,
            {
                "inv": connection(url, plan="pro", api_key="env:SALYNC_TEST_KEY"),
                "old": connection(url, plan="pro", api_key="env:SALYNC_TEST_OLD_KEY"),
            },
        )
        async with Engine.open(config) as engine:
            reports = await engine.sync()
        salync = [sys.executable, "-m", "salync_core"]
        synced = await anyio.run_process(
            [*salync, "-vv", "sync", "--config", str(config), "--no-progress"], env=env, check=False
        )
        status = await anyio.run_process(
            [*salync, "status", "--config", str(config), "--json"], env=env, check=False
        )

    assert [r.status for r in reports] == ["ok", "failed"]
    assert synced.returncode == 1  # "old" failed, as it should
    assert "-> 429" in caplog.text  # debug logging was on
    assert b"DEBUG" in synced.stderr
    assert orjson.loads(status.stdout)["connections"]["old"]["last_run"]["status"] == "failed"
    seen = [
        caplog.text,
        *(str(problem) for report in reports for problem in report.problems),
        synced.stdout.decode(),
        synced.stderr.decode(),
        status.stdout.decode(),
        status.stderr.decode(),
        *mirror_files(tmp_path),
    ]
    for secret in (KEY, SECOND_KEY):
        assert not [text for text in seen if secret in text]


# pushing ---------------------------------------------------------------------------------


async def test_local_product_edits_and_new_products_reach_salync(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    ws = emulator.workspace
    (lamp,) = stocked(emulator)
    async with Engine.open(config(push=PUSH)) as engine:
        await engine.sync()
        await engine.upsert(
            "product", lamp.sku, {"title": {"en": "Brass Lamp"}, "sell_price": "59.00"}
        )
        await engine.upsert("product", "GIFT-0001", {"title": {"en": "Gift card"}})

        (report,) = await engine.push()

        assert (report.pushed, report.push_failed) == (2, 0), report.problems
        assert (lamp.name, str(lamp.sell_price)) == ("Brass Lamp", "59.00")
        gift = ws.products[ws.sku_index["GIFT-0001"]]
        assert gift.name == "Gift card"
        external = "SELECT external_id FROM id_map WHERE connection = 'inv' AND key = 'GIFT-0001'"
        assert one(engine, external) == gift.id
        assert emulator.applied_writes == {"PATCH /v1/products/{id}": 1, "POST /v1/products": 1}

        _, echo = await engine.sync()  # reading our own writes back changes nothing to push

        assert echo.pushed == 0
        assert sum(emulator.applied_writes.values()) == 2
        assert engine.get("product", lamp.sku).title == {"en": "Brass Lamp"}


async def test_a_local_stock_adjustment_applies_once_even_when_its_answer_is_lost(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    (mug,) = stocked(emulator)
    before = emulator.stock_on_hand(mug.sku)
    async with Engine.open(config(push=PUSH)) as engine:
        await engine.sync()
        sale = {"sku": mug.sku, "type": "sale", "quantity": 2, "reference": "till 3"}
        await engine.upsert("stock_adjustment", "till-3-sale-17", sale)
        emulator.faults.update({"truncate": 1, "path": "/stock/adjustments"})

        (report,) = await engine.push()

        assert report.pushed == 1, report.problems
        assert emulator.stats.by_route["POST /v1/stock/adjustments"] == 2  # sent, then retried
        assert emulator.applied_writes["POST /v1/stock/adjustments"] == 1  # applied once
        assert emulator.stock_on_hand(mug.sku) == before - 2
        outbox = "SELECT status, attempts FROM outbox WHERE key = 'till-3-sale-17'"
        assert engine.store.conn.execute(outbox).fetchone() == ("acked", 2)
        assert all(r.ok for r in await engine.sync())  # reading it back breaks nothing
        assert emulator.applied_writes["POST /v1/stock/adjustments"] == 1
        mine = "SELECT count(*) FROM records WHERE entity = 'stock_adjustment' AND fields LIKE ?"
        assert one(engine, mine, '%"till 3"%') == 1, "read back as the same record, not a copy"
        assert engine.get("stock_adjustment", "till-3-sale-17").reference == "till 3"


async def test_a_sku_renamed_in_salync_is_a_new_reference_and_the_old_one_a_tombstone(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    (lamp,) = stocked(emulator)
    old_sku = lamp.sku
    async with Engine.open(config()) as engine:
        await engine.sync()
        await call(emulator, "PATCH", f"/products/{lamp.id}", {"sku": "LAMP-RENAMED"})

        reports = await engine.sync()

        assert all(r.ok for r in reports), [r.problems for r in reports]
        assert engine.get("product", old_sku) is None
        assert engine.get("product", "LAMP-RENAMED") is not None
        tombstone = "SELECT origin FROM tombstones WHERE entity = 'product' AND key = ?"
        assert one(engine, tombstone, old_sku) == "inv"


@pytest.mark.parametrize(("delta", "direction"), [(5, "increase"), (-3, "decrease")])
async def test_a_stock_level_change_becomes_one_manual_adjustment(
    emulator: SalyncEmulator, config: Callable[..., Path], delta: int, direction: str
) -> None:
    (candle,) = stocked(emulator)
    before = emulator.stock_on_hand(candle.sku)
    async with Engine.open(config(push=PUSH)) as engine:
        await engine.sync()
        await engine.upsert("stock_level", f"{candle.sku}@loc_main", {"on_hand": before + delta})

        (report,) = await engine.push()

        assert report.pushed == 1, report.problems
        assert emulator.stock_on_hand(candle.sku) == before + delta
        made = list(emulator.workspace.adjustments.values())[-1]
        assert (made.sku, made.type, made.quantity, made.direction, made.location_id) == (
            candle.sku,
            "manual",
            abs(delta),
            direction,
            "loc_main",
        )

        _, echo = await engine.sync()

        assert echo.pushed == 0
        assert emulator.applied_writes["POST /v1/stock/adjustments"] == 1
        assert engine.get("stock_level", f"{candle.sku}@loc_main").on_hand == before + delta


async def test_a_refused_write_goes_to_dead_letters_with_salyncs_message(
    emulator: SalyncEmulator, config: Callable[..., Path]
) -> None:
    bowl, pot = stocked(emulator, 2)
    before = emulator.stock_on_hand(bowl.sku)
    async with Engine.open(config(push=PUSH)) as engine:
        await engine.sync()
        await engine.upsert("stock_level", f"{bowl.sku}@loc_main", {"on_hand": -3})
        await engine.upsert("product", pot.sku, {"title": {"en": "Terracotta Pot"}})

        (report,) = await engine.push()

        assert (report.pushed, report.push_failed) == (1, 1)
        stream, reason = engine.store.conn.execute(
            "SELECT stream, reason FROM dead_letters"
        ).fetchone()
        assert stream == "push:stock_level"
        assert f"422: insufficient_stock - Not enough stock of {bowl.sku} at loc_main" in reason
        assert emulator.stock_on_hand(bowl.sku) == before
        assert pot.name == "Terracotta Pot"  # the rest went on
