"""Stock pushed to Salla through the queued bulk call: applied minutes later, converging with
no echo, whether the next read comes before or after Salla applies it."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from salync_salla.emulator import SallaEmulator
from test_salla_oauth import install

from salync_core import Engine

pytestmark = pytest.mark.anyio
BULK = "POST /admin/v2/products/quantities/bulk"


def simple_sku(salla: SallaEmulator) -> str:
    return next(p["sku"] for p in salla.store.products.values() if p["sku"] and not p["skus"])


def variant_sku(salla: SallaEmulator) -> str:
    return next(p["skus"][0]["sku"] for p in salla.store.products.values() if p["skus"])


async def changes_of(engine: Engine, key: str) -> list[str]:
    return [c.origin async for c in engine.changes(entity="stock_level") if c.key == key]


async def test_a_stock_push_is_acknowledged_once_salla_shows_it_and_reads_back_as_no_change(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    product, variant = simple_sku(salla), variant_sku(salla)
    async with Engine.open(shop_config(push=["stock_level"], queue_wait=300)) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)
        for sku, units in ((product, 77), (variant, 5)):
            await engine.upsert("stock_level", f"{sku}@default", {"sku": sku, "on_hand": units})

        (report,) = await engine.push("shop")

        assert report.pushed == 2, report.problems
        assert salla.stats.by_route[BULK] == 1  # one call carried both lines
        assert salla.quantity_of(product) == 77
        assert salla.quantity_of(variant) == 5
        (again,) = await engine.sync("shop", ["products"], push=False)
        (nothing,) = await engine.push("shop")
        assert again.ok, again.problems
        assert await changes_of(engine, f"{product}@default") == [
            "shop",
            "local",
        ]  # read, edited; no echo
        assert engine.conflicts() == []
        assert nothing.pushed == 0
        assert salla.stats.by_route[BULK] == 1


async def test_a_read_before_salla_applies_the_queued_write_never_reverts_the_mirror(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    salla.store.quantity_delay = 86400.0  # Salla's queue is slow today: applied by hand below
    sku = simple_sku(salla)
    key = f"{sku}@default"
    old = salla.quantity_of(sku)
    random.seed(7)  # the outbox's retry jitter, so the number of inline retries is fixed
    async with Engine.open(shop_config(push=["stock_level"], queue_wait=0)) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)
        await engine.upsert("stock_level", key, {"sku": sku, "on_hand": old + 40})

        (queued,) = await engine.push("shop")
        (stale,) = await engine.sync("shop", ["products"], push=False)

        assert (queued.pushed, queued.push_failed) == (0, 0)  # sent, waiting for Salla
        assert stale.ok, stale.problems
        assert salla.quantity_of(sku) == old  # Salla still shows the old quantity ...
        assert engine.get("stock_level", key).on_hand == old + 40  # ... the mirror keeps ours
        sent = salla.stats.by_route[BULK]

        salla.apply_queued()
        (applied,) = await engine.sync("shop", ["products"], push=False)
        engine.store.conn.execute("UPDATE outbox SET next_attempt_at = 0")  # its retry is due
        (settled,) = await engine.push("shop")

        assert applied.ok, applied.problems
        assert settled.pushed == 1, settled.problems
        assert salla.stats.by_route[BULK] == sent  # acknowledged by reading, not re-sent
        assert salla.quantity_of(sku) == old + 40
        assert await changes_of(engine, key) == ["shop", "local"]
        assert engine.conflicts() == []


async def test_stock_is_pushed_as_a_difference_so_a_sale_made_in_salla_meanwhile_is_kept(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    sku = simple_sku(salla)
    key = f"{sku}@default"
    salla.product_by_sku(sku)["quantity"] = 10
    async with Engine.open(shop_config(push=["stock_level"], queue_wait=300)) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)  # mirror and base: 10

        salla.store.place_order(next(iter(salla.store.customers)), [(sku, 2)])  # Salla: 8
        await engine.upsert("stock_level", key, {"sku": sku, "on_hand": 15})  # host: +5
        (pushed,) = await engine.push("shop")

        assert pushed.pushed == 1, pushed.problems
        assert salla.quantity_of(sku) == 13  # 10 - 2 + 5: the sale is not lost
        (read,) = await engine.sync("shop", ["products"], push=False)
        (nothing,) = await engine.push("shop")
        assert read.ok, read.problems
        assert engine.get("stock_level", key).on_hand == 13
        assert await changes_of(engine, key) == ["shop", "local", "shop"]  # the sale; no echo
        assert nothing.pushed == 0
        assert salla.stats.by_route[BULK] == 1
        assert salla.quantity_of(sku) == 13
        assert engine.conflicts() == []


async def test_a_slow_queue_keeps_the_write_queued_it_is_confirmed_later_never_resent_or_buried(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    salla.store.quantity_delay = 86400.0  # far beyond queue_wait: applied by hand below
    sku = simple_sku(salla)
    key = f"{sku}@default"
    old = salla.quantity_of(sku)
    async with Engine.open(shop_config(push=["stock_level"], queue_wait=0)) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)
        await engine.upsert("stock_level", key, {"sku": sku, "on_hand": old + 7})

        for _ in range(12):  # more runs than the outbox's attempts: none is spent
            (run,) = await engine.push("shop")
            assert (run.pushed, run.push_failed) == (0, 0), run.problems
            engine.store.conn.execute("UPDATE outbox SET next_attempt_at = 0")  # due again

        assert salla.stats.by_route[BULK] == 1  # sent once, then only read back
        assert engine.store.conn.execute("SELECT attempts FROM outbox").fetchall() == [(0,)]
        salla.apply_queued()
        (confirmed,) = await engine.push("shop")

        assert confirmed.pushed == 1, confirmed.problems
        assert salla.stats.by_route[BULK] == 1
        assert salla.quantity_of(sku) == old + 7
        assert engine.store.conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)


async def test_a_sale_read_before_the_push_is_counted_once_on_both_sides(
    salla: SallaEmulator, shop_config: Callable[..., Path]
) -> None:
    """The sync reads first: the sale (10 -> 8) merges into the host's 15 as 13 (a count
    changes by differences, whoever wrote last), and 13 - 8 = +5 is what Salla is sent."""
    sku = simple_sku(salla)
    key = f"{sku}@default"
    salla.product_by_sku(sku)["quantity"] = 10
    async with Engine.open(shop_config(push=["stock_level"], queue_wait=300)) as engine:
        await install(engine, salla)
        await engine.sync("shop", ["products"], push=False)
        await engine.upsert("stock_level", key, {"sku": sku, "on_hand": 15})
        salla.store.place_order(next(iter(salla.store.customers)), [(sku, 2)])

        reports = await engine.sync("shop", ["products"])  # read, then push

        assert all(r.ok for r in reports), [r.problems for r in reports]
        assert engine.get("stock_level", key).on_hand == 13
        assert salla.quantity_of(sku) == 13
        again = await engine.sync("shop", ["products"])
        assert sum(r.pushed for r in again) == 0
        assert salla.stats.by_route[BULK] == 1
        assert engine.conflicts() == []
