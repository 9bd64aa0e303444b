"""Webhooks into the mirror: a Salync Pro workspace delivers signed events to the receiver at
``/webhooks/<connection>``; each accepted event is committed to the inbox before the 200 and
applied once through the same path as a polled page. Refused deliveries change nothing.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from aiohttp import web
from salync_inventory.emulator import SalyncEmulator
from salync_inventory.emulator.webhooks import signature
from support import count

from salync_core import Engine, webhook_app
from salync_core.store.inbox import Delivery as InboxDelivery
from salync_core.store.inbox import Inbox, inbox_path
from salync_core.testing.config import write_config
from salync_core.webhooks.applier import drain
from salync_core.webhooks.receiver import RECEIVER

pytestmark = pytest.mark.anyio

KEY = "sk_live_webhooks_0001"
SECRET = "whsec_2f9c7e1a5b3d"


# helpers ---------------------------------------------------------------------------------


@pytest.fixture
async def salync() -> AsyncIterator[SalyncEmulator]:
    """A Pro workspace (webhooks are a Pro feature) of 20 products, its rate limit off."""
    emulator = SalyncEmulator(products=20, seed=5, plan="pro", api_keys=[KEY], rate_limit=False)
    async with emulator.running():
        yield emulator


@pytest.fixture
def config(tmp_path: Path, salync: SalyncEmulator) -> Path:
    connection = {
        "plugin": "salync",
        "base_url": salync.base_url,
        "api_key": KEY,
        "plan": "pro",
        "webhook_secret": SECRET,
        "rate_limits": "none",
    }
    return write_config(tmp_path, {"inv": connection})


@contextlib.asynccontextmanager
async def receiving(engine: Engine, *, apply: bool = True, **options: Any) -> AsyncIterator[str]:
    """Serve the webhook application on loopback; yields the connection's delivery URL."""
    runner = web.AppRunner(webhook_app(engine, apply=apply, **options))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/inv"
    finally:
        await runner.cleanup()


def signed(event: dict[str, Any], secret: str = SECRET, stamp: str = "1764500000") -> Delivery:
    body = orjson.dumps(event)
    headers = {
        "Content-Type": "application/json",
        "X-Salync-Timestamp": stamp,
        "X-Salync-Signature": signature(secret, stamp, body),
    }
    return Delivery(headers, body)


class Delivery:
    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.headers, self.body = headers, body


async def post(
    url: str, delivery: Delivery, http: aiohttp.ClientSession | None = None
) -> tuple[int, Any]:
    """POST a delivery as the platform would; returns the status and the JSON answer."""
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(aiohttp.ClientSession())
        async with http.post(url, data=delivery.body, headers=delivery.headers) as response:
            return response.status, await response.json()


async def call(emulator: SalyncEmulator, method: str, path: str, body: Any = None) -> Any:
    """Change the workspace through Salync's API, as a person using Salync would."""
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, emulator.base_url + path, json=body) as response,
    ):
        assert response.status < 300, await response.text()
        return await response.json()


def new_product_event(emulator: SalyncEmulator, n: int) -> dict[str, Any]:
    """A ``product.created`` event for a product the mirror has never seen (``HOOK-n``)."""
    ws = emulator.workspace
    template = ws.product_json(next(p for p in ws.products.values() if not p.has_variants))
    product = {**template, "id": f"prd_hook{n}", "sku": f"HOOK-{n:04d}", "name": f"Hook {n}"}
    return {
        "id": f"evt_hook{n:04d}",
        "type": "product.created",
        "created_at": "2026-11-30T12:00:00.000Z",
        "data": {"object": product},
    }


def inbox_counts(engine: Engine) -> dict[str, int]:
    path = inbox_path(engine.store.path)
    if not path.exists():
        return {}
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())


def title(engine: Engine, sku: str) -> Any:
    record = engine.get("product", sku)
    return None if record is None else record.title


async def wait_until_applied(engine: Engine, events: int) -> None:
    with anyio.fail_after(20):
        while inbox_counts(engine).get("applied", 0) < events:  # noqa: ASYNC110 - another task
            await anyio.sleep(0.02)


# the happy path --------------------------------------------------------------------------


async def test_an_edit_in_salync_reaches_the_mirror_through_a_webhook(
    config: Path, salync: SalyncEmulator
) -> None:
    async with Engine.open(config) as engine:
        await engine.sync("inv", push=False)
        product = next(p for p in salync.workspace.products.values() if not p.has_variants)
        async with receiving(engine) as url:
            live = await engine._connect("inv")
            public = url.removesuffix("/webhooks/inv")
            subscriptions = await live.platform.subscribe_webhooks(
                live.ctx, public + "/webhooks/inv"
            )
            assert {s.event for s in subscriptions} >= {"product.updated", "product.archived"}

            await call(salync, "PATCH", f"/products/{product.id}", {"name": "Renamed by hook"})
            with anyio.fail_after(10):
                await salync.wait_for_webhooks()
            await wait_until_applied(engine, 1)

            assert title(engine, product.sku) == {"en": "Renamed by hook"}
            await call(salync, "POST", f"/products/{product.id}/archive")
            with anyio.fail_after(10):
                await salync.wait_for_webhooks()
            await wait_until_applied(engine, 2)

        assert engine.get("product", product.sku) is None  # archived: a tombstone
        assert all(d.ok for d in salync.webhook_deliveries)
        assert count(engine, "SELECT count(*) FROM cursors WHERE stream = 'products'") == 1


async def test_a_variant_event_fetches_its_product(config: Path, salync: SalyncEmulator) -> None:
    parent = next(p for p in salync.workspace.products.values() if p.has_variants)
    variant = salync.workspace.variants[parent.variant_ids[0]]
    event = {
        "id": "evt_variant_only",
        "type": "variant.updated",
        "created_at": "2026-11-30T12:00:00.000Z",
        "data": {"object": salync.workspace.variant_json(variant), "product_id": parent.id},
    }
    async with Engine.open(config) as engine, receiving(engine, apply=False) as url:
        assert (await post(url, signed(event)))[0] == 200
        await drain(engine, Inbox.beside(engine.store.path))

        assert engine.get("product", parent.sku) is not None
        assert engine.get("variant", variant.sku) is not None


# refused deliveries ----------------------------------------------------------------------


def forged(delivery: Delivery) -> Delivery:
    return signed(orjson.loads(delivery.body), secret="whsec_guessed")


def unsigned(delivery: Delivery) -> Delivery:
    headers = {k: v for k, v in delivery.headers.items() if k != "X-Salync-Signature"}
    return Delivery(headers, delivery.body)


def truncated(delivery: Delivery) -> Delivery:
    return Delivery(delivery.headers, delivery.body[: len(delivery.body) // 2])


def tampered(delivery: Delivery) -> Delivery:
    return Delivery(delivery.headers, delivery.body.replace(b"Hook 1", b"Hook X"))


def not_json(delivery: Delivery) -> Delivery:
    return signed_raw(b'{"id": "evt_1", "type": ')


def not_an_event(delivery: Delivery) -> Delivery:
    return signed_raw(b'["product.created"]')


def oversized(delivery: Delivery) -> Delivery:
    event = orjson.loads(delivery.body)
    event["data"]["object"]["description"] = "x" * 20_000
    return signed(event)


def signed_raw(body: bytes, stamp: str = "1764500000") -> Delivery:
    headers = {"X-Salync-Timestamp": stamp, "X-Salync-Signature": signature(SECRET, stamp, body)}
    return Delivery(headers, body)


@pytest.mark.parametrize(
    ("spoil", "status"),
    [
        (forged, 401),
        (unsigned, 401),
        (truncated, 401),
        (tampered, 401),
        (not_json, 400),
        (not_an_event, 400),
        (oversized, 413),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
async def test_a_bad_delivery_is_refused_logged_and_changes_nothing(
    config: Path,
    salync: SalyncEmulator,
    caplog: pytest.LogCaptureFixture,
    spoil: Any,
    status: int,
) -> None:
    delivery = spoil(signed(new_product_event(salync, 1)))
    async with Engine.open(config) as engine:
        async with receiving(engine, max_body=16_000) as url:
            with caplog.at_level(logging.WARNING, "salync.webhooks"):
                answer, body = await post(url, delivery)

        assert answer == status
        assert "error" in body
        assert inbox_counts(engine) == {}
        assert count(engine, "SELECT count(*) FROM records") == 0
        [line] = [r.getMessage() for r in caplog.records if r.name == "salync.webhooks"]
        assert f"refused with {status}" in line
        assert SECRET not in line
        assert "Hook" not in line


async def test_a_delivery_cut_off_mid_body_changes_nothing(
    config: Path, salync: SalyncEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = signed(new_product_event(salync, 1))
    async with Engine.open(config) as engine, receiving(engine) as url:
        host, port = url.removeprefix("http://").split("/")[0].split(":")
        head = (
            f"POST /webhooks/inv HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(delivery.body)}"
            + "".join(f"\r\n{k}: {v}" for k, v in delivery.headers.items())
            + "\r\n\r\n"
        ).encode()
        with caplog.at_level(logging.WARNING, "salync.webhooks"):
            stream = await anyio.connect_tcp(host, int(port))
            await stream.send(head + delivery.body[:100])
            await stream.aclose()  # the platform's connection drops mid-body
            with anyio.fail_after(5):
                while not any(r.name == "salync.webhooks" for r in caplog.records):  # noqa: ASYNC110
                    await anyio.sleep(0.01)

        assert "truncated" in caplog.records[-1].getMessage()
        assert inbox_counts(engine) == {}


async def test_a_connection_without_webhooks_is_not_found(
    config: Path, salync: SalyncEmulator
) -> None:
    async with Engine.open(config) as engine, receiving(engine) as url:
        answer, _ = await post(url.replace("/inv", "/nobody"), signed(new_product_event(salync, 1)))
    assert answer == 404


# once and only once ----------------------------------------------------------------------


async def test_a_replayed_delivery_is_answered_but_applied_once(
    config: Path, salync: SalyncEmulator
) -> None:
    delivery = signed(new_product_event(salync, 1))
    async with Engine.open(config) as engine, receiving(engine) as url:
        first = await post(url, delivery)
        await wait_until_applied(engine, 1)
        replay = await post(url, delivery)
        resigned = await post(
            url + "/again?retry=2", signed(orjson.loads(delivery.body), stamp="1764500300")
        )
        await drain(engine, Inbox.beside(engine.store.path))

        assert first == (200, {"accepted": 1, "duplicates": 0})
        assert replay == resigned == (200, {"accepted": 0, "duplicates": 1})
        assert count(engine, "SELECT count(*) FROM changes WHERE key = 'HOOK-0001'") == 1


async def test_an_event_the_mirror_applied_is_never_applied_again(
    config: Path, salync: SalyncEmulator
) -> None:
    """The inbox forgot the event (purged, or the process died before marking it applied):
    the mirror's own ledger, written with the event's records, still refuses it."""
    delivery = signed(new_product_event(salync, 1))
    async with Engine.open(config) as engine:
        async with receiving(engine) as url:
            await post(url, delivery)
            await wait_until_applied(engine, 1)
        await engine.upsert("product", "HOOK-0001", {"title": {"en": "Edited in the app"}})
        inbox = Inbox.beside(engine.store.path)
        inbox.conn.execute("UPDATE events SET status = 'pending'")  # as if killed before marking

        report = await drain(engine, inbox)

        assert (report.applied, report.skipped) == (0, 1)
        assert title(engine, "HOOK-0001") == {"en": "Edited in the app"}
        assert count(engine, "SELECT count(*) FROM webhook_events") == 1


async def test_a_thousand_events_with_five_percent_duplicates_apply_once_each(
    config: Path, salync: SalyncEmulator
) -> None:
    events = [signed(new_product_event(salync, n)) for n in range(1000)]
    again = events[::20]  # 50 redeliveries: 5%
    answers: list[tuple[int, Any]] = []
    async with (
        Engine.open(config) as engine,
        receiving(engine) as url,
        aiohttp.ClientSession() as http,
    ):
        limiter = anyio.CapacityLimiter(20)

        async def deliver(delivery: Delivery) -> None:
            async with limiter:
                answers.append(await post(url, delivery, http))

        async with anyio.create_task_group() as tg:
            for delivery in events + again:
                tg.start_soon(deliver, delivery)
        await wait_until_applied(engine, 1000)

        assert [a[0] for a in answers] == [200] * 1050
        assert sum(a[1]["duplicates"] for a in answers) == 50
        assert count(engine, "SELECT count(*) FROM records WHERE key LIKE 'HOOK-%'") == 1000
        assert count(engine, "SELECT count(*) FROM changes WHERE key LIKE 'HOOK-%'") == 1000
        assert count(engine, "SELECT count(*) FROM webhook_events") == 1000
        assert inbox_counts(engine) == {"applied": 1000}


async def test_a_delivery_is_accepted_while_a_sync_holds_the_mirror(
    config: Path, salync: SalyncEmulator
) -> None:
    """The inbox is a file of its own: the answer does not wait for a page transaction."""
    async with Engine.open(config) as engine, receiving(engine) as url:
        writer = sqlite3.connect(engine.store.path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # a long sync page holds the mirror's write lock
        try:
            with anyio.fail_after(10):
                answer = await post(url, signed(new_product_event(salync, 1)))
            assert answer[0] == 200
            assert title(engine, "HOOK-0001") is None
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        await wait_until_applied(engine, 1)
        assert title(engine, "HOOK-0001") == {"en": "Hook 1"}


# a process killed after answering ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_receiver_killed_after_answering_loses_nothing(
    config: Path, salync: SalyncEmulator
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "salync_core", "webhooks", "serve", "--config", str(config)]
    command += ["--port", str(port), "--no-apply"]
    delivery = signed(new_product_event(salync, 7))
    async with await anyio.open_process(command) as server:
        with anyio.fail_after(20):
            while True:
                try:
                    answer = await post(f"http://127.0.0.1:{port}/webhooks/inv", delivery)
                    break
                except aiohttp.ClientConnectionError:
                    await anyio.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        assert await server.wait() == -signal.SIGKILL
    assert answer == (200, {"accepted": 1, "duplicates": 0})

    async with Engine.open(config) as engine:
        assert title(engine, "HOOK-0007") is None
        await engine.sync("inv", streams=["channels"], push=False)  # a sync applies the inbox first

        assert title(engine, "HOOK-0007") == {"en": "Hook 7"}
        assert inbox_counts(engine) == {"applied": 1}


def test_the_inbox_lives_beside_the_mirror() -> None:
    assert inbox_path(Path("/data/salync.db")) == Path("/data/salync.inbox.db")


async def test_a_full_inbox_answers_503_so_the_platform_retries(
    config: Path, salync: SalyncEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with Engine.open(config) as engine, receiving(engine, apply=False) as url:
        other = sqlite3.connect(inbox_path(engine.store.path), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the inbox past its timeout
        try:
            answer, _ = await post(url, signed(new_product_event(salync, 1)))
        finally:
            other.execute("ROLLBACK")
            other.close()
        retried, _ = await post(url, signed(new_product_event(salync, 1)))

    assert (answer, retried) == (503, 200)
    assert "cannot take events" in caplog.text


async def test_subscribe_registers_the_receiver_with_the_platform(
    config: Path, salync: SalyncEmulator
) -> None:
    """`salync webhooks subscribe` as a person runs it, against the Pro workspace."""
    command = [sys.executable, "-m", "salync_core", "webhooks", "subscribe", "inv"]
    command += ["--url", "https://hooks.example.com/", "--config", str(config)]
    result = await anyio.run_process(command, check=False)

    assert result.returncode == 0, result.stderr.decode()
    [endpoint] = salync.webhooks.endpoints.values()
    assert endpoint.url == "https://hooks.example.com/webhooks/inv"
    assert endpoint.secret == SECRET
    assert "product.updated" in endpoint.events
    assert SECRET not in (result.stdout + result.stderr).decode()


def test_the_inbox_forgets_applied_events_only(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "salync.inbox.db")
    try:
        events = [("evt_1", "product.created", {}), ("evt_2", "product.created", {})]
        inbox.receive([InboxDelivery("inv", events, "0" * 64)])
        [first, _] = inbox.due(None, 10)
        inbox.mark_applied([first.row])

        assert inbox.purge_applied("9999-01-01T00:00:00Z") == 1
        assert inbox.counts() == {"pending": 1}
    finally:
        inbox.close()


async def test_stopping_the_receiver_mid_drain_finishes_cleanly(
    config: Path, salync: SalyncEmulator
) -> None:
    """The app stops while the applier is inside a mirror transaction: it finishes that batch,
    closes its run, and nothing waits for ever (the next start applies the rest)."""
    events = [signed(new_product_event(salync, n)) for n in range(300)]
    async with Engine.open(config) as engine:
        async with receiving(engine, apply=False) as url, aiohttp.ClientSession() as http:
            for delivery in events:
                await post(url, delivery, http)
        for _ in range(3):
            with anyio.fail_after(20):
                async with receiving(engine):
                    while inbox_counts(engine).get("applied", 0) == 0:  # noqa: ASYNC110
                        await anyio.sleep(0.001)
        async with receiving(engine):
            await wait_until_applied(engine, 300)

        unfinished = "SELECT count(*) FROM runs WHERE kind = 'webhooks' AND finished_at IS NULL"
        assert count(engine, unfinished) == 0
        assert count(engine, "SELECT count(*) FROM webhook_events") == 300


async def test_stopping_the_receiver_as_a_delivery_arrives_does_not_hang(config: Path) -> None:
    """Python 3.11's ``asyncio.wait_for`` loses a cancellation that lands as the awaited event
    fires; an applier stopped by cancelling it would then run on, and its app's cleanup would
    wait for ever. The applier is stopped by a flag instead."""
    async with Engine.open(config) as engine:
        for _ in range(3):
            app = webhook_app(engine)
            runner = web.AppRunner(app)
            await runner.setup()
            await anyio.sleep(0.05)  # the applier is waiting for news
            app[RECEIVER].news.set()  # news arrives ...
            with anyio.fail_after(10):
                await runner.cleanup()  # ... as the app stops
