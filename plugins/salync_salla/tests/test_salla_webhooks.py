"""Salla webhooks end to end: the emulator's signed deliveries (one subscription per URL, with
retries and duplicates) reach the receiver at ``/webhooks/shop/<event>`` and the mirror, once."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from conftest import CLIENT_ID, CLIENT_SECRET, salla_connection
from salync_salla.emulator import SallaEmulator
from salync_salla.emulator.webhooks import php_json

from salync_core import Engine, webhook_app
from salync_core.secrets import Secret
from salync_core.store.inbox import Inbox
from salync_core.testing.config import write_config
from salync_core.webhooks.applier import drain

pytestmark = pytest.mark.anyio

SECRET = "salla_whsec_51c0e8d2"


@pytest.fixture
async def salla() -> AsyncIterator[SallaEmulator]:
    """A small Plus store whose platform time runs 60 times faster (retries take seconds)."""
    emulator = SallaEmulator(
        products=12,
        seed=8,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        time_scale=60.0,
        start=datetime.now(UTC) - timedelta(days=1),
        rate_limit=False,
        webhook_secret="the-app-secret-we-do-not-use",
    )
    async with emulator.running():
        yield emulator


@pytest.fixture
async def engine(tmp_path: Path, keyed: Path, salla: SallaEmulator) -> AsyncIterator[Engine]:
    """An engine with a connection ``shop`` installed on the store and synced once."""
    config = write_config(
        tmp_path, {"shop": salla_connection(salla, webhook_secret=SECRET, rate_limits="none")}
    )
    async with Engine.open(config) as opened:
        tokens = salla.issue_tokens()
        await opened.set_secrets(
            "shop",
            {
                "access_token": Secret(tokens["access_token"]),
                "refresh_token": Secret(tokens["refresh_token"]),
            },
        )
        await opened.sync("shop", ["products"], push=False)
        yield opened


@contextlib.asynccontextmanager
async def receiving(engine: Engine, *, apply: bool = True) -> AsyncIterator[str]:
    """The webhook application on loopback; yields the public base URL to subscribe with."""
    runner = web.AppRunner(webhook_app(engine, apply=apply))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def subscribe(engine: Engine, public: str) -> list[Any]:
    live = await engine._connect("shop")
    return list(await live.platform.subscribe_webhooks(live.ctx, f"{public}/webhooks/shop"))


async def settle(engine: Engine, salla: SallaEmulator, applied: int) -> None:
    """Wait for the emulator's deliveries, then for the receiver to apply ``applied`` events."""
    with anyio.fail_after(20):
        await salla.webhooks.idle()
        inbox = Inbox.beside(engine.store.path)
        try:
            while inbox.counts().get("applied", 0) < applied:  # noqa: ASYNC110 - another task
                await anyio.sleep(0.02)
        finally:
            inbox.close()


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status


def title(engine: Engine, key: str) -> Any:
    record = engine.get("product", key)
    return None if record is None else record.title


# subscribing and delivering ----------------------------------------------------------------


async def test_each_event_gets_a_url_of_its_own_and_a_signed_strategy(
    engine: Engine, salla: SallaEmulator
) -> None:
    async with receiving(engine) as public:
        made = await subscribe(engine, public)

    urls = [s.url for s in salla.webhooks.subscriptions.values()]
    assert len(urls) == len(set(urls)) == len(made) == len(salla.webhooks.subscriptions)
    assert {s.event for s in made} >= {"product.deleted", "order.created", "customer.updated"}
    assert all(s.url.startswith(f"{public}/webhooks/shop/") for s in made)
    assert {s.security_strategy for s in salla.webhooks.subscriptions.values()} == {"signature"}


async def test_a_product_edited_then_deleted_in_salla_reaches_the_mirror(
    engine: Engine, salla: SallaEmulator
) -> None:
    product = next(p for p in salla.store.products.values() if p["sku"] and not p["skus"])
    async with receiving(engine) as public:
        await subscribe(engine, public)

        salla.store.update_product(product["id"], {"name": "تيشيرت / أزرق"})
        await settle(engine, salla, 1)
        assert title(engine, product["sku"]) == {"en": "تيشيرت / أزرق"}

        salla.store.delete_product(product["id"])
        await settle(engine, salla, 2)

    assert engine.get("product", product["sku"]) is None
    assert all(a.ok for a in salla.webhooks.attempts)
    assert all(b"\\/" in a.body for a in salla.webhooks.attempts[:1])  # PHP-escaped, still valid


async def test_an_order_placed_in_salla_reaches_the_mirror_with_its_lines(
    engine: Engine, salla: SallaEmulator
) -> None:
    sku = next(p["sku"] for p in salla.store.products.values() if p["sku"] and not p["skus"])
    customer = next(iter(salla.store.customers))
    async with receiving(engine) as public:
        await subscribe(engine, public)
        order = salla.store.place_order(customer, [(sku, 1)])
        await settle(engine, salla, 2)  # order.created and the product's product.updated

    assert engine.get("order", str(order["id"])) is not None
    assert {r["ref"] for r in engine.records("order_line")} == {
        f"{order['id']}:{order['items'][0]['id']}"
    }


async def test_a_partial_order_payload_is_completed_by_fetching_the_order(
    engine: Engine, salla: SallaEmulator
) -> None:
    sku = next(p["sku"] for p in salla.store.products.values() if p["sku"] and not p["skus"])
    order = salla.store.place_order(next(iter(salla.store.customers)), [(sku, 2)])
    body = php_json({"event": "order.created", "merchant": 1, "data": {"id": order["id"]}})
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    async with receiving(engine, apply=False) as public:
        status = await post(
            f"{public}/webhooks/shop/order.created", body, {"X-Salla-Signature": signature}
        )
    await drain(engine, Inbox.beside(engine.store.path))

    assert status == 200
    placed = engine.get("order", str(order["id"]))
    assert placed is not None
    assert placed.status == "under_review"
    assert len(list(engine.records("order_line"))) == 1


async def test_duplicate_deliveries_are_applied_once(engine: Engine, salla: SallaEmulator) -> None:
    salla.webhooks.duplicate_rate = 1.0  # every delivery arrives twice
    product = next(p for p in salla.store.products.values() if p["sku"] and not p["skus"])
    async with receiving(engine) as public:
        await subscribe(engine, public)
        for n in range(5):
            salla.store.update_product(product["id"], {"name": f"Edit {n}"})
        await settle(engine, salla, 5)

    duplicates = [a for a in salla.webhooks.attempts if a.duplicate]
    assert len(duplicates) == 5
    assert all(a.ok for a in duplicates)
    changes = "SELECT count(*) FROM webhook_events WHERE connection = 'shop'"
    assert engine.store.conn.execute(changes).fetchone()[0] == 5


async def test_a_failed_delivery_is_retried_until_the_receiver_answers(
    engine: Engine, salla: SallaEmulator
) -> None:
    salla.webhooks.retry_delays = (6.0, 6.0, 6.0)  # platform seconds: a tenth of a real second
    product = next(p for p in salla.store.products.values() if p["sku"] and not p["skus"])
    async with receiving(engine) as public:
        await subscribe(engine, public)
    # The receiver is gone: the first attempt fails; it is back for the retries.
    salla.store.update_product(product["id"], {"name": "Retried"})
    port = int(public.rsplit(":", 1)[1])
    await anyio.sleep(0.05)
    runner = web.AppRunner(webhook_app(engine))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await settle(engine, salla, 1)
    finally:
        await runner.cleanup()

    attempts = [a.attempt for a in salla.webhooks.attempts]
    assert attempts[0] == 1
    assert attempts[-1] > 1
    assert title(engine, product["sku"]) == {"en": "Retried"}


# refused deliveries --------------------------------------------------------------------------


def by_signature(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Salla-Signature": digest, "X-Salla-Security-Strategy": "Signature"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(by_signature, 200, id="signature"),
        pytest.param(
            lambda b: {
                "X-Salla-Signature": "sha256=" + by_signature(b)["X-Salla-Signature"].upper()
            },
            200,
            id="signature-prefixed-uppercase",
        ),
        pytest.param(lambda b: {"Authorization": SECRET}, 200, id="token"),
        pytest.param(lambda b: by_signature(b, "guessed"), 401, id="forged-signature"),
        pytest.param(lambda b: {"Authorization": "Bearer " + SECRET}, 401, id="token-as-bearer"),
        pytest.param(lambda b: {"X-Salla-Security-Strategy": "Signature"}, 401, id="unsigned"),
        pytest.param(lambda b: {}, 401, id="no-headers"),
    ],
)
async def test_both_published_strategies_are_accepted_and_forgeries_refused(
    engine: Engine, salla: SallaEmulator, headers: Any, status: int
) -> None:
    product = next(p for p in salla.store.products.values() if p["sku"])
    body = php_json({"event": "product.updated", "merchant": 1, "data": {**product, "name": "X"}})
    async with receiving(engine, apply=False) as public:
        answer = await post(f"{public}/webhooks/shop/product.updated", body, headers(body))
    inbox = Inbox.beside(engine.store.path)
    try:
        assert answer == status
        assert inbox.counts() == ({"pending": 1} if status == 200 else {})
    finally:
        inbox.close()


async def test_a_product_deleted_in_salla_takes_its_variants_and_stock_with_it(
    engine: Engine, salla: SallaEmulator
) -> None:
    product = next(p for p in salla.store.products.values() if p["sku"] and len(p["skus"]) > 1)
    skus = [v["sku"] for v in product["skus"]]
    assert all(engine.get("variant", sku) is not None for sku in skus)
    async with receiving(engine) as public:
        await subscribe(engine, public)
        salla.store.delete_product(product["id"])
        await settle(engine, salla, 1)

    assert engine.get("product", product["sku"]) is None
    assert [engine.get("variant", sku) for sku in skus] == [None] * len(skus)
    assert [engine.get("stock_level", f"{sku}@default") for sku in skus] == [None] * len(skus)
    deleted = [c async for c in engine.changes() if c.op == "delete"]
    assert len({c.seq for c in deleted}) == 1 + 2 * len(skus)


async def test_orders_and_customers_edited_in_salla_reach_the_mirror_by_their_updated_events(
    engine: Engine, salla: SallaEmulator
) -> None:
    customer = next(iter(salla.store.customers.values()))
    order = next(iter(salla.store.orders.values()))
    async with receiving(engine) as public:
        await subscribe(engine, public)
        salla.store.update_customer(customer["id"], {"email": "new@example.sa"})
        salla.store.update_order(order["id"], {"total": {"amount": 77, "currency": "SAR"}})
        await settle(engine, salla, 2)

    assert {a.event for a in salla.webhooks.attempts} == {"customer.updated", "order.updated"}
    assert engine.get("customer", str(customer["id"])).email == "new@example.sa"
    assert str(engine.get("order", str(order["id"])).total) == "77.00"


async def test_the_emulator_has_the_kits_faults_and_stats(salla: SallaEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{salla.root_url}/_emulator/faults", json={"server_errors": 1, "path": "/admin/v2"}
        ) as r:
            assert r.status == 200
        token = salla.issue_tokens()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{salla.base_url}/products", headers=auth) as r:
            assert r.status >= 500
        async with http.get(f"{salla.base_url}/products", headers=auth) as r:
            assert r.status == 200
        async with http.get(f"{salla.root_url}/_emulator/stats") as r:
            stats = await r.json()
    assert stats["injected"] == {"server_errors": 1}
    assert stats["by_route"]["GET /admin/v2/products"] == 2


async def test_a_dashboard_edit_through_the_emulators_admin_route_reaches_the_mirror(
    engine: Engine, salla: SallaEmulator
) -> None:
    """What the README has a new user do: edit a product "in Salla" over HTTP, see the webhook
    bring it into the mirror; a bad id is a clear 404, not a crash."""
    product = next(p for p in salla.store.products.values() if p["sku"] and not p["skus"])
    admin = f"{salla.root_url}/_emulator/products"
    async with receiving(engine) as public, aiohttp.ClientSession() as http:
        await subscribe(engine, public)
        async with http.post(f"{admin}/{product['id']}", json={"name": "Mug, blue"}) as answer:
            assert answer.status == 200
        async with http.post(f"{admin}/999999999", json={"name": "nobody"}) as answer:
            assert answer.status == 404
        await settle(engine, salla, 1)

    assert title(engine, product["sku"]) == {"en": "Mug, blue"}
