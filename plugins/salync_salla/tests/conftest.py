"""Fixtures: a Salla emulator on loopback, a key file, and a connection that points at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from salync_salla.emulator import SallaEmulator

from salync_core.secrets import KEY_ENV, create_key_file
from salync_core.testing.config import write_config

CLIENT_ID = "app-7f3c"
CLIENT_SECRET = "cs_9b1e4d7a2c5f8e3b"
SCALE = 60.0
"""Platform time runs 60 times faster: a Salla minute lasts a real second."""


@pytest.fixture
async def salla() -> AsyncIterator[SallaEmulator]:
    """A Plus store of 150 products; queued stock applies two platform minutes later."""
    emulator = SallaEmulator(
        products=150,
        seed=3,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        time_scale=SCALE,
        quantity_delay=120.0,
        start=datetime.now(UTC) - timedelta(days=1),  # scaled time runs ahead: start behind
    )
    async with emulator.running():
        yield emulator


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A key file next to the configuration, as `salync init` makes it."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    return create_key_file(tmp_path / "salync.key")


def salla_connection(emulator: SallaEmulator, **options: Any) -> dict[str, Any]:
    return {
        "plugin": "salla",
        "base_url": emulator.base_url,
        "accounts_url": emulator.accounts_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "time_scale": SCALE,
        **options,
    }


@pytest.fixture
def shop_config(tmp_path: Path, keyed: Path, salla: SallaEmulator) -> Callable[..., Path]:
    """Write a salync.toml with one Salla connection called ``shop``."""

    def make(**options: Any) -> Path:
        return write_config(tmp_path, {"shop": salla_connection(salla, **options)})

    return make
