"""A fleet of accounts on one machine: each account a directory with its salync.toml and its
mirror, kept in step by one process (`Fleet`, `salync fleet run`).

Arrange emulators, write one directory per account, run the fleet, assert on the mirrors and on
what each account's round came to.
"""

from __future__ import annotations

import gc
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from salync_inventory.emulator import SalyncEmulator
from salync_saleslayer.emulator import SalesLayerEmulator
from support import SL_KEY, saleslayer_connection

from salync_core import Account, AccountOutcome, ConfigError, Engine, Fleet, HttpClient
from salync_core.config import Config, load_config
from salync_core.fleet import discover_accounts
from salync_core.fleet.due import connections_due, parse_time
from salync_core.fleet.status import fleet_status
from salync_core.secrets import create_key_file
from salync_core.store import Store
from salync_core.store.credentials import StoredTokens
from salync_core.store.inbox import Delivery, Inbox
from salync_core.store.schedule import LastSync, MirrorSchedule
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

INV_KEY = "sk_test_fleet_0001"


class FakeClock:
    """The fleet's clock, moved by hand: starts at the real now, so the runs the mirror records
    (in real time) are in its past."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def add_account(root: Path, name: str, connections: dict[str, Any], **sync: Any) -> Account:
    directory = root / name
    directory.mkdir()
    write_config(directory, connections, sync=sync or {"interval": "1h"})
    return Account(name, directory)


def mirror_titles(account: Account) -> dict[str, Any]:
    """The mirror's live products, ref -> title (read-only)."""
    uri = (account.directory / "salync.db").resolve().as_uri() + "?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute(
            "SELECT key, json_extract(fields, '$.title') FROM records"
            " WHERE entity = 'product' AND deleted = 0"
        )
        return dict(rows)


def emulator_titles(emulator: SalesLayerEmulator) -> dict[str, Any]:
    import orjson

    return {
        ref: orjson.dumps(emulator.product_by_ref(ref)["prod_title"]).decode()  # type: ignore[index]
        for ref in emulator.live_product_refs()
    }


def by_account(outcomes: list[AccountOutcome]) -> dict[str, AccountOutcome]:
    return {o.account: o for o in outcomes}


async def test_a_fleet_of_fifty_accounts_converges(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=4, seed=1, rate_limit=False, accounts=50)
    async with pim.running():
        accounts = [
            add_account(tmp_path, f"shop{i:02d}", {"pim": pim.account_options(i)})
            for i in range(50)
        ]
        fleet = Fleet(tmp_path, concurrency=8)
        outcomes = by_account(await fleet.run_due())

        assert {name: o.status for name, o in outcomes.items()} == {a.name: "ok" for a in accounts}
        for i, account in enumerate(accounts):
            with pim.as_account(i):
                assert mirror_titles(account) == emulator_titles(pim), account.name
        assert len({str(mirror_titles(a)) for a in accounts}) == 50, "fifty different shops"
        assert await fleet.run_due() == [], "nothing is due again within the interval"


async def test_a_wrong_key_and_a_spent_quota_do_not_hold_up_the_others(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=4, seed=1, api_key=SL_KEY, rate_limit=False)
    inventory = SalyncEmulator(products=250, seed=2, api_keys=(INV_KEY,))
    inventory.limits.daily_limit = 2  # a custom plan: two requests a day
    async with pim.running(), inventory.running():
        add_account(tmp_path, "a-wrong-key", {"pim": saleslayer_connection(pim, api_key="nope")})
        add_account(
            tmp_path,
            "b-spent-quota",
            {"inv": {"plugin": "salync", "base_url": inventory.base_url, "api_key": INV_KEY}},
        )
        healthy = [
            add_account(tmp_path, f"c-shop{n}", {"pim": saleslayer_connection(pim)})
            for n in range(4)
        ]
        clock = FakeClock()
        fleet = Fleet(tmp_path, concurrency=1, clock=clock)  # one at a time: the failures first
        outcomes = await fleet.run_due()

        assert [o.account for o in outcomes[:2]] == ["a-wrong-key", "b-spent-quota"]
        statuses = {o.account: o.status for o in outcomes}
        assert statuses == {
            "a-wrong-key": "failed",
            "b-spent-quota": "paused",
            **{a.name: "ok" for a in healthy},
        }
        wrong = by_account(outcomes)["a-wrong-key"]
        assert len(wrong.problems) == 1
        assert "401" in wrong.problems[0]
        assert "nope" not in " ".join(wrong.problems)
        for account in healthy:
            assert mirror_titles(account) == emulator_titles(pim)

        quota = by_account(outcomes)["b-spent-quota"]
        assert quota.next_due is not None
        resume = anyio_time(quota.next_due)
        assert resume > clock.now  # the emulator's next midnight
        clock.now = resume - 1  # every interval has passed, the quota has not reset
        again = by_account(await fleet.run_due())
        assert "b-spent-quota" not in again, "not retried before its resume time"
        assert set(again) == {"a-wrong-key", *(a.name for a in healthy)}
        clock.now = resume + 1
        [entry] = [e for e in fleet.entries if e.account.name == "b-spent-quota"]
        assert entry.due_at <= clock.now, "due again once its quota resets"


async def test_a_waiting_webhook_event_makes_its_account_due_before_its_interval(
    tmp_path: Path,
) -> None:
    inventory = SalyncEmulator(
        products=5, seed=3, plan="pro", api_keys=(INV_KEY,), rate_limit=False
    )
    async with inventory.running():
        connection = {
            "plugin": "salync",
            "base_url": inventory.base_url,
            "api_key": INV_KEY,
            "rate_limits": "none",  # one key for both accounts: they would share its windows
        }
        quiet = add_account(tmp_path, "quiet", {"inv": connection}, interval="1h")
        hooked = add_account(tmp_path, "hooked", {"inv": connection}, interval="1h")
        clock = FakeClock()
        fleet = Fleet(tmp_path, clock=clock)
        assert {o.account for o in await fleet.run_due()} == {"quiet", "hooked"}

        clock.advance(30 * 60)
        assert await fleet.run_due() == [], "half an interval later nothing is due"

        receive_product_event(hooked.directory / "salync.db", inventory)
        requests_before = inventory.stats.requests
        [outcome] = await fleet.run_due()
        assert (outcome.account, outcome.status) == ("hooked", "ok")
        assert "HOOK-0001" in mirror_titles(hooked)
        assert inventory.stats.requests == requests_before, (
            "a round woken by webhook events applies them; it does not re-read the platform"
        )
        assert "HOOK-0001" not in mirror_titles(quiet)

        assert await fleet.run_due() == [], "the event is applied: nothing waits any more"


async def test_with_one_slot_a_big_account_never_runs_twice_before_a_due_small_one(
    tmp_path: Path,
) -> None:
    big = SalesLayerEmulator(products=60, seed=1, api_key=SL_KEY, rate_limit=False)
    small = SalesLayerEmulator(products=2, seed=2, api_key=SL_KEY, rate_limit=False)
    async with big.running(), small.running():
        add_account(tmp_path, "big", {"pim": saleslayer_connection(big)}, interval=0.001)
        for n in range(3):
            add_account(
                tmp_path, f"small{n}", {"pim": saleslayer_connection(small)}, interval=0.001
            )
        order: list[str] = []
        with anyio.CancelScope() as scope:

            def note(outcome: AccountOutcome) -> None:
                order.append(outcome.account)
                if len(order) == 12:
                    scope.cancel()

            fleet = Fleet(tmp_path, concurrency=1, on_outcome=note, poll_seconds=0.01)
            with anyio.fail_after(60):
                await fleet.run()

    assert order.count("big") == 3
    for start in range(0, 12, 4):  # every account once per four runs: round robin
        assert sorted(order[start : start + 4]) == ["big", "small0", "small1", "small2"], order


async def test_status_reads_every_account_without_creating_a_mirror(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=2, seed=1, api_key=SL_KEY, rate_limit=False)
    async with pim.running():
        ran = add_account(tmp_path, "ran", {"pim": saleslayer_connection(pim)})
        never = add_account(tmp_path, "never", {"pim": saleslayer_connection(pim)})
        await Fleet([ran]).run_due()

        rows = {row["account"]: row for row in fleet_status(discover_accounts(tmp_path))}

    assert rows["ran"]["last_status"] == "ok"
    assert rows["ran"]["last_run"] is not None
    assert rows["ran"]["next_due"] > rows["ran"]["last_run"]
    assert rows["never"]["last_status"] == "never run"
    assert not (never.directory / "salync.db").exists(), "status creates nothing"


def receive_product_event(mirror: Path, emulator: SalyncEmulator) -> None:
    """A `product.created` webhook delivery committed to the inbox beside the mirror, as the
    receiver commits it."""
    ws = emulator.workspace
    template = ws.product_json(next(p for p in ws.products.values() if not p.has_variants))
    product = {**template, "id": "prd_hook1", "sku": "HOOK-0001", "name": "Hook 1"}
    inbox = Inbox.beside(mirror)
    try:
        inbox.receive(
            [Delivery("inv", [("evt_hook1", "product.created", {"object": product})], "0" * 64)]
        )
    finally:
        inbox.close()


def anyio_time(iso: str) -> float:
    moment = parse_time(iso)
    assert moment is not None
    return moment


async def test_an_account_needing_a_reconnect_is_parked_and_reported_not_retried(
    tmp_path: Path,
) -> None:
    pim = SalesLayerEmulator(products=2, seed=1, rate_limit=False, accounts=2)
    async with pim.running():
        revoked = add_account(tmp_path, "revoked", {"pim": pim.account_options(0)})
        fine = add_account(tmp_path, "fine", {"pim": pim.account_options(1)})
        clock = FakeClock()
        assert len(await Fleet(tmp_path, clock=clock).run_due()) == 2
        create_key_file(revoked.directory / "salync.key")
        async with Engine.open(revoked.config_path) as engine:  # the grant is gone
            tokens = StoredTokens(engine.store, engine.secret_box(), "pim", "saleslayer")
            await tokens.needs_reconnect("the refresh token was revoked")

        clock.advance(2 * 3600)  # both are due by their interval
        fleet = Fleet(tmp_path, clock=clock)
        outcomes = await fleet.run_due()
        again = await fleet.run_due()

    assert [(o.account, o.status) for o in outcomes] == [("fine", "ok")]
    assert "revoked" not in {o.account for o in again}, "parked: not retried"
    [parked] = [e for e in fleet.entries if e.account == revoked]
    assert parked.status == "needs_reconnect"
    assert parked.problems == ("pim: needs a reconnect",)
    [row] = [r for r in fleet_status([revoked, fine]) if r["account"] == "revoked"]
    assert row["needs_reconnect"] == ["pim"]
    assert row["next_due"] is None
    assert "revoked" not in " ".join(row["problems"]), "the stored reason is not shown"


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90.0), (0.5, 0.5), ("30s", 30.0), ("15m", 900.0), ("1d", 86400.0)]
)
def test_the_sync_interval_is_seconds_or_a_duration(
    tmp_path: Path, value: Any, seconds: float
) -> None:
    write_config(tmp_path, {}, sync={"interval": value})
    assert load_config(tmp_path / "salync.toml").sync_interval == seconds


@pytest.mark.parametrize("value", [0, -5, "15", "15x", "m", "fast", True, [1]])
def test_a_bad_sync_interval_is_refused_with_a_hint(tmp_path: Path, value: Any) -> None:
    write_config(tmp_path, {}, sync={"interval": value})
    with pytest.raises(ConfigError, match=r"\[sync\] interval: .*like \"30s\", \"15m\""):
        load_config(tmp_path / "salync.toml")


async def test_a_local_edit_is_pushed_before_the_interval_without_a_sync(tmp_path: Path) -> None:
    pim = SalesLayerEmulator(products=3, seed=1, rate_limit=False)
    async with pim.running():
        shop = add_account(tmp_path, "shop", {"pim": saleslayer_connection(pim, push=["product"])})
        clock = FakeClock()
        fleet = Fleet(tmp_path, clock=clock)
        await fleet.run_due()
        ref = sorted(pim.live_product_refs())[0]
        async with Engine.open(shop.config_path) as engine:  # the host app edits a product
            await engine.upsert("product", ref, {"title": {"en": "Renamed by the host"}})
        requests = pim.stats.requests

        clock.advance(60)  # the interval (an hour) is far off
        [outcome] = await fleet.run_due()

    assert (outcome.account, outcome.status, outcome.synced) == ("shop", "ok", ["pim"])
    assert pim.product_by_ref(ref)["prod_title"]["en"] == "Renamed by the host"  # type: ignore[index]
    assert pim.stats.by_route.get("GET /rest/Catalog/Products", 0) == 1, "pushed, not synced"
    assert pim.stats.requests > requests


def test_a_connection_due_by_its_interval_is_synced_even_with_local_edits_waiting() -> None:
    last = LastSync("2026-11-30T10:00:00Z", "2026-11-30T10:00:05Z", "ok", None, None)
    schedule = MirrorSchedule({"pim": last, "inv": last}, {}, frozenset({"pim", "inv"}))
    ten_past = parse_time("2026-11-30T10:10:00Z") or 0.0
    eleven = parse_time("2026-11-30T11:00:01Z") or 0.0

    early = {d.name: d.why for d in connections_due(["pim", "inv"], schedule, {}, 3600, ten_past)}
    late = {d.name: d.why for d in connections_due(["pim", "inv"], schedule, {}, 3600, eleven)}

    assert early == {"pim": "local edits", "inv": "local edits"}  # a push alone, at once
    assert late == {"pim": "interval", "inv": "interval"}  # a sync, which pushes after it


async def test_an_idle_account_keeps_nothing_open(tmp_path: Path) -> None:
    """Between rounds an account is a schedule entry: no engine, mirror connection, HTTP
    client or parsed configuration stays alive (the memory measurement is in the report)."""
    pim = SalesLayerEmulator(products=2, seed=1, rate_limit=False, accounts=5)
    async with pim.running():
        for i in range(5):
            add_account(tmp_path, f"shop{i}", {"pim": pim.account_options(i)})
        fleet = Fleet(tmp_path, concurrency=5)
        assert len(await fleet.run_due()) == 5

    gc.collect()
    alive = [
        o
        for o in gc.get_objects()
        if (isinstance(o, Store) and tmp_path in o.path.parents)
        or (isinstance(o, Engine) and tmp_path in o.store.path.parents)
        or (isinstance(o, Config) and tmp_path in o.store_path.parents)
        or (isinstance(o, HttpClient) and str(o.base_url).startswith(pim.base_url))
    ]
    assert alive == []
    assert all(e.status == "ok" and not e.running for e in fleet.entries)
