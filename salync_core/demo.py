"""``salync demo``: the whole loop on a built-in emulator and a local SQLite file.

It starts the Sales Layer emulator on a free loopback port, writes a ``salync.toml``, runs a full
sync, then edits and deletes products through the emulator's documented write endpoints (as a
PIM user would), runs an incremental sync (which sees the edits) and a reconcile (which finds
the deletions Sales Layer 2.0 never reports).
"""

from __future__ import annotations

import os
import random
import secrets
from pathlib import Path
from typing import Any

import aiohttp
from attrs import define

from salync_core import plugins
from salync_core.config import KEY_FILE
from salync_core.engine import Engine, RunReport
from salync_core.engine.pipeline import Progress
from salync_core.secrets import KEY_ENV, Secret, create_key_file


@define
class DemoResult:
    directory: Path
    phases: list[tuple[str, RunReport]]
    edited: list[str]
    deleted: list[str]
    records: dict[str, int]
    tombstones: int


def write_config(directory: Path, base_url: str) -> Path:
    config = directory / "salync.toml"
    config.write_text(
        f"""[store]
path = "salync.db"

[connections.pim]
plugin = "saleslayer"
base_url = "{base_url}"
locale = "en"
attributes = ["prod_brand", "prod_material"]
variant_options = {{ frmt_size = "size", frmt_color = "color" }}
""",
        encoding="utf-8",
    )
    return config


async def edit_catalog(
    base_url: str, key: str, edits: int, deletes: int, seed: int
) -> tuple[list[str], list[str]]:
    """Change and delete products over HTTP, as a Sales Layer user would."""
    headers = {"X-API-KEY": key, "Accept-Language": "en"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(
            f"{base_url}/Products", params={"$select": "prod_id,prod_ref", "$top": "100"}
        ) as r:
            r.raise_for_status()
            items = (await r.json())["value"]
        chosen = random.Random(seed).sample(items, edits + deletes)
        for item in chosen[:edits]:
            body = {"prod_title": {"en": f"{item['prod_ref']} (renamed in the PIM)"}}
            async with http.patch(f"{base_url}/Products({item['prod_id']})", json=body) as r:
                r.raise_for_status()
        for item in chosen[edits:]:
            async with http.delete(f"{base_url}/Products({item['prod_id']})") as r:
                r.raise_for_status()
    return [i["prod_ref"] for i in chosen[:edits]], [i["prod_ref"] for i in chosen[edits:]]


async def run_demo(directory: Path, products: int, progress: Progress | None = None) -> DemoResult:
    key = secrets.token_urlsafe(24)
    if not (directory / KEY_FILE).exists() and not os.environ.get(KEY_ENV):
        create_key_file(directory / KEY_FILE)
    factory: Any = plugins.emulators()["saleslayer"]  # each emulator takes its own options
    emulator = factory(products=products, seed=7, api_key=key)
    async with emulator.running() as base_url:
        config = write_config(directory, base_url)
        async with Engine.open(config) as engine:
            await engine.set_secrets("pim", {"api_key": Secret(key)})  # encrypted at rest
            phases = [("full sync", (await engine.sync(full=True, progress=progress))[0])]
            edited, deleted = await edit_catalog(base_url, key, edits=10, deletes=5, seed=11)
            phases.append(("incremental sync", (await engine.sync(progress=progress))[0]))
            phases.append(("reconcile", (await engine.reconcile())[0]))
            counts = dict(
                engine.store.conn.execute(
                    "SELECT entity, count(*) FROM records WHERE deleted = 0 GROUP BY entity"
                ).fetchall()
            )
            (tombstones,) = engine.store.conn.execute("SELECT count(*) FROM tombstones").fetchone()
    return DemoResult(directory, phases, edited, deleted, counts, tombstones)
