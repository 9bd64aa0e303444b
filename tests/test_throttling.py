"""429s are waited out, not counted as failures: a burst of ``Retry-After`` answers never
fails a sync, and an endless one ends after a bounded *time*, not a number of attempts."""

from __future__ import annotations

from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, live_refs, saleslayer_connection

from salync_core import Engine
from salync_core.errors import RateLimitedError
from salync_core.http import HttpClient, RetryPolicy
from salync_core.platform import Credentials
from salync_core.secrets import Secret
from salync_core.testing import ScaledClock
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio
SCALE = 100.0
"""Platform seconds per real second: a ``Retry-After: 1`` costs 10 ms here."""


async def test_five_429s_with_retry_after_are_waited_out(tmp_path: Path) -> None:
    emulator = SalesLayerEmulator(
        products=20, seed=2, api_key=SL_KEY, rate_limit=False, clock=ScaledClock(SCALE)
    )
    async with emulator.running():
        connection = saleslayer_connection(emulator, time_scale=SCALE, retry_attempts=2)
        config = write_config(tmp_path, {"pim": connection})
        emulator.faults.update({"rate_limited": 5, "retry_after": "1", "path": "/Products"})
        async with Engine.open(config) as engine:
            (report,) = await engine.sync()

            assert report.ok, report.problems
            assert emulator.stats.injected["rate_limited"] == 5
            assert live_refs(engine, "product") == emulator.live_product_refs()


async def test_429s_without_end_stop_after_the_throttle_budget_not_a_count() -> None:
    emulator = SalesLayerEmulator(
        products=1, seed=2, api_key=SL_KEY, rate_limit=False, clock=ScaledClock(SCALE)
    )
    async with emulator.running():
        emulator.faults.update({"rate_limited": 10**6, "retry_after": "2"})
        policy = RetryPolicy(attempts=2, base=0.01, throttle_budget=0.5)
        client = HttpClient(
            connection="pim",
            base_url=emulator.base_url,
            credentials=Credentials("header", header="X-API-KEY", secret=Secret(SL_KEY)),
            time_scale=SCALE,
            retry=policy,
        )
        async with client:
            with pytest.raises(RateLimitedError, match="rate limited for") as caught:
                await client.get_json("Products")

        assert "pim" in str(caught.value)
        # 2 platform s = 20 ms real each: about 25 waits fit in 0.5 s, far more than 2 attempts
        assert 20 <= emulator.stats.injected["rate_limited"] <= 27
