"""A stream covered by another (Sales Layer variants, read inside products with
``$expand=Variants``) is never read on its own in a run where the covering stream failed: the
next run's products pass delivers the variants anyway."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core import Engine

pytestmark = pytest.mark.anyio

VARIANTS = "GET /rest/Catalog/Variants"


async def test_when_products_fail_variants_are_not_read_separately(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    saleslayer.faults.update({"server_errors": 1000, "path": "/Products"})
    async with Engine.open(sl_config(retry_attempts=1)) as engine:
        (report,) = await engine.sync()

        assert not report.ok
        assert saleslayer.stats.by_route.get(VARIANTS, 0) == 0
        assert "products" in report.stream("variants").skipped
        assert [p.stream for p in report.problems] == ["products"]

        saleslayer.faults.clear()
        (again,) = await engine.sync()

        assert again.ok, again.problems
        assert saleslayer.stats.by_route.get(VARIANTS, 0) == 0
        summary = saleslayer.summary()
        assert len(list(engine.records("variant"))) == summary["variants"]["live"]
