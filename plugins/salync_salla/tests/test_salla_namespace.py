"""A Salla product without a SKU lives in Salla's own namespace: mirrored, never sent to
another platform (nothing there could match it), while products with a SKU flow on."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import salla_connection
from salync_inventory.emulator import SalyncEmulator
from salync_salla.emulator import SallaEmulator
from test_salla_oauth import install

from salync_core import Engine
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio
KEY = "sk_live_4f7c2a9e1b8d6c3f"


async def test_a_skuless_salla_product_is_never_pushed_elsewhere(
    tmp_path: Path, keyed: Path, salla: SallaEmulator
) -> None:
    skuless = next(p for p in salla.store.products.values() if not p["sku"])
    inventory = SalyncEmulator(products=1, api_keys=(KEY,), rate_limit=False)
    async with inventory.running():
        config = write_config(
            tmp_path,
            {
                "shop": salla_connection(salla),
                "inv": {
                    "plugin": "salync",
                    "base_url": inventory.base_url,
                    "api_key": KEY,
                    "push": ["product"],
                    "rate_limits": "none",
                },
            },
        )
        async with Engine.open(config) as engine:
            await install(engine, salla)
            await engine.sync("shop", ["products"], push=False)
            assert engine.get("product", f"salla:{skuless['id']}") is not None

            (report,) = await engine.push("inv")

        skus = {p.sku for p in inventory.workspace.products.values()}
        assert report.pushed > 0, report.problems
        assert not [sku for sku in skus if sku.startswith("salla:")]
        assert {p["sku"] for p in salla.store.products.values() if p["sku"]} <= skus
