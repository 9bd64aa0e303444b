"""Shared fixtures: emulators on loopback and configurations that point at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, saleslayer_connection

from salync_core.testing.config import write_config


@pytest.fixture
async def saleslayer() -> AsyncIterator[SalesLayerEmulator]:
    """A Sales Layer 2.0 emulator with 250 products, its rate limit off."""
    emulator = SalesLayerEmulator(products=250, seed=1, api_key=SL_KEY, rate_limit=False)
    async with emulator.running():
        yield emulator


@pytest.fixture
def sl_config(tmp_path: Path, saleslayer: SalesLayerEmulator) -> Callable[..., Path]:
    """Write a salync.toml with one Sales Layer connection called ``pim``."""

    def make(**options: Any) -> Path:
        sync = options.pop("sync", None)
        return write_config(
            tmp_path, {"pim": saleslayer_connection(saleslayer, **options)}, sync=sync
        )

    return make
