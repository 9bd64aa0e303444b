"""Connecting an OAuth 2.0 app to a merchant's account: the authorization-code dance over a
loopback redirect, for ``salync connect`` and host apps.

1. a ``state`` is made (a UUID: its hyphens may be stripped by the platform when it echoes it
   back, as Salla does, so states are compared without hyphens);
2. a one-shot server on ``127.0.0.1`` serves the ``redirect_uri``; the authorize URL (with the
   app's scopes and ``offline_access``) is shown, and opened in a browser when asked;
3. the callback's ``code`` is exchanged at the token endpoint (form POST, the client's id and
   secret in the form, the same ``redirect_uri``);
4. both tokens are committed encrypted in the mirror (clearing any "needs reconnect" mark) and
   the user info endpoint says whom the app was connected to.

A platform takes part by implementing :class:`OAuthPlatform` (``oauth_app(options)``).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

import anyio
from aiohttp import web
from attrs import field, frozen
from yarl import URL

from salync_core import plugins
from salync_core.engine import Engine
from salync_core.engine.connections import resolve_options
from salync_core.errors import AuthError, ConfigError, UnreachableError
from salync_core.http.auth import OAuthTokens, parse_tokens
from salync_core.http.classify import platform_message
from salync_core.http.clock import PlatformClock
from salync_core.http.transport import Outgoing, Timeouts, Transport
from salync_core.http.urls import check_url_security
from salync_core.secrets import Secret, redactor
from salync_core.store.credentials import StoredTokens

CALLBACK_PATH = "/callback"
DEFAULT_TIMEOUT = 600.0
"""Real seconds to wait for the merchant to approve in the browser."""


@frozen
class OAuthApp:
    """An OAuth app registered with a platform, and that platform's endpoints."""

    authorize_url: str
    token_url: str
    userinfo_url: str
    client_id: str
    client_secret: Secret = field(repr=False)
    scopes: tuple[str, ...] = ()


@runtime_checkable
class OAuthPlatform(Protocol):
    """A platform whose connections are authorized with ``salync connect``."""

    def oauth_app(self, options: Mapping[str, Any]) -> OAuthApp: ...


def new_state() -> str:
    return str(uuid.uuid4())


def state_matches(sent: str, echoed: str) -> bool:
    """Whether the echoed ``state`` is ours, hyphens stripped or not (constant time)."""
    return hmac.compare_digest(sent.replace("-", "").encode(), echoed.replace("-", "").encode())


def authorize_link(app: OAuthApp, redirect_uri: str, state: str) -> str:
    scopes = list(app.scopes)
    if "offline_access" not in scopes:
        scopes.insert(0, "offline_access")  # without it there is no refresh token
    query = {
        "client_id": app.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
    }
    return f"{app.authorize_url}?{urlencode(query)}"


class Callback:
    """The loopback ``redirect_uri``: answers the browser once and hands over the query."""

    def __init__(self) -> None:
        self.received: dict[str, str] | None = None
        self._done = anyio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if self.received is None:
            self.received = dict(request.query)
            self._done.set()
        ok = "code" in request.query
        text = "Connected: you can close this tab." if ok else "Not connected; see the terminal."
        return web.Response(text=text, status=200 if ok else 400)

    async def wait(self) -> dict[str, str]:
        await self._done.wait()
        assert self.received is not None
        return self.received


async def connect(
    engine: Engine,
    connection: str,
    *,
    port: int = 0,
    announce: Callable[[str], None] = print,
    open_browser: bool = False,
    approval_seconds: float = DEFAULT_TIMEOUT,
) -> str:
    """Authorize ``connection`` and store its tokens; returns who it was connected to."""
    config = engine.config.connection(connection)
    platform = plugins.platform(config.plugin)
    if not isinstance(platform, OAuthPlatform):
        raise ConfigError(f"{connection}: {config.plugin} connections do not use OAuth")
    box = engine.secret_box()  # before the dance: a code is single-use, never spend it for nothing
    stored = await engine.store.run(engine._stored_secrets, connection)
    app = platform.oauth_app(resolve_options(config, platform, stored))
    for url in (app.authorize_url, app.token_url, app.userinfo_url):
        check_url_security(url, connection=connection)
    redactor.add(app.client_secret)
    callback = Callback()
    server = web.Application()
    server.router.add_get(CALLBACK_PATH, callback.handle)
    runner = web.AppRunner(server, access_log=None, handle_signals=False)
    await runner.setup()
    transport = Transport(connection, Timeouts(), config.ca_file, "salync-core/0.1")
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        redirect_uri = f"http://127.0.0.1:{bound}{CALLBACK_PATH}"
        state = new_state()
        link = authorize_link(app, redirect_uri, state)
        announce(link)
        if open_browser:
            import webbrowser

            webbrowser.open(link)
        with anyio.fail_after(approval_seconds):
            query = await callback.wait()
        code = _code(query, state, connection)
        tokens = await exchange_code(transport, app, code, redirect_uri, connection, config)
        await StoredTokens(engine.store, box, connection, config.plugin).save(tokens)
        return await who(transport, app, tokens, connection)
    finally:
        await transport.close()
        await runner.cleanup()


def _code(query: Mapping[str, str], state: str, connection: str) -> str:
    if "error" in query:
        raise AuthError(
            f"the authorization was refused: {query.get('error_description') or query['error']}",
            connection=connection,
        )
    if not state_matches(state, query.get("state", "")):
        raise AuthError(
            "the callback's state is not ours; nothing was stored", connection=connection
        )
    code = query.get("code", "")
    if not code:
        raise AuthError("the callback carried no code", connection=connection)
    return code


async def exchange_code(
    transport: Transport,
    app: OAuthApp,
    code: str,
    redirect_uri: str,
    connection: str,
    config: Any,
) -> OAuthTokens:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app.client_id,
        "client_secret": app.client_secret.reveal(),
        "redirect_uri": redirect_uri,
    }
    response = await transport.post_form(app.token_url, form)
    if response.status != 200:
        raise AuthError(
            f"the code exchange was refused ({response.status}): {platform_message(response.body)}",
            connection=connection,
            status=response.status,
        )
    none = OAuthTokens(Secret("-"), Secret("-"))
    clock = PlatformClock(getattr(config, "time_scale", 1.0) or 1.0)
    tokens = parse_tokens(response.json(), none, clock.time(), connection)
    if tokens.refresh_token.reveal() == "-":
        raise AuthError(
            "the token endpoint gave no refresh token (is offline_access granted?)",
            connection=connection,
        )
    redactor.add(tokens.access_token)
    redactor.add(tokens.refresh_token)
    return tokens


async def who(transport: Transport, app: OAuthApp, tokens: OAuthTokens, connection: str) -> str:
    """``Name <email>, merchant NAME (id)`` from the user info endpoint (either envelope)."""
    request = Outgoing("GET", URL(app.userinfo_url), None, {"Accept": "application/json"})
    auth = {"Authorization": f"Bearer {tokens.access_token.reveal()}"}
    response = await transport.send(request, auth)
    if isinstance(response, UnreachableError) or response.status != 200:
        return "(the user info endpoint did not answer; the tokens are stored)"
    data = response.json()
    data = data.get("data", data) if isinstance(data, dict) else {}
    merchant = data.get("merchant") if isinstance(data.get("merchant"), dict) else {}
    user = f"{data.get('name', '?')} <{data.get('email', '?')}>"
    if merchant:
        return f"{user}, store {merchant.get('name', '?')} ({merchant.get('id', '?')})"
    return user
