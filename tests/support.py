"""Helpers the tests share (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from attrs import define
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core import Engine

SL_KEY = "sl-test-key"


async def sl_write(base_url: str, method: str, path: str, body: Any = None) -> int:
    """Change a Sales Layer emulator's catalog through its documented write endpoints."""
    async with (
        aiohttp.ClientSession(headers={"X-API-KEY": SL_KEY}) as http,
        http.request(method, base_url + path, json=body) as response,
    ):
        return response.status


def live_refs(engine: Engine, entity: str) -> set[str]:
    """Keys of the live records of ``entity`` in the mirror."""
    return {r["ref"] for r in engine.records(entity)}


def count(engine: Engine, sql: str, *params: Any) -> int:
    """The single number a counting query returns."""
    return int(engine.store.conn.execute(sql, params).fetchone()[0])


INV_KEY = "sk_test_two_way_0001"
POLICIES: dict[str, Any] = {
    "default": "last_writer_wins",
    "product": {
        "title": {"owner": "pim"},
        "description": {"owner": "pim"},
        "category_refs": {"owner": "pim"},
        "status": {"owner": "pim"},
        "cost_price": {"owner": "inventory"},
    },
    "stock_level": {"default": {"owner": "inventory"}},
}


@define
class Systems:
    pim: SalesLayerEmulator
    inventory: SalyncEmulator
    config: Path

    def salync_product(self, sku: str) -> Any:
        ws = self.inventory.workspace
        return ws.products[ws.sku_index[sku]]

    async def salync(self, method: str, path: str, body: Any = None) -> Any:
        """Change Salync through its API, as a warehouse person would."""
        headers = {"Authorization": f"Bearer {INV_KEY}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, self.inventory.base_url + path, json=body) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()


def connections(pim: SalesLayerEmulator, inventory: SalyncEmulator) -> dict[str, Any]:
    """A PIM that owns product content and a Salync workspace that owns cost and stock."""
    return {
        "pim": {
            "plugin": "saleslayer",
            "base_url": pim.base_url,
            "api_key": SL_KEY,
            "push": ["product"],
            "rate_limits": "none",
        },
        "inventory": {
            "plugin": "salync",
            "base_url": inventory.base_url,
            "api_key": INV_KEY,
            "plan": "pro",
            "rate_limits": "none",
            "streams": ["products", "stock"],
            "push": ["product", "stock_level", "stock_adjustment"],
        },
    }


def saleslayer_connection(emulator: SalesLayerEmulator, **options: Any) -> dict[str, Any]:
    return {
        "plugin": "saleslayer",
        "base_url": emulator.base_url,
        "api_key": SL_KEY,
        "attributes": ["prod_brand"],
        "variant_options": {"frmt_size": "size", "frmt_color": "color"},
        **options,
    }
