"""The Salync emulator, exercised over real HTTP the way a plugin talks to Salync.

Each test states one behaviour a Salync client can rely on (documented or derived; see the
emulator modules' docstrings). Platform time starts at fixed instants so limits and midnight
resets are exact, and the whole file runs in a few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from aiohttp import web
from attrs import define, field
from multidict import CIMultiDictProxy
from salync_inventory.emulator import SalyncEmulator
from salync_inventory.emulator.models import Product

KEY = "sk_test_1"
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BEFORE_MIDNIGHT = datetime(2026, 11, 23, 23, 59, 30, tzinfo=UTC)
MIDNIGHT = int(datetime(2026, 11, 24, tzinfo=UTC).timestamp())

pytestmark = pytest.mark.anyio


# a tiny client -------------------------------------------------------------------------


@define
class Reply:
    status: int
    body: Any
    headers: CIMultiDictProxy[str]

    @property
    def error(self) -> str:
        return str(self.body["error"])


class Client:
    """Just enough of a Salync client: JSON in, JSON out, Bearer auth."""

    def __init__(self, session: aiohttp.ClientSession, emulator: SalyncEmulator, key: str = KEY):
        self.session, self.emulator, self.key = session, emulator, key

    async def call(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        sent = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        url = self.emulator.base_url + path
        async with self.session.request(method, url, json=json, headers=sent) as response:
            return await _reply(response)

    async def get(self, path: str) -> Reply:
        return await self.call("GET", path)

    async def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Reply:
        return await self.call("POST", path, json, headers)

    async def patch(self, path: str, json: Any) -> Reply:
        return await self.call("PATCH", path, json)

    async def admin(self, path: str, json: Any) -> Reply:
        """The emulator's own routes (no auth): what Settings screens and tests use."""
        url = f"{self.emulator.root_url}/_emulator/{path}"
        async with self.session.post(url, json=json) as response:
            return await _reply(response)

    async def list_all(self, path: str, cursor: str | None = None) -> list[dict[str, Any]]:
        """Follow ``next_cursor`` to the end."""
        items: list[dict[str, Any]] = []
        separator = "&" if "?" in path else "?"
        while True:
            page = await self.get(path + (f"{separator}cursor={cursor}" if cursor else ""))
            assert page.status == 200, page.body
            items += page.body["data"]
            cursor = page.body["next_cursor"]
            if cursor is None:
                return items


async def _reply(response: aiohttp.ClientResponse) -> Reply:
    raw = await response.read()
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = raw
    return Reply(response.status, body, response.headers)


@pytest.fixture
async def salync() -> AsyncIterator[SalyncEmulator]:
    """30 seeded products at noon, limits off (the limit tests make their own emulators)."""
    emulator = SalyncEmulator(products=30, seed=7, start=NOON, rate_limit=False)
    async with emulator.running():
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def api(salync: SalyncEmulator, session: aiohttp.ClientSession) -> Client:
    return Client(session, salync)


def stocked_product(emulator: SalyncEmulator, at_least: int = 10) -> Product:
    """A seeded product without variants holding ``at_least`` units at loc_main."""
    ws = emulator.workspace
    return next(
        product
        for product in ws.products.values()
        if not product.has_variants and ws.on_hand(product.id, "loc_main") >= at_least
    )


# authentication and plans --------------------------------------------------------------


async def test_a_request_without_a_valid_key_is_unauthorized(api: Client) -> None:
    for key in ("", "sk_unknown"):
        reply = await Client(api.session, api.emulator, key).get("/products")
        assert reply.status == 401
        assert reply.body == {"error": "unauthorized", "message": "Missing or invalid API key"}


async def test_a_revoked_key_stays_invalid(api: Client) -> None:
    assert (await api.admin("keys", {"add": "sk_second"})).status == 200
    assert (await api.admin("keys", {"revoke": KEY})).status == 200

    reply = await api.get("/products")
    assert (reply.status, reply.error) == (401, "api_key_revoked")
    assert (await Client(api.session, api.emulator, "sk_second").get("/products")).status == 200
    assert (await api.admin("keys", {"add": KEY})).status == 400  # revoked means for good


async def test_the_starter_plan_has_no_api_access(session: aiohttp.ClientSession) -> None:
    emulator = SalyncEmulator(products=3, plan="starter")
    async with emulator.running():
        reply = await Client(session, emulator).get("/products")
    assert (reply.status, reply.error) == (403, "plan_not_supported")


async def test_https_mode_serves_tls_and_refuses_plain_http(
    session: aiohttp.ClientSession,
) -> None:
    emulator = SalyncEmulator(products=3, tls=True)
    async with emulator.running() as base_url:
        assert base_url.startswith("https://127.0.0.1:")
        assert emulator.ca_path is not None
        assert emulator.plain_url is not None
        auth = {"Authorization": f"Bearer {KEY}"}
        async with session.get(emulator.plain_url + "/products", headers=auth) as plain:
            assert plain.status == 403
            assert await plain.json() == {
                "error": "https_required",
                "message": "Requests made over HTTP will be rejected.",
            }
        trusted = ssl.create_default_context(cafile=str(emulator.ca_path))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as tls:
            reply = await Client(tls, emulator).get("/products?limit=1")
    assert reply.status == 200
    assert len(reply.body["data"]) == 1


# rate limits -----------------------------------------------------------------------------


async def test_the_burst_limit_answers_429_until_the_minute_ends(
    session: aiohttp.ClientSession,
) -> None:
    emulator = SalyncEmulator(products=3, start=NOON)  # Growth: 500/day, 20/minute
    async with emulator.running():
        api = Client(session, emulator)
        replies = [await api.get("/channels") for _ in range(21)]

    assert [r.status for r in replies[:20]] == [200] * 20
    first, refused = replies[0], replies[20]
    assert first.headers["X-RateLimit-Limit"] == "500"
    assert first.headers["X-RateLimit-Remaining"] == "499"
    assert first.headers["X-RateLimit-Burst-Limit"] == "20"
    assert first.headers["X-RateLimit-Burst-Reset"] == str(int(NOON.timestamp()) + 60)
    assert refused.status == 429
    assert refused.error == "rate_limited"
    assert 59 <= int(refused.headers["Retry-After"]) <= 60  # platform seconds to 12:01
    assert refused.headers["X-RateLimit-Burst-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Remaining"] == "480"  # a refusal costs no quota


async def test_the_daily_quota_resets_at_midnight_utc(session: aiohttp.ClientSession) -> None:
    emulator = SalyncEmulator(products=3, start=BEFORE_MIDNIGHT)
    async with emulator.running():
        api = Client(session, emulator)
        await api.admin("config", {"daily_limit": 3})  # a custom plan keeps the test short
        used = [await api.get("/suppliers") for _ in range(3)]
        refused = await api.get("/suppliers")
        await api.admin("clock", {"advance_seconds": 31})  # past midnight
        next_day = await api.get("/suppliers")

    assert [r.headers["X-RateLimit-Remaining"] for r in used] == ["2", "1", "0"]
    assert used[0].headers["X-RateLimit-Reset"] == str(MIDNIGHT)
    assert (refused.status, refused.error) == (429, "rate_limited")
    assert 29 <= int(refused.headers["Retry-After"]) <= 30  # seconds to midnight
    assert next_day.status == 200
    assert next_day.headers["X-RateLimit-Remaining"] == "2"
    assert next_day.headers["X-RateLimit-Reset"] == str(MIDNIGHT + 86_400)


async def test_lying_headers_overstate_what_remains(session: aiohttp.ClientSession) -> None:
    emulator = SalyncEmulator(products=3, start=NOON)
    async with emulator.running():
        api = Client(session, emulator)
        await api.admin("config", {"daily_limit": 3, "lying_headers": True})
        replies = [await api.get("/channels") for _ in range(4)]

    assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["3"] * 4
    assert [r.status for r in replies] == [200, 200, 200, 429]  # the truth still applies


# listings --------------------------------------------------------------------------------


async def test_paging_never_skips_an_item_changed_mid_listing(api: Client) -> None:
    first = await api.get("/products?limit=10")
    served = {p["id"] for p in first.body["data"]}
    not_yet_served = next(p for p in api.emulator.workspace.products.values() if p.id not in served)
    renamed = await api.patch(f"/products/{not_yet_served.id}", {"name": "Renamed mid-listing"})
    assert renamed.status == 200

    rest = await api.list_all("/products?limit=10", cursor=first.body["next_cursor"])

    everything = first.body["data"] + rest
    assert {p["id"] for p in everything} == set(api.emulator.workspace.products)
    positions = [(p["updated_at"], p["id"]) for p in everything]
    assert positions == sorted(positions)  # ascending (updated_at, id)
    assert rest[-1] == renamed.body  # it moved behind the cursor and was still served, once
    assert [p["id"] for p in rest].count(not_yet_served.id) == 1


async def test_updated_since_is_inclusive(api: Client) -> None:
    products = await api.list_all("/products?limit=100")
    middle = products[len(products) // 2]["updated_at"]

    since = await api.list_all(f"/products?updated_since={middle}")

    assert since == products[len(products) // 2 :]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "cursor=not-a-cursor",
        "updated_since=yesterday",
        "updated_since=2026-11-01T00:00:00",  # no zone
        "include_archived=maybe",
        "page=2",
    ],
)
async def test_bad_listing_parameters_are_refused(api: Client, query: str) -> None:
    reply = await api.get(f"/products?{query}")
    assert (reply.status, reply.error) == (400, "invalid_parameter")


async def test_every_resource_lists_with_the_same_envelope(api: Client) -> None:
    channel = next(iter(api.emulator.workspace.channels))
    for path in [
        "/suppliers",
        "/purchase-orders?status=received",
        "/channels",
        f"/channels/{channel}/listings",
        "/stock?location_id=loc_main",
        "/stock/adjustments?type=po_receipt",
    ]:
        reply = await api.get(path)
        assert reply.status == 200, (path, reply.body)
        assert set(reply.body) == {"data", "next_cursor"}
        assert reply.body["data"], path
    assert len((await api.get("/suppliers")).body["data"]) == 5
    assert len((await api.get("/channels")).body["data"]) == 3


# products and variants -------------------------------------------------------------------


async def test_a_product_is_found_by_id_and_by_sku(api: Client) -> None:
    product = stocked_product(api.emulator)
    by_id = await api.get(f"/products/{product.id}")
    by_sku = await api.get(f"/products/sku/{product.sku}")
    missing = await api.get("/products/sku/WIDGET-001")

    assert by_id.body == by_sku.body
    assert by_id.body["id"].startswith("prd_")
    assert by_id.body["stock_on_hand"] == api.emulator.stock_on_hand(product.sku, None)
    assert missing.status == 404
    assert missing.body == {
        "error": "product_not_found",
        "message": "No product found with SKU WIDGET-001",
    }


async def test_creating_a_product_validates_its_sku(api: Client) -> None:
    created = await api.post("/products", {"sku": "MUG-NEW", "name": "New mug", "sell_price": 12.5})
    nameless = await api.post("/products", {"name": "No SKU"})
    duplicate = await api.post("/products", {"sku": "MUG-NEW", "name": "Again"})
    misspelt = await api.post("/products", {"sku": "MUG-2", "name": "Mug", "sell_prise": "1.00"})

    assert created.status == 201
    assert created.body["sell_price"] == "12.50"
    assert created.body["currency"] == "GBP"
    assert created.body["created_at"].endswith("Z")
    assert (nameless.status, nameless.error) == (422, "validation_failed")
    assert nameless.body["message"] == "sku is required"
    assert (duplicate.status, duplicate.error) == (409, "sku_taken")
    assert (misspelt.status, misspelt.error) == (422, "validation_failed")


async def test_archived_products_are_tombstones_not_deletions(api: Client) -> None:
    product = stocked_product(api.emulator)
    archived = await api.post(f"/products/{product.id}/archive", {})

    default = await api.list_all("/products")
    with_archived = await api.list_all("/products?include_archived=true")
    changed = await api.get(
        f"/products?include_archived=true&updated_since={archived.body['updated_at']}"
    )

    assert archived.status == 200
    assert archived.body["archived_at"] == archived.body["updated_at"]
    assert product.id not in {p["id"] for p in default}
    assert product.id in {p["id"] for p in with_archived}
    assert [p["id"] for p in changed.body["data"]] == [product.id]  # how a sync learns of it
    edit = await api.patch(f"/products/{product.id}", {"name": "Too late"})
    assert (edit.status, edit.error) == (409, "product_archived")


async def test_generating_variants_sets_the_product_stock_to_zero(api: Client) -> None:
    product = stocked_product(api.emulator)
    options = [
        {"name": "Size", "values": ["S", "M"]},
        {"name": "Colour", "values": ["Red", "Blue", "Green"]},
    ]

    reply = await api.post(f"/products/{product.id}/variants/generate", {"options": options})

    assert reply.status == 201
    assert reply.body["has_variants"] is True
    assert len(reply.body["variants"]) == 6
    assert reply.body["stock_on_hand"] == 0
    assert {v["stock_on_hand"] for v in reply.body["variants"]} == {0}
    assert api.emulator.workspace.on_hand(product.id) == 0
    variant = reply.body["variants"][0]
    assert variant["id"].startswith("var_")
    assert variant["option_values"] == {"Size": "S", "Colour": "Red"}
    locked = await api.patch(f"/products/{product.id}", {"sell_price": "9.99"})
    assert (locked.status, locked.error) == (422, "validation_failed")
    repriced = await api.patch(f"/variants/{variant['id']}", {"sell_price": "9.99"})
    assert repriced.body["sell_price"] == "9.99"


async def test_at_most_three_option_types(api: Client) -> None:
    product = stocked_product(api.emulator)
    options = [{"name": name, "values": ["a", "b"]} for name in ("A", "B", "C", "D")]
    reply = await api.post(f"/products/{product.id}/variants/generate", {"options": options})
    assert (reply.status, reply.error) == (422, "validation_failed")


# stock -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adjustment", "change"),
    [
        ({"type": "sale"}, -3),
        ({"type": "write_off"}, -3),
        ({"type": "po_receipt"}, +3),
        ({"type": "manual", "direction": "increase"}, +3),
        ({"type": "manual", "direction": "decrease"}, -3),
    ],
)
async def test_the_adjustment_type_gives_the_sign(
    api: Client, adjustment: dict[str, str], change: int
) -> None:
    sku = stocked_product(api.emulator).sku
    before = api.emulator.stock_on_hand(sku)

    reply = await api.post("/stock/adjustments", {"sku": sku, "quantity": 3, **adjustment})

    assert reply.status == 201
    assert reply.body["adjustment"]["id"].startswith("adj_")
    assert reply.body["adjustment"]["date"] == "2026-11-23"  # today, platform time
    assert api.emulator.stock_on_hand(sku) == before + change
    assert reply.body["levels"][0]["on_hand"] == before + change


async def test_a_transfer_moves_stock_between_locations(api: Client) -> None:
    sku = stocked_product(api.emulator).sku
    main, backroom = (
        api.emulator.stock_on_hand(sku, place) for place in ("loc_main", "loc_backroom")
    )
    transfer = {
        "sku": sku,
        "type": "transfer",
        "quantity": 4,
        "from_location_id": "loc_main",
        "to_location_id": "loc_backroom",
    }

    reply = await api.post("/stock/adjustments", transfer)

    assert reply.status == 201
    assert api.emulator.stock_on_hand(sku, "loc_main") == main - 4
    assert api.emulator.stock_on_hand(sku, "loc_backroom") == backroom + 4
    assert [level["location_id"] for level in reply.body["levels"]] == ["loc_main", "loc_backroom"]


@pytest.mark.parametrize("quantity", [0, -2, 1.5, "3"])
async def test_a_quantity_is_a_positive_integer(api: Client, quantity: Any) -> None:
    sku = stocked_product(api.emulator).sku
    reply = await api.post("/stock/adjustments", {"sku": sku, "type": "sale", "quantity": quantity})
    assert (reply.status, reply.error) == (422, "invalid_quantity")


async def test_stock_rules_refuse_what_salync_would(api: Client) -> None:
    sku = stocked_product(api.emulator).sku
    on_hand = api.emulator.stock_on_hand(sku)
    too_many = await api.post(
        "/stock/adjustments", {"sku": sku, "type": "sale", "quantity": on_hand + 1}
    )
    undirected = await api.post("/stock/adjustments", {"sku": sku, "type": "manual", "quantity": 1})
    future = await api.post(
        "/stock/adjustments", {"sku": sku, "type": "sale", "quantity": 1, "date": "2026-12-01"}
    )
    backdated = await api.post(
        "/stock/adjustments", {"sku": sku, "type": "sale", "quantity": 1, "date": "2026-11-01"}
    )

    assert (too_many.status, too_many.error) == (422, "insufficient_stock")
    assert (undirected.status, undirected.error) == (422, "validation_failed")
    assert (future.status, future.error) == (422, "validation_failed")
    assert backdated.status == 201
    assert backdated.body["adjustment"]["date"] == "2026-11-01"
    history = await api.get(f"/stock/adjustments?sku={sku}")
    assert [a["id"] for a in history.body["data"]] == [backdated.body["adjustment"]["id"]]


# purchase orders -------------------------------------------------------------------------


async def test_a_purchase_order_moves_step_by_step_and_receipt_adds_stock(api: Client) -> None:
    product = stocked_product(api.emulator)
    supplier = next(s for s in api.emulator.workspace.suppliers.values() if s.moq)
    before = api.emulator.stock_on_hand(product.sku)
    order = {"supplier_id": supplier.id, "line_items": [{"sku": product.sku, "quantity": 1}]}

    created = await api.post("/purchase-orders", order)
    po = f"/purchase-orders/{created.body['id']}"
    statuses = [
        (await api.patch(po, {"status": s})).status for s in ("sent", "confirmed", "in_transit")
    ]
    frozen = await api.patch(po, {"expected_delivery_date": "2026-12-24"})
    skipped = await api.patch(po, {"status": "cancelled"})
    received = await api.patch(po, {"status": "received"})

    assert created.status == 201
    assert created.body["status"] == "draft"
    assert created.body["line_items"][0]["unit_cost"] == f"{product.cost_price:.2f}"
    assert "below_moq" in [w["code"] for w in created.body["warnings"]]  # accepted anyway
    assert statuses == [200, 200, 200]
    assert (frozen.status, frozen.error) == (409, "purchase_order_not_editable")
    assert (skipped.status, skipped.error) == (409, "invalid_status_transition")
    assert received.body["status"] == "received"
    assert api.emulator.stock_on_hand(product.sku) == before + 1
    receipts = await api.get(f"/stock/adjustments?sku={product.sku}&type=po_receipt")
    assert [a["reference"] for a in receipts.body["data"]][-1] == created.body["number"]


async def test_a_cancelled_purchase_order_adds_no_stock(api: Client) -> None:
    product = stocked_product(api.emulator)
    supplier = next(iter(api.emulator.workspace.suppliers))
    before = api.emulator.stock_on_hand(product.sku)
    order = {
        "supplier_id": supplier,
        "status": "sent",
        "line_items": [{"sku": product.sku, "quantity": 50, "unit_cost": "2.00"}],
    }

    created = await api.post("/purchase-orders", order)
    cancelled = await api.patch(f"/purchase-orders/{created.body['id']}", {"status": "cancelled"})
    revived = await api.patch(f"/purchase-orders/{created.body['id']}", {"status": "confirmed"})

    assert cancelled.body["status"] == "cancelled"
    assert (revived.status, revived.error) == (409, "purchase_order_not_editable")
    assert api.emulator.stock_on_hand(product.sku) == before


# idempotency and faults ------------------------------------------------------------------


async def test_a_retried_post_with_an_idempotency_key_applies_once(api: Client) -> None:
    sku = stocked_product(api.emulator).sku
    before = api.emulator.stock_on_hand(sku)
    sale = {"sku": sku, "type": "sale", "quantity": 2}
    key = {"Idempotency-Key": "sale-42"}

    first = await api.post("/stock/adjustments", sale, key)
    retry = await api.post("/stock/adjustments", sale, key)
    conflict = await api.post("/stock/adjustments", {**sale, "quantity": 3}, key)

    assert first.status == retry.status == 201
    assert retry.body == first.body
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert (conflict.status, conflict.error) == (409, "idempotency_conflict")
    assert api.emulator.stock_on_hand(sku) == before - 2
    assert api.emulator.applied_writes["POST /v1/stock/adjustments"] == 1


async def test_a_write_whose_answer_was_lost_is_replayed_not_repeated(api: Client) -> None:
    sku = stocked_product(api.emulator).sku
    before = api.emulator.stock_on_hand(sku)
    api.emulator.faults.update({"truncate": 1, "path": "/stock/adjustments"})
    sale, key = {"sku": sku, "type": "sale", "quantity": 1}, {"Idempotency-Key": "lost-answer"}

    broken = await api.post("/stock/adjustments", sale, key)
    retry = await api.post("/stock/adjustments", sale, key)

    assert isinstance(broken.body, bytes)  # half a JSON document
    assert retry.status == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert api.emulator.stock_on_hand(sku) == before - 1


async def test_injected_faults_speak_salyncs_error_format(api: Client) -> None:
    api.emulator.faults.update({"server_errors": 1, "rate_limited": 1, "html_errors": 1})

    throttled = await api.get("/products")  # the toolkit checks 429 before the others
    proxy = await api.get("/products")
    broken = await api.get("/products")
    healthy = await api.get("/products")

    assert (throttled.status, throttled.error, throttled.headers["Retry-After"]) == (
        429,
        "rate_limited",
        "1",
    )
    assert proxy.status == 502
    assert proxy.headers["Content-Type"].startswith("text/html")
    assert broken.status == 503
    assert broken.body == {"error": "server_error", "message": "Injected server error"}
    assert healthy.status == 200


# channels --------------------------------------------------------------------------------


async def test_a_channel_going_into_error_is_visible_to_a_sync(api: Client) -> None:
    channel = next(
        c for c in api.emulator.workspace.channels.values() if c.connection_status == "connected"
    )
    sku = stocked_product(api.emulator).sku

    await api.admin(f"channels/{channel.id}/status", {"connection_status": "error"})
    await api.admin(
        f"channels/{channel.id}/listings/{sku}", {"state": "error", "message": "Missing GTIN"}
    )

    shown = await api.get(f"/channels/{channel.id}")
    errors = await api.get(f"/channels/{channel.id}/listings?state=error")
    assert shown.body["connection_status"] == "error"
    assert shown.body["updated_at"].startswith("2026-11-23T12:00")
    assert {"sku": sku, "state": "error", "message": "Missing GTIN"}.items() <= errors.body["data"][
        -1
    ].items()


# webhooks --------------------------------------------------------------------------------


@define
class Receiver:
    """A webhook endpoint that answers with ``failures`` first, then 200."""

    failures: list[int] = field(factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.failures.pop(0) if self.failures else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/salync", endpoint.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    endpoint.url = f"http://127.0.0.1:{site.port}/hooks/salync"
    yield endpoint
    await runner.cleanup()


@pytest.fixture
async def pro(session: aiohttp.ClientSession) -> AsyncIterator[Client]:
    """A Pro workspace whose platform time runs 1000 times faster (retries take milliseconds)."""
    emulator = SalyncEmulator(products=10, plan="pro", time_scale=1000, rate_limit=False)
    async with emulator.running():
        yield Client(session, emulator)


async def test_webhooks_are_signed_with_the_shared_secret(pro: Client, receiver: Receiver) -> None:
    config = {"url": receiver.url, "secret": "whsec_test", "events": ["stock.adjusted"]}
    assert (await pro.admin("webhooks", config)).status == 201
    sku = stocked_product(pro.emulator, 1).sku

    await pro.post("/stock/adjustments", {"sku": sku, "type": "sale", "quantity": 1})
    with anyio.fail_after(2):
        await pro.emulator.wait_for_webhooks()

    [(headers, body)] = receiver.received
    signed = headers["X-Salync-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(b"whsec_test", signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Salync-Signature"], expected)
    event = orjson.loads(body)
    assert headers["X-Salync-Event"] == event["type"] == "stock.adjusted"
    assert event["id"].startswith("evt_")
    assert event["data"]["object"]["sku"] == sku


async def test_a_failed_webhook_is_retried_with_backoff(pro: Client, receiver: Receiver) -> None:
    receiver.failures = [500, 503]
    pro.emulator.add_webhook(receiver.url, "whsec_test", ["product.created"])

    await pro.post("/products", {"sku": "HOOK-1", "name": "Hooked"})
    with anyio.fail_after(2):
        deliveries = await pro.emulator.wait_for_webhooks()

    assert [(d.attempt, d.status) for d in deliveries] == [(1, 500), (2, 503), (3, 200)]
    assert len({d.delivery_id for d in deliveries}) == 1  # one delivery, three attempts
    stamps = [int(d.headers["X-Salync-Timestamp"]) for d in deliveries]
    assert stamps[1] - stamps[0] >= 10  # platform seconds of backoff
    assert stamps[2] - stamps[1] >= 60


async def test_webhooks_need_the_pro_plan(api: Client) -> None:
    reply = await api.admin(
        "webhooks", {"url": "http://127.0.0.1:9/", "secret": "s", "events": ["*"]}
    )
    assert (reply.status, reply.error) == (403, "plan_not_supported")


# seeded data -----------------------------------------------------------------------------


def test_the_seeded_workspace_is_deterministic_and_varied() -> None:
    first, second = (SalyncEmulator(products=30, seed=7, start=NOON) for _ in range(2))
    ws = first.workspace

    assert [ws.product_json(p) for p in ws.products.values()] == [
        second.workspace.product_json(p) for p in second.workspace.products.values()
    ]
    with_variants = [p for p in ws.products.values() if p.has_variants]
    assert len(with_variants) == 10
    assert all(1 <= len(p.options) <= 3 and len(p.variant_ids) <= 6 for p in with_variants)
    assert {po.status for po in ws.purchase_orders.values()} == {
        "draft",
        "sent",
        "confirmed",
        "in_transit",
        "received",
        "cancelled",
    }
    assert len(ws.suppliers) == 5
    assert len(ws.channels) == 3
