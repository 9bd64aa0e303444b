"""Ids are data from a platform's pages, and data can be hostile: a product whose id is
``../../../admin`` never makes a request leave the API's base path, its push is refused with a
clear reason, and everything else syncs and pushes as usual."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import pytest
from aiohttp import web
from salync_inventory import writing as salync_writing
from salync_inventory.emulator import SalyncEmulator
from salync_inventory.emulator.models import Channel
from salync_saleslayer.emulator import SalesLayerEmulator
from salync_salla import writing as salla_writing
from support import INV_KEY, SL_KEY

from salync_core import Engine
from salync_core.http import HttpClient
from salync_core.platform import ConnectionContext, Credentials, Outbound, PushResult
from salync_core.testing import Emulator
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


def record_paths(emulator: Emulator) -> list[str]:
    """Every path the emulator is asked for (as the server sees it, dot segments resolved)."""
    paths: list[str] = []

    def hook(request: web.Request, response: web.StreamResponse) -> None:
        paths.append(f"{request.method} {request.path}")

    emulator.after_answer.append(hook)
    return paths


@pytest.mark.parametrize(
    "hostile", ["../../../admin", "..%2F..%2F..%2Fadmin", "%2e%2e", "1?x=1#", "1)/../../("]
)
async def test_a_hostile_product_id_never_leaves_the_base_path(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path], hostile: str
) -> None:
    saleslayer.corrupt("Products", 5, "prod_id", hostile)
    paths = record_paths(saleslayer)
    async with Engine.open(sl_config(push=["product"])) as engine:
        (synced,) = await engine.sync(push=False)
        assert synced.ok, [p.message[-300:] for p in synced.problems]
        assert engine.get("product", "PRD-000005") is not None
        await engine.upsert("product", "PRD-000005", {"title": {"en": "Hostile"}})
        await engine.upsert("product", "PRD-000006", {"title": {"en": "Friendly"}})

        (pushed,) = await engine.push()

        outside = [p for p in paths if not p.split(" ", 1)[1].startswith("/rest/Catalog/")]
        assert outside == []
        assert [p for p in paths if p.startswith("PATCH")] == ["PATCH /rest/Catalog/Products(6)"]
        assert pushed.pushed == 1
        assert pushed.push_failed == 1
        reason = engine.store.conn.execute(
            "SELECT reason FROM dead_letters WHERE stream LIKE 'push%'"
        ).fetchone()
        assert reason is not None
        assert "not a Sales Layer id" in reason[0]
        assert saleslayer.product_by_ref("PRD-000006")["prod_title"]["en"] == "Friendly"


async def test_a_hostile_salync_channel_id_is_dead_lettered_and_other_channels_sync(
    tmp_path: Path,
) -> None:
    salync = SalyncEmulator(products=30, seed=11, plan="pro", api_keys=(INV_KEY,), rate_limit=False)
    ws = salync.workspace
    hostile = Channel("../../../admin", "shopify", "Evil", "connected", ws.now_ms())
    ws.channels[hostile.id] = hostile
    async with salync.running():
        paths = record_paths(salync)
        connection = {
            "plugin": "salync",
            "base_url": salync.base_url,
            "api_key": INV_KEY,
            "plan": "pro",
            "streams": ["channels", "listings"],
        }
        async with Engine.open(write_config(tmp_path, {"inv": connection})) as engine:
            (report,) = await engine.sync()

            assert [str(p) for p in report.problems] == [
                "inv/listings (page channels): 1 item(s) rejected to dead letters"
            ]
            (reason,) = engine.store.conn.execute("SELECT reason FROM dead_letters").fetchone()
            assert "channel id '../../../admin' cannot be used in a URL path" in reason
            mirrored = {listing["channel_ref"] for listing in engine.records("listing")}
            assert mirrored == {channel_id for channel_id, _ in ws.listings}

    assert [p for p in paths if not p.split(" ", 1)[1].startswith("/v1/")] == []


@pytest.mark.parametrize(
    ("writer", "entity"),
    [(salla_writing.push_product, "product"), (salync_writing.push_one, "product")],
)
@pytest.mark.parametrize("op", ["upsert", "delete"])
async def test_every_plugin_refuses_a_hostile_id_in_a_write_without_sending_it(
    writer: Callable[..., Awaitable[PushResult]], entity: str, op: Literal["upsert", "delete"]
) -> None:
    emulator = SalesLayerEmulator(products=1, api_key=SL_KEY, rate_limit=False)  # any server
    async with emulator.running():
        http = HttpClient(
            connection="x", base_url=emulator.base_url, credentials=Credentials("none")
        )
        ctx = ConnectionContext(name="x", base_url=emulator.base_url, http=http)
        item = Outbound(entity, "SKU-1", {"title": {"en": "x"}}, {}, "../../../admin", op)
        async with http:
            result = await writer(ctx, item, {"name": "x"})

    assert result.status == "rejected"
    assert "cannot be used in a URL path" in (result.message or "")
    assert emulator.stats.requests == 0
