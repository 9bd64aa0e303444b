"""Per-field source of truth, end to end: Sales Layer owns product content, Salync owns cost
and stock, the host app edits in between, and every system ends up holding what the policies
say, on the real emulators over loopback and a real SQLite mirror."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator
from support import INV_KEY, POLICIES, SL_KEY, Systems, connections, sl_write

from salync_core import Engine
from salync_core.errors import PolicyError
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


@pytest.fixture
async def systems(tmp_path: Path) -> AsyncIterator[Systems]:
    """A 6-product PIM, an empty Salync workspace, one salync.toml with the policies."""
    pim = SalesLayerEmulator(products=6, seed=2, api_key=SL_KEY, rate_limit=False)
    inventory = SalyncEmulator(
        products=0, seed=2, plan="pro", api_keys=(INV_KEY,), rate_limit=False
    )
    async with pim.running(), inventory.running():
        config = write_config(tmp_path, connections(pim, inventory), policies=POLICIES)
        yield Systems(pim, inventory, config)


def pushed(reports: list[Any]) -> dict[str, int]:
    return {r.connection: r.pushed for r in reports if r.kind == "push"}


async def test_the_pim_catalog_flows_into_salync_and_settles(systems: Systems) -> None:
    async with Engine.open(systems.config) as engine:
        first = await engine.sync()
        second = await engine.sync()

        assert all(r.ok for r in first + second), [r.problems for r in first + second]
        assert pushed(first) == {"pim": 0, "inventory": 6}  # created in Salync from the PIM
        assert pushed(second) == {"pim": 0, "inventory": 0}  # reading them back is no change
        for ref in systems.pim.live_product_refs():
            product = engine.get("product", ref)
            assert systems.salync_product(ref).name == product.title["en"]
            assert set(product.title) == {"en", "es", "fr"}, "Salync's one language erased none"


async def test_each_field_ends_with_its_owners_value_everywhere(systems: Systems) -> None:
    async with Engine.open(systems.config) as engine:
        await engine.sync()
        await engine.sync()
        one, two, three = sorted(systems.pim.live_product_refs())[:3]
        pim_one = systems.pim.product_by_ref(one)
        assert pim_one is not None
        await sl_write(
            systems.pim.base_url,
            "PATCH",
            f"/Products({pim_one['prod_id']})",
            {"prod_title": {"en": "Renamed in the PIM"}},
        )
        sku_two = systems.salync_product(two)
        await systems.salync(
            "PATCH",
            f"/products/{sku_two.id}",
            {"name": "Renamed in the warehouse", "cost_price": "9.99"},
        )
        await engine.upsert("product", three, {"barcode": "5012345678900"})

        reports = await engine.sync() + await engine.sync()

        assert all(r.ok for r in reports), [r.problems for r in reports]
        assert engine.get("product", one).title["en"] == "Renamed in the PIM"
        assert systems.salync_product(one).name == "Renamed in the PIM"
        pim_two = systems.pim.product_by_ref(two)
        assert pim_two is not None
        assert engine.get("product", two).title == pim_two["prod_title"]
        assert systems.salync_product(two).name == pim_two["prod_title"]["en"], "owner restored"
        assert str(engine.get("product", two).cost_price) == "9.99"
        assert systems.salync_product(three).barcode == "5012345678900"
        explained = {f["field"]: f for f in engine.explain("product", two)["fields"]}
        assert explained["cost_price"]["origin"] == "inventory"
        assert explained["cost_price"]["policy"] == "owner:inventory"
        assert explained["title"]["origin"] == "pim"


async def test_a_local_edit_of_a_field_another_system_owns_is_refused_whole(
    systems: Systems,
) -> None:
    async with Engine.open(systems.config) as engine:
        await engine.sync()
        ref = sorted(systems.pim.live_product_refs())[0]
        before = engine.get("product", ref)

        with pytest.raises(PolicyError, match="title"):
            await engine.upsert("product", ref, {"barcode": "1", "title": {"en": "Mine"}})

        assert engine.get("product", ref) == before


async def test_a_sale_recorded_by_the_host_app_moves_salync_stock_once(
    systems: Systems,
) -> None:
    async with Engine.open(systems.config) as engine:
        await engine.sync()
        sku = sorted(systems.pim.live_product_refs())[0]
        await systems.salync(
            "POST", "/stock/adjustments", {"sku": sku, "type": "po_receipt", "quantity": 10}
        )
        await engine.sync()
        await engine.upsert(
            "stock_adjustment", "pos-1", {"sku": sku, "type": "sale", "quantity": 3}
        )

        reports = await engine.sync() + await engine.sync()

        assert all(r.ok for r in reports), [r.problems for r in reports]
        assert systems.inventory.stock_on_hand(sku) == 7
        level = engine.get("stock_level", f"{sku}@loc_main")
        assert level.on_hand == 7
        with pytest.raises(PolicyError, match="owner:inventory"):
            await engine.upsert("stock_level", f"{sku}@loc_main", {"on_hand": 100})
