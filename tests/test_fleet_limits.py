"""Limits in a fleet: accounts that share one API key draw from one set of limits, as the
platform counts them; accounts with keys of their own keep their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core import Fleet, HttpClient
from salync_core.http.pacing import SHARED_PACERS, PacerRegistry, credential_fingerprint
from salync_core.platform import Credentials, Limits
from salync_core.secrets import Secret
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

TWO_SYNCS_A_DAY = {"daily": 4}
"""A Sales Layer sync of this catalog makes two requests (categories, products)."""


def account(root: Path, name: str, options: dict[str, Any]) -> None:
    directory = root / name
    directory.mkdir()
    limited = {**options, "rate_limits": TWO_SYNCS_A_DAY}
    write_config(directory, {"pim": limited}, sync={"interval": "1h"})


async def test_accounts_sharing_a_key_respect_its_daily_quota_together(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=2, seed=1, rate_limit=False, accounts=2)
    async with pim.running():
        shared = pim.account_options(0)
        for name in ("shared-a", "shared-b", "shared-c"):
            account(tmp_path, name, shared)
        account(tmp_path, "own-key", pim.account_options(1))
        fleet = Fleet(tmp_path, concurrency=1)
        outcomes = {o.account: o for o in await fleet.run_due()}

    statuses = sorted(o.status for name, o in outcomes.items() if name.startswith("shared"))
    assert statuses == ["ok", "ok", "paused"], "two syncs fit the shared key's day, not three"
    assert pim.account_stats[0].requests <= 4
    assert outcomes["own-key"].status == "ok", "a key of its own keeps its own quota"


async def test_clients_share_a_pacer_only_for_the_same_platform_url_and_credential() -> None:
    def client(connection: str, secret: str, url: str = "http://127.0.0.1:1/api") -> HttpClient:
        return HttpClient(
            connection=connection,
            base_url=url,
            credentials=Credentials("header", "X-API-KEY", Secret(secret)),
            limits=Limits(daily=10),
            platform="saleslayer",
        )

    registry = PacerRegistry()
    token = SHARED_PACERS.set(registry)
    try:
        a, b = client("a", "key-1"), client("b", "key-1")
        other_key, other_url = client("c", "key-2"), client("d", "key-1", "http://127.0.0.1:2")
    finally:
        SHARED_PACERS.reset(token)
    alone = client("e", "key-1")  # outside a fleet: a pacer of its own, as always

    assert a._pacer is b._pacer
    assert len({id(c._pacer) for c in (a, other_key, other_url, alone)}) == 4
    assert len(registry) == 3
    assert all("key-1" not in "".join(key) for key in registry._pacers)
    assert credential_fingerprint("key-1") != credential_fingerprint("key-2")
    for c in (a, b, other_key, other_url, alone):
        await c.close()
