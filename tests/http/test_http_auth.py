"""Authentication: static keys, OAuth refresh (once, single-flight, rotated tokens saved before
use), and secrets kept out of messages and logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from aiohttp import web

from salync_core.errors import (
    AuthError,
    ConfigError,
    InsecureURLError,
    ServerError,
    TransportError,
)
from salync_core.http import HttpClient, OAuth2Credentials, OAuthTokens, RetryPolicy
from salync_core.platform import Credentials
from salync_core.secrets import RedactingFilter, Secret, redactor
from salync_core.testing import Emulator
from salync_core.testing.emulator import json_response

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02, max_wait=1.0)
UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "The access token is invalid"}}


class OAuthShop(Emulator):
    """A Salla-like API: bearer access tokens, and single-use refresh tokens that rotate."""

    name = "oauth-shop"
    api_prefix = "/admin/v2"

    def __init__(self, events: list[tuple[str, str]]) -> None:
        super().__init__()
        self.events = events
        self.access, self.refresh, self.rotations = "acc-0", "ref-0", 0
        self.token_hits = 0
        self.accept_tokens = True
        self.token_status = 200
        self.seen: set[str] = set()

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/admin/v2/orders", self.orders)
        router.add_post("/oauth2/token", self.token)

    async def orders(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.seen:
            self.seen.add(token)
            self.events.append(("used", token))
        if not self.accept_tokens or token != self.access:
            return json_response({"status": 401, "success": False, **UNAUTHORIZED}, 401)
        return json_response({"status": 200, "success": True, "data": [{"id": 1}]})

    async def token(self, request: web.Request) -> web.Response:
        self.token_hits += 1
        form = await request.post()
        await anyio.sleep(0.05)  # long enough for every concurrent 401 to queue up behind it
        if self.token_status != 200:
            return json_response({"error": "server_error"}, self.token_status)
        client = (form["grant_type"], form["client_id"], form["client_secret"])
        if client != ("refresh_token", "app", "app-secret"):
            return json_response({"error": "invalid_client"}, 401)
        if form["refresh_token"] != self.refresh:
            self.access = self.refresh = "revoked"
            return json_response({"error": "invalid_grant", "error_description": "reused"}, 400)
        self.rotations += 1
        self.access, self.refresh = f"acc-{self.rotations}", f"ref-{self.rotations}"
        expires = int(self.clock.time()) + 14 * 86400
        return json_response(
            {
                "token_type": "bearer",
                "access_token": self.access,
                "refresh_token": self.refresh,
                "expires": expires,
                "scope": "offline_access",
            }
        )


class Store:
    def __init__(self, events: list[tuple[str, str]], fail: bool = False) -> None:
        self.events, self.fail = events, fail
        self.saved: list[OAuthTokens] = []

    async def save(self, tokens: OAuthTokens) -> None:
        await anyio.sleep(0.01)
        if self.fail:
            raise OSError("disk full")
        self.saved.append(tokens)
        self.events.append(("saved", tokens.access_token.reveal()))


def oauth(shop: OAuthShop, access: str = "acc-stale", **kwargs: Any) -> OAuth2Credentials:
    return OAuth2Credentials(
        secret=Secret(access),
        token_url=shop.root_url + "/oauth2/token",
        client_id="app",
        client_secret=Secret("app-secret"),
        refresh_token=Secret(kwargs.pop("refresh", "ref-0")),
        **kwargs,
    )


def client(shop: Emulator, credentials: Credentials, store: Store | None = None) -> HttpClient:
    return HttpClient(
        connection="salla",
        base_url=shop.base_url,
        credentials=credentials,
        token_store=store,
        retry=FAST,
    )


@pytest.mark.anyio
async def test_a_401_refreshes_once_and_the_rotated_tokens_are_saved_first() -> None:
    events: list[tuple[str, str]] = []
    shop, store = OAuthShop(events), Store(events)
    async with shop.running(), client(shop, oauth(shop), store) as http:
        data, _ = await http.get_json("orders")
        assert data["data"] == [{"id": 1}]
        await http.get_json("orders")
    assert shop.token_hits == 1
    assert events == [("used", "acc-stale"), ("saved", "acc-1"), ("used", "acc-1")]
    assert (http.usage.requests, http.usage.retries) == (3, 1)  # the token request is not API use
    (saved,) = store.saved
    assert saved.refresh_token == Secret("ref-1")
    assert saved.expires_at is not None
    assert saved.expires_at > datetime.now(UTC) + timedelta(days=13)


@pytest.mark.anyio
async def test_ten_concurrent_401s_cause_exactly_one_refresh() -> None:
    events: list[tuple[str, str]] = []
    shop, store = OAuthShop(events), Store(events)
    async with shop.running(), client(shop, oauth(shop), store) as http:
        results: list[Any] = []

        async def fetch() -> None:
            results.append((await http.get_json("orders"))[0])

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(fetch)
    assert len(results) == 10
    assert shop.token_hits == 1
    assert shop.stats.by_status == {401: 10, 200: 10 + 1}  # ten orders, one token request
    assert events.index(("saved", "acc-1")) < events.index(("used", "acc-1"))
    assert len(store.saved) == 1


@pytest.mark.anyio
async def test_a_second_401_after_the_refresh_is_an_auth_error() -> None:
    events: list[tuple[str, str]] = []
    shop = OAuthShop(events)
    shop.accept_tokens = False
    async with shop.running(), client(shop, oauth(shop), Store(events)) as http:
        with pytest.raises(AuthError, match="The access token is invalid") as caught:
            await http.get_json("orders")
    assert caught.value.status == 401
    assert str(caught.value).startswith("salla: GET ")
    assert (shop.token_hits, shop.stats.by_status[401]) == (1, 2)


@pytest.mark.anyio
async def test_a_static_key_is_not_refreshed() -> None:
    shop = OAuthShop([])
    async with (
        shop.running(),
        client(shop, Credentials("bearer", secret=Secret("not-a-token"))) as http,
    ):
        with pytest.raises(AuthError):
            await http.get_json("orders")
    assert (shop.token_hits, shop.stats.requests) == (0, 1)


@pytest.mark.anyio
async def test_tokens_that_cannot_be_saved_are_never_used() -> None:
    events: list[tuple[str, str]] = []
    shop = OAuthShop(events)
    async with shop.running(), client(shop, oauth(shop), Store(events, fail=True)) as http:
        with pytest.raises(AuthError, match="could not be saved") as caught:
            await http.get_json("orders")
    assert isinstance(caught.value.__cause__, OSError)
    assert events == [("used", "acc-stale")]


@pytest.mark.anyio
async def test_an_access_token_about_to_expire_is_refreshed_before_use() -> None:
    events: list[tuple[str, str]] = []
    shop = OAuthShop(events)
    soon = datetime.now(UTC) + timedelta(minutes=1)
    async with (
        shop.running(),
        client(shop, oauth(shop, "acc-0", expires_at=soon), Store(events)) as http,
    ):
        await http.get_json("orders")
    assert events == [("saved", "acc-1"), ("used", "acc-1")]
    assert shop.stats.by_status == {200: 1 + 1}  # the token request, then the orders


@pytest.mark.anyio
async def test_a_spent_refresh_token_is_an_auth_error_with_the_platform_reason() -> None:
    shop = OAuthShop([])
    async with shop.running(), client(shop, oauth(shop, refresh="ref-old"), Store([])) as http:
        with pytest.raises(AuthError, match="invalid_grant - reused"):
            await http.get_json("orders")


@pytest.mark.anyio
async def test_a_token_endpoint_outage_is_retriable_not_fatal() -> None:
    shop = OAuthShop([])
    shop.token_status = 503
    async with shop.running(), client(shop, oauth(shop), Store([])) as http:
        with pytest.raises(ServerError, match="token refresh"):
            await http.get_json("orders")
    assert shop.token_hits == 1  # a refresh is never retried: the grant may have been used


def test_oauth2_needs_a_token_store_and_https_token_endpoint() -> None:
    shop = OAuthShop([])
    shop.root_url = "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match="token_store"):
        client(shop, oauth(shop))
    bad = OAuth2Credentials(
        secret=Secret("a"),
        token_url="http://accounts.example/oauth2/token",
        client_id="app",
        client_secret=Secret("s"),
        refresh_token=Secret("r"),
    )
    with pytest.raises(InsecureURLError, match="plain http"):
        HttpClient(
            connection="salla",
            base_url="https://api.example/v2",
            credentials=bad,
            token_store=Store([]),
        )


class Leaky(Emulator):
    """Echoes the key it was sent in its error messages, as careless platforms do."""

    name = "leaky"

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{what}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("X-API-KEY", "")
        what = request.match_info["what"]
        if what == "forbidden":
            return json_response({"error": "unauthorized", "message": f"bad key {key}"}, 401)
        if what == "invalid":
            return json_response({"message": f"{key} may not write"}, 422)
        return web.Response(status=503, text=f"down, key={key}")


SECRET = "sk-LEAKY-0123456789"


@pytest.mark.anyio
async def test_secrets_stay_out_of_reprs_messages_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="salync")
    credentials = Credentials("header", "X-API-KEY", Secret(SECRET))
    server = Leaky()
    errors: list[Exception] = []
    async with (
        server.running(),
        HttpClient(
            connection="pim",
            base_url=server.base_url,
            credentials=credentials,
            retry=FAST,
        ) as http,
    ):
        for what in ("forbidden", "invalid", "down"):
            with pytest.raises(TransportError) as caught:
                await http.request("POST", what, params={"token": SECRET}, json={"a": 1})
            errors.append(caught.value)
    shown = [repr(credentials), str(credentials.secret), f"{credentials.secret}", caplog.text]
    shown += [f"{e!s} {e!r} {getattr(e, 'url', '')}" for e in errors]
    assert [text for text in shown if SECRET in text] == []
    assert "****" in str(errors[0])
    assert "pim: POST" in caplog.text


def test_the_redacting_filter_masks_a_secret_that_reaches_a_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = Secret("hunter2-but-longer")
    logger = logging.getLogger("salync.test.redaction")
    caplog.handler.addFilter(RedactingFilter([secret]))
    with caplog.at_level(logging.INFO, logger="salync.test.redaction"):
        logger.info("connecting with %s", secret.reveal())
    assert "hunter2" not in caplog.text
    assert "connecting with ****" in caplog.text
    redactor.add(secret)
    assert redactor.redact("x hunter2-but-longer y") == "x **** y"
