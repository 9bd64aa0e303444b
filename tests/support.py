"""Helpers the tests share (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

import aiohttp

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
