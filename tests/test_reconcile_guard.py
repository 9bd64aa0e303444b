"""The reconcile mass-deletion guard: it stops a broken scan from emptying the mirror, and it
does not stand in the way of an ordinary deletion in a small catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, live_refs, saleslayer_connection, sl_write

from salync_core import Engine
from salync_core.engine.reconcile import is_mass_deletion
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


def scratch_files(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir() if ".scan-" in path.name]


async def test_deleting_one_product_of_nine_is_not_a_mass_deletion(tmp_path: Path) -> None:
    emulator = SalesLayerEmulator(products=9, seed=3, api_key=SL_KEY, rate_limit=False)
    async with emulator.running():
        config = write_config(tmp_path, {"pim": saleslayer_connection(emulator)})
        async with Engine.open(config) as engine:
            await engine.sync()
            assert await sl_write(emulator.base_url, "DELETE", "/Products(4)") == 204

            (report,) = await engine.reconcile()

            assert report.ok, report.problems
            assert live_refs(engine, "product") == emulator.live_product_refs()
            assert len(live_refs(engine, "product")) == 8
            # the scan's keys went to a scratch file beside the mirror (memory stays flat at
            # a million products), removed once the reconcile ended
            assert scratch_files(tmp_path) == []


async def test_the_minimum_count_is_configurable(tmp_path: Path) -> None:
    emulator = SalesLayerEmulator(products=9, seed=3, api_key=SL_KEY, rate_limit=False)
    async with emulator.running():
        config = write_config(
            tmp_path, {"pim": saleslayer_connection(emulator)}, sync={"mass_delete_min": 0}
        )
        async with Engine.open(config) as engine:
            await engine.sync()
            assert await sl_write(emulator.base_url, "DELETE", "/Products(4)") == 204

            (report,) = await engine.reconcile()

            assert not report.ok
            assert "--allow-mass-delete" in str(report.problems[0])
            assert len(live_refs(engine, "product")) == 9


@pytest.mark.parametrize(
    ("gone", "live", "mass"),
    [(1, 9, False), (10, 20, False), (11, 20, True), (11, 1000, False), (40, 250, True)],
)
def test_a_mass_deletion_is_both_a_large_share_and_a_large_count(
    gone: int, live: int, mass: bool
) -> None:
    assert is_mass_deletion(gone, live, threshold=0.10, minimum=10) is mass
