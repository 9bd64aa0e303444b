"""A record a connection delivers again exactly as it last held it costs no write, unless a
pass that may end in a sweep needs it stamped as seen; a stream that declared no sweeps cannot
tombstone by one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import sl_write

from salync_core import Engine
from salync_core.conflicts.policies import LastWriterWins
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver
from salync_core.engine.pipeline import MappedPage, PageTarget, write_page
from salync_core.engine.sweep import DeletionGuard
from salync_core.platform import Page, Record, Sweep
from salync_core.store import Store

pytestmark = pytest.mark.anyio


def id_map_rows(engine: Engine, entity: str, keys: list[str]) -> list[tuple[Any, ...]]:
    return engine.store.conn.execute(
        "SELECT key, external_id, base, diverged, seen_at FROM id_map"
        " WHERE entity = ? AND key IN (SELECT value FROM json_each(?)) ORDER BY key",
        (entity, json.dumps(keys)),
    ).fetchall()


async def test_variants_read_again_with_their_changed_product_are_not_rewritten(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        product_ref, variant_keys = next(
            (ref, keys) for ref, keys in _variants_by_product(engine).items() if len(keys) >= 2
        )
        product_id = engine.store.conn.execute(
            "SELECT external_id FROM id_map WHERE entity = 'product' AND key = ?", (product_ref,)
        ).fetchone()[0]
        before = id_map_rows(engine, "variant", variant_keys)
        path = f"/Products({product_id})"
        assert await sl_write(saleslayer.base_url, "PATCH", path, {"prod_title": "Renamed"}) == 204

        (report,) = await engine.sync()

        assert report.ok, report.problems
        assert report.stream("products").applied.changed == 1
        assert report.stream("products").applied.unchanged >= len(variant_keys)
        assert id_map_rows(engine, "variant", variant_keys) == before  # not even seen_at


def _variants_by_product(engine: Engine) -> dict[str, list[str]]:
    rows = engine.store.conn.execute(
        "SELECT json_extract(fields, '$.product_ref'), key FROM records WHERE entity = 'variant'"
    )
    found: dict[str, list[str]] = {}
    for product, key in rows:
        found.setdefault(product, []).append(key)
    return found


def deliver(
    store: Store, target: PageTarget, records: list[Record], sweep: Sweep | None = None
) -> MappedPage:
    resolver = Resolver(PolicySet(default=LastWriterWins()))
    mapped = MappedPage(Page([], {}, "page", sweep=sweep), records, [])
    write_page(store, target, resolver, mapped, {})
    return mapped


def target(sweeps: bool) -> PageTarget:
    return PageTarget("pim", "rows", 1, False, DeletionGuard(minimum=100), sweeps)


def live(store: Store) -> list[str]:
    rows = store.conn.execute("SELECT key FROM records WHERE deleted = 0 ORDER BY key")
    return [key for (key,) in rows]


@pytest.mark.parametrize("sweeps", [True, False])
def test_a_record_delivered_unchanged_is_stamped_only_where_a_sweep_may_follow(
    tmp_path: Path, sweeps: bool
) -> None:
    store = Store(tmp_path / "salync.db")
    record = Record("product", "P-1", {"title": {"en": "Shoe"}}, external_id="1")
    deliver(store, target(sweeps), [record])
    store.conn.execute("UPDATE id_map SET seen_at = 'before'")

    deliver(store, target(sweeps), [record])

    (seen_at,) = store.conn.execute("SELECT seen_at FROM id_map").fetchone()
    assert (seen_at != "before") is sweeps


THREE = [Record("product", f"P-{i}", {"title": {"en": f"{i}"}}) for i in range(3)]


def three_products_then_one_with_a_sweep(tmp_path: Path, sweeps: bool) -> tuple[Store, MappedPage]:
    """A pass delivers P-0..P-2; a later pass delivers only P-0 and ends in a sweep."""
    store = Store(tmp_path / "salync.db")
    deliver(store, target(sweeps), THREE)
    store.conn.execute("UPDATE id_map SET seen_at = '0000'")  # before the sweep's pass began
    return store, deliver(store, target(sweeps), THREE[:1], Sweep(("product",), "1000"))


def test_a_sweep_from_a_stream_that_declared_none_deletes_nothing_and_says_why(
    tmp_path: Path,
) -> None:
    store, mapped = three_products_then_one_with_a_sweep(tmp_path, sweeps=False)

    assert live(store) == ["P-0", "P-1", "P-2"]
    assert len(mapped.refused) == 1
    assert "declares no sweeps" in mapped.refused[0]


def test_the_same_sweep_from_a_sweeping_stream_tombstones_what_it_did_not_send(
    tmp_path: Path,
) -> None:
    store, mapped = three_products_then_one_with_a_sweep(tmp_path, sweeps=True)

    assert live(store) == ["P-0"]
    assert mapped.refused == []
