"""``salync demo``: two platforms, per-field ownership and the host app, on the built-in
emulators and a local SQLite file.

The Sales Layer PIM owns product content (titles, descriptions, categories, status); the Salync
inventory workspace owns cost and stock; everything else goes to the last writer. The demo
starts both emulators on free loopback ports, stores their keys encrypted, and then:

1. *first*: a sync reads the PIM catalog into the mirror and creates every product in Salync;
2. *settle*: reads Salync back, which changes nothing and pushes nothing (echo suppression);
3. people work: a PIM user renames and deletes products, a warehouse sets costs and renames a
   product (Salync does not own titles), the host app sets barcodes and records a sale;
4. *workday*: a sync with reconcile; each system's changes flow to the others, the PIM's
   title is restored in Salync, and the deletions Sales Layer 2.0 never reports are found by
   a key scan and archived in Salync.
"""

from __future__ import annotations

import os
import random
import secrets
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from attrs import define

from salync_core import plugins
from salync_core.config import KEY_FILE
from salync_core.engine import Engine, RunReport
from salync_core.engine.pipeline import Progress
from salync_core.secrets import KEY_ENV, Secret, create_key_file
from salync_core.state.cursors import OVERLAP

CUSTOM_PLAN_PER_MINUTE = 2_000
"""The demo's Salync workspace is on a custom plan ("contact support for higher limits"), so
creating the whole catalog there takes seconds; connection and emulator agree on it."""

CONFIG = """\
[store]
path = "salync.db"

[connections.pim]
plugin = "saleslayer"
base_url = "{pim}"
locale = "en"
attributes = ["prod_brand", "prod_material"]
variant_options = {{ frmt_size = "size", frmt_color = "color" }}
push = ["product"]

[connections.inventory]
plugin = "salync"
base_url = "{inventory}"
plan = "pro"
rate_limits = {{ windows = [[{per_minute}, 60]], daily = 50000 }}
streams = ["products", "stock", "stock_adjustments"]
push = ["product", "stock_adjustment"]

[policies]
default = "last_writer_wins"

[policies.product]
title = {{ owner = "pim" }}
description = {{ owner = "pim" }}
category_refs = {{ owner = "pim" }}
status = {{ owner = "pim" }}
created_at = {{ owner = "pim" }}
cost_price = {{ owner = "inventory" }}

[policies.stock_level]
default = {{ owner = "inventory" }}
"""


@define
class DemoResult:
    directory: Path
    phases: list[tuple[str, list[RunReport]]]
    story: list[str]
    records: dict[str, int]
    tombstones: int
    explained: dict[str, Any]


class Workday:
    """What people do between syncs, through each platform's own API."""

    def __init__(self, pim: Any, inventory: Any, engine: Engine, keys: dict[str, str]) -> None:
        self.pim, self.inventory, self.engine, self.keys = pim, inventory, engine, keys
        self.story: list[str] = []

    async def run(self, rng: random.Random) -> str:
        refs = sorted(self.pim.live_product_refs())
        chosen = rng.sample(refs, 16)  # distinct products for each kind of change
        renamed, deleted, costed, barcoded = chosen[:5], chosen[5:8], chosen[8:13], chosen[13:]
        async with aiohttp.ClientSession() as http:
            await self._pim(http, renamed, deleted)
            warehouse_renamed = await self._warehouse(http, costed)
        for n, ref in enumerate(barcoded):
            await self.engine.upsert("product", ref, {"barcode": f"50123456789{n:02d}"})
        await self.engine.upsert(
            "stock_adjustment", "till-1-sale-1", {"sku": costed[0], "type": "sale", "quantity": 1}
        )
        self.story += [
            f"PIM: renamed {', '.join(renamed)}; deleted {', '.join(deleted)}",
            f"warehouse: received 20 x {costed[0]}; set costs of {', '.join(costed)}; renamed "
            f"{warehouse_renamed} (Salync does not own titles: the PIM's comes back)",
            f"host app: barcodes for {', '.join(barcoded)}; sold 1 x {costed[0]}",
        ]
        return str(costed[0])

    async def _pim(
        self, http: aiohttp.ClientSession, renamed: list[str], deleted: list[str]
    ) -> None:
        headers = {"X-API-KEY": self.keys["pim"], "Accept-Language": "en"}
        for ref in renamed + deleted:
            product = self.pim.product_by_ref(ref)
            url = f"{self.pim.base_url}/Products({product['prod_id']})"
            if ref in deleted:
                async with http.delete(url, headers=headers) as response:
                    response.raise_for_status()
            else:
                body = {"prod_title": {"en": f"{ref} (renamed in the PIM)"}}
                async with http.patch(url, json=body, headers=headers) as response:
                    response.raise_for_status()

    async def _warehouse(self, http: aiohttp.ClientSession, costed: list[str]) -> str:
        headers = {"Authorization": f"Bearer {self.keys['inventory']}"}
        ws = self.inventory.workspace
        receipt = {"sku": costed[0], "type": "po_receipt", "quantity": 20}
        url = f"{self.inventory.base_url}/stock/adjustments"
        async with http.post(url, json=receipt, headers=headers) as response:
            response.raise_for_status()
        for n, ref in enumerate(costed):
            body: dict[str, Any] = {"cost_price": f"{12 + n}.50"}
            if n == 1:
                body["name"] = "Renamed in the warehouse"
            url = f"{self.inventory.base_url}/products/{ws.sku_index[ref]}"
            async with http.patch(url, json=body, headers=headers) as response:
                response.raise_for_status()
        return costed[1]


async def run_demo(directory: Path, products: int, progress: Progress | None = None) -> DemoResult:
    keys = {"pim": secrets.token_urlsafe(24), "inventory": "sk_demo_" + secrets.token_hex(12)}
    if not (directory / KEY_FILE).exists() and not os.environ.get(KEY_ENV):
        create_key_file(directory / KEY_FILE)
    emulators = plugins.emulators()
    factory: Any = emulators["saleslayer"]  # each emulator takes its own options
    pim = factory(products=products, seed=7, api_key=keys["pim"])
    factory = emulators["salync"]
    inventory = factory(products=0, seed=7, plan="pro", api_keys=(keys["inventory"],))
    inventory.limits.burst_limit = CUSTOM_PLAN_PER_MINUTE
    inventory.limits.daily_limit = 50_000
    async with AsyncExitStack() as stack:
        urls = {
            "pim": await stack.enter_async_context(pim.running()),
            "inventory": await stack.enter_async_context(inventory.running()),
        }
        config = directory / "salync.toml"
        config.write_text(
            CONFIG.format(per_minute=CUSTOM_PLAN_PER_MINUTE, **urls), encoding="utf-8"
        )
        engine = await stack.enter_async_context(Engine.open(config))
        for name, key in keys.items():
            await engine.set_secrets(name, {"api_key": Secret(key)})  # encrypted at rest
        phases = [("first", await engine.sync(progress=progress))]
        # Time passes, so the next incremental passes start after the first sync's writes (a
        # pass re-reads from its start less OVERLAP, on the platform's whole-second clock).
        await anyio.sleep(OVERLAP.total_seconds() + 1)
        phases.append(("settle", await engine.sync(progress=progress)))
        workday = Workday(pim, inventory, engine, keys)
        sold = await workday.run(random.Random(11))
        phases.append(("workday", await engine.sync(reconcile=True, progress=progress)))
        counts = dict(
            engine.store.conn.execute(
                "SELECT entity, count(*) FROM records WHERE deleted = 0 GROUP BY entity"
            ).fetchall()
        )
        (tombstones,) = engine.store.conn.execute("SELECT count(*) FROM tombstones").fetchone()
        explained = engine.explain("product", sold)
    return DemoResult(directory, phases, workday.story, counts, tombstones, explained)
