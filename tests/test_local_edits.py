"""The host app's side: local edits, the change feed, tombstone purging and conflicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import saleslayer_connection, sl_write

from salync_core import Engine, hookimpl, plugins
from salync_core.conflicts.policies import FieldDecision
from salync_core.errors import ConflictError, DataError
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


async def test_local_edits_appear_in_the_change_feed(sl_config: Callable[..., Path]) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        start = engine.store.conn.execute("SELECT max(seq) FROM changes").fetchone()[0]

        seq = await engine.upsert("product", "PRD-000001", {"barcode": "5012345678900"})
        unchanged = await engine.upsert("product", "PRD-000001", {"barcode": "5012345678900"})
        assert await engine.delete("product", "PRD-000002")
        feed = [change async for change in engine.changes(since=start)]

        assert seq == start + 1
        assert unchanged is None, "the same value again is no change"
        assert [(c.key, c.op, c.origin) for c in feed] == [
            ("PRD-000001", "upsert", "local"),
            ("PRD-000002", "delete", "local"),
        ]
        assert feed[0].fields == {"barcode": "5012345678900"}


async def test_a_following_feed_delivers_changes_as_they_happen(
    sl_config: Callable[..., Path],
) -> None:
    async with Engine.open(sl_config()) as engine:
        received = []
        arrived = anyio.Event()

        async def follow() -> None:
            async for change in engine.changes(follow=True, poll_interval=0.01):
                received.append(change.key)
                arrived.set()
                return

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await anyio.sleep(0.05)
            await engine.upsert("product", "NEW-1", {"barcode": "1"})
            with anyio.fail_after(5):
                await arrived.wait()

        assert received == ["NEW-1"]


async def test_a_bad_local_edit_is_refused_before_anything_is_written(
    sl_config: Callable[..., Path],
) -> None:
    async with Engine.open(sl_config()) as engine:
        with pytest.raises(DataError, match=r"product\.low_stock_threshold"):
            await engine.upsert("product", "X-1", {"barcode": "1", "low_stock_threshold": "ten"})

        assert engine.get("product", "X-1") is None


async def test_tombstones_wait_for_every_consumer_and_pushing_connection(
    tmp_path: Path, saleslayer: SalesLayerEmulator
) -> None:
    connection = saleslayer_connection(saleslayer, push=["product"])
    config = write_config(tmp_path, {"pim": connection})
    async with Engine.open(config) as engine:
        await engine.sync()
        await engine.register_consumer("search-index")
        await engine.delete("product", "PRD-000003")

        assert await engine.purge_tombstones() == 0, "nobody has passed it yet"
        await engine.push()  # the PIM receives the deletion; its push cursor passes it
        assert await engine.purge_tombstones() == 0, "the search index has not"
        last = [c async for c in engine.changes(since=0)][-1]
        await engine.acknowledge("search-index", last.seq)
        assert await engine.purge_tombstones() == 1

        assert saleslayer.product_by_ref("PRD-000003") is None
        assert {r["ref"] for r in engine.records("product", deleted=True)} == {
            r["ref"] for r in engine.records("product")
        }


async def test_manual_fields_open_conflicts_that_a_person_resolves(
    tmp_path: Path, saleslayer: SalesLayerEmulator
) -> None:
    policies = {"product": {"title": "manual"}}
    config = write_config(tmp_path, {"pim": saleslayer_connection(saleslayer)}, policies=policies)
    async with Engine.open(config) as engine:
        await engine.sync()
        await engine.upsert("product", "PRD-000004", {"title": {"en": "Host title"}})
        product = saleslayer.product_by_ref("PRD-000004")
        assert product is not None
        await sl_write(
            saleslayer.base_url,
            "PATCH",
            f"/Products({product['prod_id']})",
            {"prod_title": {"en": "PIM title"}},
        )

        (report,) = await engine.sync()
        (conflict,) = engine.conflicts()

        assert report.totals().conflicts == 1
        assert engine.get("product", "PRD-000004").title["en"] == "Host title", (
            "kept until resolved"
        )
        assert conflict.field == "title"
        assert conflict.candidates["pim"]["en"] == "PIM title"
        with pytest.raises(ConflictError, match="expected a"):
            await engine.resolve_conflict(conflict.id, value="not a map")
        with pytest.raises(ConflictError, match="not a candidate"):
            await engine.resolve_conflict(conflict.id, take="erp")

        resolved = await engine.resolve_conflict(conflict.id, take="pim")

        assert resolved.status == "resolved"
        assert engine.get("product", "PRD-000004").title["en"] == "PIM title"
        assert engine.conflicts() == []
        explained = {f["field"]: f for f in engine.explain("product", "PRD-000004")["fields"]}
        assert explained["title"]["decided_by"] == "manual:resolved"


class PimKnowsStatusBest:
    """A plugin that decides one field its platform knows better than any policy."""

    @hookimpl
    def decide_field(
        self, entity: str, field: str, origin: str, platform: str, current: Any, incoming: Any
    ) -> FieldDecision | None:
        if entity == "product" and field == "status" and platform == "saleslayer":
            return FieldDecision.ACCEPT
        return None


@pytest.fixture
def pim_knows_status_best() -> Iterator[None]:
    plugins.register_module(PimKnowsStatusBest(), "test-pim-knows-status")
    try:
        yield
    finally:
        plugins.unregister("test-pim-knows-status")


@pytest.mark.usefixtures("pim_knows_status_best")
async def test_a_plugin_hook_decides_a_field_before_the_policy(
    tmp_path: Path, saleslayer: SalesLayerEmulator
) -> None:
    config = write_config(
        tmp_path, {"pim": saleslayer_connection(saleslayer)}, policies={"default": "manual"}
    )
    async with Engine.open(config) as engine:
        await engine.sync()
        local = {"status": "draft", "description": {"en": "Host text"}}
        await engine.upsert("product", "PRD-000005", local)
        product = saleslayer.product_by_ref("PRD-000005")
        assert product is not None
        body = {"prod_stat": "I", "prod_description": {"en": "PIM text"}}
        await sl_write(saleslayer.base_url, "PATCH", f"/Products({product['prod_id']})", body)

        await engine.sync()

        assert engine.get("product", "PRD-000005").status == "inactive", "the hook's call"
        assert [c.field for c in engine.conflicts()] == ["description"], "manual for the rest"
