"""The Sales Layer Catalog API 2.0 emulator, exercised over HTTP the way a client would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDictProxy
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core.testing.clock import ScaledClock

pytestmark = pytest.mark.anyio

KEY = "sl-test-key"
START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
PRODUCTS = 120


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    raw: bytes

    @property
    def body(self) -> Any:
        return orjson.loads(self.raw)


class Client:
    """A thin client: absolute URLs pass through, paths are joined to the API's base URL."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.base_url = session, base_url

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        url = path if path.startswith("http") else self.base_url + path
        async with self.session.request(
            method, url, params=params, json=json, headers=headers
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def get(self, path: str, params: dict[str, str] | None = None, **kw: Any) -> Reply:
        return await self.call("GET", path, params, **kw)

    async def all_pages(self, path: str, params: dict[str, str] | None = None) -> list[Any]:
        """Every item of a listing, following ``@nextLink``."""
        body = (await self.get(path, params)).body
        items = list(body["value"])
        while "@nextLink" in body:
            body = (await self.get(body["@nextLink"])).body
            items += body["value"]
        return items


@pytest.fixture
async def emulator() -> AsyncIterator[SalesLayerEmulator]:
    emulator = SalesLayerEmulator(
        products=PRODUCTS, seed=7, rate_limit=False, clock=ScaledClock(start=START)
    )
    async with emulator.running():
        yield emulator


@pytest.fixture
async def api(emulator: SalesLayerEmulator) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(headers={"X-API-KEY": KEY}) as session:
        yield Client(session, emulator.base_url)


@pytest.fixture
async def anonymous(emulator: SalesLayerEmulator) -> AsyncIterator[Client]:
    """No API key: for the admin routes and the 401."""
    async with aiohttp.ClientSession() as session:
        yield Client(session, emulator.base_url)


# authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-API-KEY": "wrong"}])
async def test_a_request_without_a_valid_key_gets_the_documented_401(
    anonymous: Client, headers: dict[str, str]
) -> None:
    reply = await anonymous.get("/Products", {"$top": "1"}, headers=headers)

    assert reply.status == 401
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.raw == (
        b'{"type":"https://api2.saleslayer.com/errors/unauthorized","title":"Unauthorized",'
        b'"status":401,"detail":"A valid API key is required.","instance":"/rest/Catalog/Products"}'
    )


# listing -------------------------------------------------------------------------------


async def test_a_listing_pages_with_count_and_next_links(api: Client) -> None:
    first = await api.get("/Products")

    assert first.status == 200
    body = first.body
    assert [item["prod_id"] for item in body["value"]] == list(range(1, 101))
    assert body["@count"] == PRODUCTS
    assert body["@readLink"] == api.base_url + "/Products"
    assert body["@nextLink"] == api.base_url + "/Products?$skip=100"

    last = (await api.get(body["@nextLink"])).body
    assert [item["prod_id"] for item in last["value"]] == list(range(101, 121))
    assert last["@count"] == PRODUCTS
    assert "@nextLink" not in last


async def test_top_is_capped_at_100_and_skip_moves_the_window(api: Client) -> None:
    assert len((await api.get("/Products", {"$top": "500"})).body["value"]) == 100

    body = (await api.get("/Products", {"$top": "7", "$skip": "3"})).body
    assert [item["prod_id"] for item in body["value"]] == list(range(4, 11))
    next_page = (await api.get(body["@nextLink"])).body
    assert [item["prod_id"] for item in next_page["value"]] == list(range(11, 18))

    past_the_end = (await api.get("/Products", {"$skip": "500"})).body
    assert past_the_end["value"] == []
    assert past_the_end["@count"] == PRODUCTS
    assert "@nextLink" not in past_the_end


async def test_the_next_link_keeps_the_query(api: Client) -> None:
    params = {"$filter": "prod_stat eq 'V' and prod_id ge 10", "$select": "prod_id, prod_stat"}
    pages = await api.all_pages("/Products", {**params, "$top": "10"})

    assert pages == await api.all_pages("/Products", params)
    assert all(item == {"prod_id": item["prod_id"], "prod_stat": "V"} for item in pages)


async def test_select_returns_only_the_named_fields(api: Client) -> None:
    body = (await api.get("/Products", {"$select": "prod_id, prod_ref", "$top": "2"})).body

    assert body["value"] == [
        {"prod_id": 1, "prod_ref": "PRD-000001"},
        {"prod_id": 2, "prod_ref": "PRD-000002"},
    ]


async def test_localized_fields_carry_every_culture_whatever_the_accept_language(
    api: Client,
) -> None:
    reply = await api.get(
        "/Products(1)", {"$select": "prod_title"}, headers={"Accept-Language": "es"}
    )

    assert set(reply.body["prod_title"]) == {"en", "es", "fr"}
    spanish = reply.body["prod_title"]["es"].replace("'", "''")
    found = await api.get(
        "/Products", {"$filter": f"prod_title eq '{spanish}'"}, headers={"Accept-Language": "es"}
    )
    assert [item["prod_id"] for item in found.body["value"]] == [1]


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"$select": "prod_id,nope"}, "$select"),
        ({"$filter": "prod_id eq"}, "$filter"),
        ({"$filter": "nope eq 1"}, "$filter"),
        ({"$orderby": "prod_id sideways"}, "$orderby"),
        ({"$top": "-1"}, "$top"),
        ({"$skip": "many"}, "$skip"),
        ({"$expand": "Images"}, "$expand"),
        ({"$count": "true"}, "$count"),
    ],
)
async def test_a_malformed_query_is_a_400_naming_the_option(
    api: Client, params: dict[str, str], option: str
) -> None:
    reply = await api.get("/Products", params)

    assert reply.status == 400
    assert list(reply.body["validationFailures"]) == [option]


async def test_filter_by_datetime_list_field_and_in(api: Client) -> None:
    everything = await api.all_pages("/Products")
    since = sorted(item["prod_modify"] for item in everything)[-10]

    recent = await api.all_pages("/Products", {"$filter": f"prod_modify ge {since}"})
    quoted = await api.all_pages("/Products", {"$filter": f"prod_modify ge '{since}'"})
    assert recent == quoted
    assert {item["prod_id"] for item in recent} == {
        item["prod_id"] for item in everything if item["prod_modify"] >= since
    }
    assert len(recent) >= 10

    cat_id = everything[0]["cat_id"][0]
    in_category = await api.all_pages("/Products", {"$filter": f"cat_id eq {cat_id}"})
    assert in_category
    assert in_category == [item for item in everything if cat_id in item["cat_id"]]

    chosen = await api.all_pages("/Products", {"$filter": "prod_id in (3, 5, 8)"})
    assert [item["prod_id"] for item in chosen] == [3, 5, 8]

    refs = await api.all_pages("/Products", {"$filter": "startswith(prod_ref,'PRD-00011')"})
    assert [item["prod_ref"] for item in refs] == [f"PRD-00011{n}" for n in range(10)]


async def test_orderby_sorts_and_pages_in_that_order(api: Client) -> None:
    everything = await api.all_pages("/Products")
    ordered = await api.all_pages("/Products", {"$orderby": "prod_weight desc, prod_id"})

    expected = sorted(everything, key=lambda item: (-item["prod_weight"], item["prod_id"]))
    assert ordered == expected


async def test_expand_variants_with_a_nested_select(
    api: Client, emulator: SalesLayerEmulator
) -> None:
    params = {"$select": "prod_id", "$expand": "Variants($select=frmt_id,frmt_ref)"}
    products = await api.all_pages("/Products", params)

    for product in products:
        assert set(product) == {"prod_id", "Variants", "Variants@count"}
        assert product["Variants@count"] == len(product["Variants"])
        for variant in product["Variants"]:
            assert set(variant) == {"frmt_id", "frmt_ref"}
            assert variant["frmt_ref"].startswith(f"PRD-{product['prod_id']:06d}-")
    counts = [product["Variants@count"] for product in products]
    assert sum(counts) == emulator.summary()["variants"]["live"]
    assert set(counts) == {0, 1, 2, 3}


async def test_expand_products_on_categories(api: Client) -> None:
    params = {"$expand": "Products($select=prod_id,cat_id)", "$select": "cat_id"}
    categories = await api.all_pages("/Categories", params)

    filed = [category for category in categories if category["Products@count"]]
    assert filed
    for category in filed:
        assert all(category["cat_id"] in p["cat_id"] for p in category["Products"])


# single items and metadata -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        ("/Products(3)", "prod_ref", "PRD-000003"),
        ("/Variants(4)", "frmt_id", 4),
        ("/Categories(2)", "cat_ref", "CAT-00002"),
    ],
)
async def test_a_single_item_by_id(api: Client, path: str, key: str, value: Any) -> None:
    reply = await api.get(path)

    assert reply.status == 200
    assert reply.body[key] == value


@pytest.mark.parametrize("path", ["/Products(9999)", "/Variants(0)", "/Categories(x)"])
async def test_a_missing_item_is_a_404_problem(api: Client, path: str) -> None:
    reply = await api.get(path)

    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.body["status"] == 404
    assert reply.body["instance"] == "/rest/Catalog" + path


async def test_an_unknown_resource_is_a_404_problem(api: Client) -> None:
    reply = await api.get("/Brands")

    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.body["instance"] == "/rest/Catalog/Brands"


async def test_metadata_is_a_json_schema(api: Client) -> None:
    schema = (await api.get("/Products/$metadata")).body

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["prod_ref"]
    assert schema["properties"]["prod_stat"] == {
        "type": "string",
        "enum": ["V", "I", "D", "R"],
        "default": "R",
    }
    assert schema["properties"]["prod_modify"]["format"] == "date-time"
    assert (await api.get("/Variants/$metadata")).body["required"] == ["frmt_ref", "prod_id"]


# writes --------------------------------------------------------------------------------


async def test_creating_a_product(api: Client, emulator: SalesLayerEmulator) -> None:
    body = {
        "prod_ref": "PROD_001",
        "prod_title": "Auriculares",
        "cat_id": "4",
        "prod_image": "a.jpg",
    }
    reply = await api.call("POST", "/Products", json=body, headers={"Accept-Language": "es"})

    assert reply.status == 201
    assert reply.raw == b""
    assert reply.headers["Location"] == f"{api.base_url}/Products({PRODUCTS + 1})"
    created = (await api.get(reply.headers["Location"])).body
    assert created["prod_title"] == {"es": "Auriculares"}
    assert created["cat_id"] == [4]
    assert created["cat_ref"] == ["CAT-00004"]
    assert created["prod_image"] == ["a.jpg"]
    assert created["prod_stat"] == "R"
    assert created["prod_creation"] == created["prod_modify"] >= "2026-03-01T10:00:00Z"
    assert emulator.product_by_ref("PROD_001") == created
    assert (await api.get("/Products", {"$top": "1"})).body["@count"] == PRODUCTS + 1


async def test_a_plain_string_is_stored_in_the_default_culture(api: Client) -> None:
    reply = await api.call("POST", "/Products", json={"prod_ref": "P1", "prod_title": "Coat"})

    assert (await api.get(reply.headers["Location"])).body["prod_title"] == {"en": "Coat"}


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({"prod_title": "No reference"}, "Attribute prod_ref is mandatory"),
        ({"prod_ref": ""}, "Attribute prod_ref is mandatory"),
        ({"prod_ref": "PRD-000001"}, "Reference PRD-000001 already exists"),
        ({"prod_ref": "P", "typ_id": "3"}, {"typ_id": ["Unknown field typ_id."]}),
        ({"prod_ref": "P", "prod_id": 7}, {"prod_id": ["prod_id cannot be set."]}),
        ({"prod_ref": "P", "prod_weight": "heavy"}, {"prod_weight": ["Expected a number."]}),
        ({"prod_ref": "P", "prod_stat": "X"}, {"prod_stat": ["Expected one of V, I, D, R."]}),
        ({"prod_ref": "P", "cat_id": [999]}, {"cat_id": ["Category 999 does not exist."]}),
        (
            {"prod_ref": "P", "prod_title": {"de": "x"}},
            {"prod_title": ["Unknown culture de; use en, es, fr."]},
        ),
    ],
)
async def test_a_refused_create_is_a_400(api: Client, body: dict[str, Any], answer: Any) -> None:
    reply = await api.call("POST", "/Products", json=body)

    assert reply.status == 400
    assert reply.body == (answer if isinstance(answer, str) else {"validationFailures": answer})


async def test_a_plain_string_needs_a_culture_the_account_has(api: Client) -> None:
    body = {"prod_ref": "P1", "prod_title": "Mantel"}
    reply = await api.call("POST", "/Products", json=body, headers={"Accept-Language": "de"})

    assert reply.status == 400
    assert "prod_title" in reply.body["validationFailures"]


async def test_updating_a_product(api: Client, emulator: SalesLayerEmulator) -> None:
    before = (await api.get("/Products(3)")).body
    emulator.clock.advance(3600)
    body = {"prod_title": {"es": "Zapatillas"}, "prod_material": "linen", "cat_id": [3, 4]}
    reply = await api.call("PATCH", "/Products(3)", json=body, headers={"Accept-Language": "fr"})

    assert reply.status == 204
    after = (await api.get("/Products(3)")).body
    assert after["prod_title"] == {**before["prod_title"], "es": "Zapatillas"}
    assert after["prod_material"] == {**before["prod_material"], "fr": "linen"}
    assert after["cat_ref"] == ["CAT-00003", "CAT-00004"]
    assert after["prod_modify"] == "2026-03-01T11:00:00Z"
    assert after["prod_creation"] == before["prod_creation"]
    changed = await api.all_pages("/Products", {"$filter": "prod_modify ge 2026-03-01T11:00:00Z"})
    assert [item["prod_id"] for item in changed] == [3]


@pytest.mark.parametrize(
    "field", ["prod_id", "prod_ref", "prod_creation", "cat_ref", "prod_clone_id"]
)
async def test_some_fields_cannot_be_edited(api: Client, field: str) -> None:
    reply = await api.call("PATCH", "/Products(3)", json={field: "x"})

    assert reply.status == 400
    assert list(reply.body["validationFailures"]) == [field]


async def test_updating_a_missing_product_is_a_404(api: Client) -> None:
    assert (await api.call("PATCH", "/Products(9999)", json={"prod_stat": "V"})).status == 404


async def test_deleting_a_product_deletes_its_variants(
    api: Client, emulator: SalesLayerEmulator
) -> None:
    product = next(
        p for p in await api.all_pages("/Products", {"$expand": "Variants"}) if p["Variants"]
    )
    path = f"/Products({product['prod_id']})"

    assert (await api.call("DELETE", path)).status == 204

    assert (await api.get(path)).status == 404
    assert (await api.call("DELETE", path)).status == 404
    assert (await api.call("PATCH", path, json={"prod_stat": "V"})).status == 404
    remaining = {p["prod_id"] for p in await api.all_pages("/Products")}
    assert product["prod_id"] not in remaining
    assert len(remaining) == PRODUCTS - 1
    variant_ids = {v["frmt_id"] for v in await api.all_pages("/Variants")}
    assert variant_ids.isdisjoint(v["frmt_id"] for v in product["Variants"])
    for variant in product["Variants"]:
        assert (await api.get(f"/Variants({variant['frmt_id']})")).status == 404
    assert product["prod_ref"] not in emulator.live_product_refs()
    assert emulator.summary()["products"] == {"live": PRODUCTS - 1, "deleted": 1}
    same_ref = await api.call("POST", "/Products", json={"prod_ref": product["prod_ref"]})
    assert same_ref.status == 201


async def test_creating_updating_and_deleting_a_variant(api: Client) -> None:
    body = {"frmt_ref": "VAR001", "prod_id": "004", "frmt_stat": "D", "frmt_tags": "IA"}
    created = await api.call("POST", "/Variants", json=body)

    assert created.status == 201
    location = created.headers["Location"]
    variant = (await api.get(location)).body
    assert (variant["prod_id"], variant["prod_ref"], variant["frmt_stat"]) == (4, "PRD-000004", "D")
    product = (await api.get("/Products(4)", {"$expand": "Variants($select=frmt_ref)"})).body
    assert {"frmt_ref": "VAR001"} in product["Variants"]

    assert (await api.call("PATCH", location, json={"frmt_price": 19.9})).status == 204
    assert (await api.get(location)).body["frmt_price"] == 19.9
    assert (await api.call("DELETE", location)).status == 204
    product = (await api.get("/Products(4)", {"$expand": "Variants($select=frmt_ref)"})).body
    assert {"frmt_ref": "VAR001"} not in product["Variants"]


@pytest.mark.parametrize(
    ("body", "status"),
    [({"frmt_ref": "V", "prod_id": 9999}, 404), ({"prod_id": 1}, 400), ({"frmt_ref": "V"}, 400)],
)
async def test_a_variant_needs_a_reference_and_a_live_product(
    api: Client, body: dict[str, Any], status: int
) -> None:
    assert (await api.call("POST", "/Variants", json=body)).status == status


async def test_creating_and_moving_a_category(api: Client) -> None:
    created = await api.call("POST", "/Categories", json={"cat_ref": "NEW", "cat_parent_id": 1})
    location = created.headers["Location"]
    assert (await api.get(location)).body["cat_parent_ref"] == "CAT-00001"

    assert (await api.call("PATCH", location, json={"cat_parent_id": None})).status == 204
    assert (await api.get(location)).body["cat_parent_ref"] is None
    cycle = await api.call("PATCH", "/Categories(1)", json={"cat_parent_id": 1})
    assert cycle.status == 400


# rate limit ----------------------------------------------------------------------------


async def test_the_rate_limit_answers_429_with_retry_after() -> None:
    clock = ScaledClock(start=START)
    emulator = SalesLayerEmulator(products=5, clock=clock)
    async with (
        emulator.running() as base_url,
        aiohttp.ClientSession(headers={"X-API-KEY": KEY}) as session,
    ):
        api = Client(session, base_url)
        statuses = [(await api.get("/Categories(1)")).status for _ in range(50)]
        refused = await api.get("/Categories(1)")

        assert statuses == [200] * 50
        assert refused.status == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        assert not any(name.lower().startswith("x-ratelimit") for name in refused.headers)

        clock.advance(10)
        assert (await api.get("/Categories(1)")).status == 200

        admin = f"{emulator.root_url}/_emulator/config"
        async with session.post(admin, json={"rate_limit": False}) as response:
            assert await response.json() == {"rate_limit": False}
        statuses = [(await api.get("/Categories(1)")).status for _ in range(60)]
        assert statuses == [200] * 60


# admin ---------------------------------------------------------------------------------


async def test_touch_modifies_products_for_an_incremental_sync(
    api: Client, anonymous: Client, emulator: SalesLayerEmulator
) -> None:
    before = {p["prod_id"]: p for p in await api.all_pages("/Products")}
    touch = f"{emulator.root_url}/_emulator/touch"
    touched = (await anonymous.call("POST", touch, json={"count": 5, "seed": 3})).body

    assert len(set(touched["ids"])) == 5
    changed = await api.all_pages(
        "/Products", {"$filter": f"prod_modify ge {touched['modified_at']}"}
    )
    assert [p["prod_id"] for p in changed] == touched["ids"]
    for product in changed:
        old_title = before[product["prod_id"]]["prod_title"]
        assert all(product["prod_title"][c] != old_title[c] for c in ("en", "es", "fr"))
    too_many = await anonymous.call("POST", touch, json={"count": PRODUCTS + 1})
    assert too_many.status == 400


async def test_the_catalog_summary(anonymous: Client, emulator: SalesLayerEmulator) -> None:
    summary = (await anonymous.get(f"{emulator.root_url}/_emulator/catalog/summary")).body

    assert summary["products"] == {"live": PRODUCTS, "deleted": 0}
    assert summary["categories"] == {"live": 5, "deleted": 0}
    assert summary == emulator.summary()


# faults --------------------------------------------------------------------------------


async def test_faults_switched_over_http_apply_to_api_routes(
    api: Client, anonymous: Client, emulator: SalesLayerEmulator
) -> None:
    faults = f"{emulator.root_url}/_emulator/faults"
    await anonymous.call("POST", faults, json={"server_errors": 1, "truncate": 1})

    failed = await api.get("/Products")
    assert failed.status == 503
    assert failed.headers["Content-Type"] == "application/problem+json"
    assert failed.body["title"] == "Service Unavailable"
    truncated = await api.get("/Products")
    assert truncated.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated.raw)
    assert (await api.get("/Products")).body["@count"] == PRODUCTS


async def test_injected_429s_and_proxy_pages(api: Client, emulator: SalesLayerEmulator) -> None:
    emulator.faults.update({"rate_limited": 1, "retry_after": "7", "html_errors": 1})

    limited = await api.get("/Products(1)")
    assert (limited.status, limited.headers["Retry-After"]) == (429, "7")
    assert limited.body["status"] == 429
    proxy = await api.get("/Products(1)")
    assert (proxy.status, proxy.headers["Content-Type"]) == (502, "text/html")
    assert (await api.get("/Products(1)")).status == 200


async def test_a_dropped_connection(api: Client, emulator: SalesLayerEmulator) -> None:
    # A POST, because aiohttp quietly retries an idempotent request once when dropped.
    emulator.faults.update({"disconnect": 1})

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", "/Products", json={"prod_ref": "LOST"})
    assert emulator.product_by_ref("LOST") is None
    assert (await api.get("/Products(1)")).status == 200


async def test_the_indexed_changed_since_query_agrees_with_a_full_scan(
    emulator: SalesLayerEmulator, api: Client
) -> None:
    """`X_modify ge T` is answered from an index; the same filter with a no-op clause takes
    the general evaluator. After writes of every kind, both must list the same records."""
    moment = "2026-03-01T10:00:00Z"
    assert (await api.call("PATCH", "/Products(7)", json={"prod_brand": "Changed"})).status == 204
    assert (await api.call("DELETE", "/Products(9)")).status == 204
    created = await api.call("POST", "/Products", json={"prod_ref": "NEW-1"})
    assert created.status == 201
    emulator.clock.advance(60)
    assert (await api.call("PATCH", "/Products(7)", json={"prod_brand": "Again"})).status == 204

    for op in ("ge", "gt"):
        for since in ("2025-01-01T00:00:00Z", moment, "2026-03-01T10:01:00Z"):
            indexed = await api.all_pages("/Products", {"$filter": f"prod_modify {op} {since}"})
            scanned = await api.all_pages(
                "/Products", {"$filter": f"prod_modify {op} {since} and prod_id gt 0"}
            )
            assert [p["prod_id"] for p in indexed] == [p["prod_id"] for p in scanned]
    recent = await api.all_pages("/Products", {"$filter": f"prod_modify ge {moment}"})
    assert {p["prod_ref"] for p in recent} >= {"NEW-1", "PRD-000007"}


# the heavy catalog profile ---------------------------------------------------------------


@pytest.fixture
async def heavy() -> AsyncIterator[Client]:
    emulator = SalesLayerEmulator(
        products=60, seed=7, rate_limit=False, clock=ScaledClock(start=START), profile="heavy"
    )
    async with emulator.running(), aiohttp.ClientSession(headers={"X-API-KEY": KEY}) as session:
        yield Client(session, emulator.base_url)


async def test_a_heavy_catalog_has_custom_fields_and_long_bilingual_descriptions(
    heavy: Client,
) -> None:
    custom = "prod_season,prod_warranty_months,prod_eco_score,prod_features,prod_care"
    params = {"$select": f"prod_id,prod_description,{custom}", "$expand": "Variants"}
    products = await heavy.all_pages("/Products", params)

    descriptions = [p["prod_description"] for p in products]
    assert all(set(d) == {"en", "es"} for d in descriptions)
    assert min(len(text) for d in descriptions for text in d.values()) >= 300
    assert len({d["en"] for d in descriptions}) == len(products)  # one text per product
    assert {type(p["prod_warranty_months"]) for p in products} == {int}
    assert {type(p["prod_features"]) for p in products} == {list}
    assert set(products[0]["prod_care"]) == {"en", "es"}
    assert {len(p["Variants"]) for p in products} == {0, 1, 2, 3}
    assert all(isinstance(v["frmt_stock"], int) for p in products for v in p["Variants"])


async def test_custom_fields_are_fields_of_the_heavy_entity_only(
    heavy: Client, api: Client
) -> None:
    nested = {"$select": "prod_id", "$expand": "Variants($select=frmt_id,frmt_stock)"}
    (first, *_) = (await heavy.get("/Products", nested)).body["value"]
    assert all(set(v) == {"frmt_id", "frmt_stock"} for v in first["Variants"])
    schema = (await heavy.get("/Products/$metadata")).body
    assert schema["properties"]["prod_eco_score"]["type"] == ["number", "null"]
    patched = await heavy.call("PATCH", "/Products(3)", json={"prod_season": "AW27"})
    assert patched.status == 204
    filtered = await heavy.get("/Products", {"$filter": "prod_season eq 'AW27'"})
    assert [p["prod_id"] for p in filtered.body["value"]] == [3]

    refused = await api.get("/Products", {"$select": "prod_id,prod_season"})
    assert refused.status == 400
    assert "$select" in refused.body["validationFailures"]


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="profile"):
        SalesLayerEmulator(products=1, profile="huge")
