"""The writer lease: one holder at a time, a fencing token that grows at every acquire, and a
stale holder's write transaction refused and rolled back once another holder took over."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from support import count

from salync_core import Engine
from salync_core.errors import Fenced, MirrorBusy
from salync_core.store import Store
from salync_core.store import lease as leases
from salync_core.store.lease import Fence, WriterLease
from salync_core.store.operations import get_cursor, set_cursor

pytestmark = pytest.mark.anyio


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    path = tmp_path / "salync.db"
    Store(path).close()
    return path


def test_each_acquire_hands_out_a_higher_token_and_only_to_one_holder(mirror: Path) -> None:
    store = Store(mirror)
    now = 1000.0

    first = leases.acquire(store, "A", ttl=10, now=now)
    assert first == 1
    assert leases.acquire(store, "B", ttl=10, now=now + 5) is None, "A's lease still runs"
    assert leases.acquire(store, "A", ttl=10, now=now + 5) == 2, "a holder may take it again"
    assert leases.acquire(store, "B", ttl=10, now=now + 16) == 3, "expired: B takes over"
    assert leases.state(store.conn).holder == "B"

    assert leases.release(store, Fence(str(mirror), "B", 3))
    assert leases.acquire(store, "C", ttl=10, now=now + 17) == 4, "released: free at once"
    store.close()


def test_a_stale_holder_is_fenced_and_its_write_rolls_back(mirror: Path) -> None:
    a, b = Store(mirror), Store(mirror)  # two processes' connections to one mirror
    now = time.time()
    token_a = leases.acquire(a, "worker-1", ttl=30, now=now)
    assert token_a is not None
    a.fence = Fence(str(mirror), "worker-1", token_a)
    with a.write() as txn:
        set_cursor(txn, "pim", "products", {"page": 1})

    # worker-1 stalls past its TTL; the retried task on worker-2 takes the lease over
    token_b = leases.acquire(b, "worker-2", ttl=30, now=now + 31)
    assert token_b == token_a + 1
    b.fence = Fence(str(mirror), "worker-2", token_b)

    with pytest.raises(Fenced, match="taken over by worker-2"), a.write() as txn:
        set_cursor(txn, "pim", "products", {"page": 2})
    assert not a.conn.in_transaction, "the stale write was rolled back"
    assert get_cursor(b.conn, "pim", "products") == {"page": 1}
    with pytest.raises(Fenced):
        leases.renew(a, a.fence, ttl=30)

    with b.write() as txn:  # the new holder writes on
        set_cursor(txn, "pim", "products", {"page": 2})
    assert get_cursor(a.conn, "pim", "products") == {"page": 2}
    a.close()
    b.close()


def race(mirror: Path, contenders: int) -> dict[str, int | None]:
    """Every contender, on a connection of its own, asks for the lease at the same moment."""
    stores = [Store(mirror) for _ in range(contenders)]
    start = threading.Barrier(contenders)
    tokens: dict[str, int | None] = {}

    def contend(store: Store, holder: str) -> None:
        start.wait()
        tokens[holder] = leases.acquire(store, holder, ttl=30)

    threads = [
        threading.Thread(target=contend, args=(store, f"holder-{i}"))
        for i, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    return tokens


def test_two_holders_racing_for_the_lease_exactly_one_wins(mirror: Path) -> None:
    store = Store(mirror)
    for _round in range(5):
        tokens = race(mirror, contenders=4)

        winners = {holder: token for holder, token in tokens.items() if token is not None}
        assert len(winners) == 1, tokens
        ((winner, token),) = winners.items()
        assert leases.state(store.conn).holder == winner
        leases.release(store, Fence(str(mirror), winner, token))
    store.close()


async def test_a_run_longer_than_the_ttl_keeps_its_lease(mirror: Path) -> None:
    store, other = Store(mirror), Store(mirror)
    lease = WriterLease("long-run", ttl=1.0)
    async with lease.hold(store) as fence:
        assert store.fence is fence
        await anyio.sleep(2.5)  # two and a half TTLs, renewed every third of one
        assert leases.acquire(other, "intruder", ttl=1.0) is None
        with store.write() as txn:
            set_cursor(txn, "pim", "products", {"page": 9})
    assert lease.lost is None
    assert store.fence is None
    assert leases.state(other.conn).holder is None, "released at the end"
    store.close()
    other.close()


async def test_a_held_lease_makes_the_next_holder_wait_then_refuse(mirror: Path) -> None:
    store, other = Store(mirror), Store(mirror)
    async with WriterLease("first", ttl=30).hold(store):
        with pytest.raises(MirrorBusy, match="writer lease holder first"):
            async with WriterLease("second", ttl=30, wait=0.2).hold(other):
                pass
    async with WriterLease("second", ttl=30, wait=0).hold(other) as fence:
        assert fence.token == 2, "no wait: one try, and the lease was free"
    store.close()
    other.close()


async def test_the_next_holder_waits_out_a_dead_holders_lease(mirror: Path) -> None:
    store, other = Store(mirror), Store(mirror)
    assert leases.acquire(store, "killed-worker", ttl=0.5) == 1  # then dies: no renew, no release
    store.close()

    async with WriterLease("retry", ttl=0.5).hold(other) as fence:
        assert fence.token == 2
    other.close()


async def test_a_holder_whose_lease_was_taken_over_learns_it_and_writes_nothing(
    mirror: Path,
) -> None:
    store, other = Store(mirror), Store(mirror)
    lease = WriterLease("stalled", ttl=0.6)

    async def write_after_takeover() -> None:
        async with lease.hold(store):
            taken = leases.acquire(other, "retry", ttl=30, now=time.time() + 60)
            assert taken is not None
            with anyio.fail_after(10):
                while lease.lost is None:  # noqa: ASYNC110 - the renewal task sets it
                    await anyio.sleep(0.05)
            with store.write() as txn:
                set_cursor(txn, "pim", "products", {"page": 3})

    with pytest.raises(Fenced):
        await write_after_takeover()
    assert get_cursor(other.conn, "pim", "products") is None
    assert leases.state(other.conn).holder == "retry", "the stale holder's release is a no-op"
    store.close()
    other.close()


class TakeOverAfterFirstPage:
    """Progress callback: once the first page is committed, another holder takes the lease
    (the run stalled past its TTL as far as everyone else can tell)."""

    def __init__(self, mirror: Path) -> None:
        self.mirror = mirror
        self.pages = 0
        self.items = 0

    def page_done(self, connection: str, stream: str, items: int, total: int | None) -> None:
        self.pages += 1
        self.items += items
        if self.pages == 1:
            other = Store(self.mirror)
            assert leases.acquire(other, "retry", ttl=30, now=time.time() + 3600) is not None
            other.close()


async def test_a_sync_whose_lease_is_taken_over_stops_at_its_last_committed_page(
    sl_config: Callable[..., Path],
) -> None:
    config = sl_config()
    async with Engine.open(config) as engine:
        taking_over = TakeOverAfterFirstPage(engine.store.path)
        async with WriterLease("stalled-worker", ttl=30).hold(engine.store):
            (report,) = await engine.sync(progress=taking_over)

        assert not report.ok
        assert any("fenced" in str(problem) for problem in report.problems), report.problems
        assert taking_over.pages == 1, "no page was applied after the takeover"
        records = count(engine, "SELECT count(*) FROM records")
        assert 0 < records <= taking_over.items, "only the first page is in the mirror"
        assert leases.state(engine.store.conn).holder == "retry"
