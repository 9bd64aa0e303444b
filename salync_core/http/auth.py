"""Authentication strategies, chosen from :attr:`Credentials.scheme`.

``header`` sends the secret in a named header (``X-API-KEY: key``), ``bearer`` sends
``Authorization: Bearer key``, ``oauth2`` sends a bearer access token and refreshes it with
the refresh-token grant (API-FACTS §3.1).

OAuth refresh is single-flight: a token *generation* is read with the headers of each request;
a refresh takes a lock and only talks to the token endpoint if the generation is still the one
its request failed with, so N concurrent 401s cause one refresh. Refresh tokens may be
single-use (Salla revokes both tokens when one is reused), so the rotated tokens are saved
through the :class:`TokenStore` *before* the new access token is used; if saving fails, the
refresh fails.

A store that is shared between processes (:class:`SharedTokenStore`, the mirror's) makes the
refresh single-flight across them too, and crash-safe:

1. under an exclusive lock on the connection's tokens (another process refreshing waits);
2. the stored tokens are read: if another process already rotated them, they are adopted and
   nothing is sent;
3. the refresh token about to be spent is recorded durably *before* the request is sent;
4. the answer's tokens are committed (clearing that record) before the access token is used.

If the process dies between 3 and 4, the record is still there on the next start: the refresh
token may have been spent, so it is never sent again (Salla would revoke the whole grant); the
connection keeps its access token while that is valid and then needs reconnecting. An error
*answer* from the token endpoint proves the token was not rotated, so the record is cleared.
``invalid_grant`` raises :class:`NeedsReconnect` and marks the connection in the store.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import anyio
from attrs import field, frozen

from salync_core.errors import AuthError, ConfigError, NeedsReconnect, TransportError
from salync_core.http.classify import Action, classify, platform_message
from salync_core.http.clock import PlatformClock
from salync_core.http.response import Response
from salync_core.platform import Credentials
from salync_core.secrets import Secret

REFRESH_MARGIN = timedelta(minutes=5)
"""Refresh an access token this long (platform time) before it expires."""

PostForm = Callable[[str, Mapping[str, str]], Awaitable[Response]]
"""How a strategy reaches its token endpoint: the client's form POST (not paced, no auth)."""


@frozen
class OAuthTokens:
    """An OAuth 2.0 token pair and when the access token expires."""

    access_token: Secret
    refresh_token: Secret
    expires_at: datetime | None = None


class TokenStore(Protocol):
    """Where rotated tokens are persisted; the engine provides one for ``oauth2`` connections."""

    async def save(self, tokens: OAuthTokens) -> None: ...


@frozen
class StoredState:
    """What a shared store holds: the newest tokens, and the fingerprint of a refresh token
    whose refresh was sent but whose answer was never committed."""

    tokens: OAuthTokens | None
    spending: str | None
    reconnect: str | None = None
    """Why the grant is known to be gone (``None``: it is not)."""


@runtime_checkable
class SharedTokenStore(TokenStore, Protocol):
    """A token store other processes use too (see the module docstring)."""

    def exclusive(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def load(self) -> StoredState: ...

    async def begin_refresh(self, fingerprint: str | None) -> None: ...

    async def needs_reconnect(self, reason: str) -> None: ...


def fingerprint(token: Secret) -> str:
    """A refresh token's fingerprint: enough to recognise it, useless to anyone else."""
    return hashlib.sha256(token.reveal().encode()).hexdigest()[:24]


@frozen(kw_only=True)
class OAuth2Credentials(Credentials):
    """``oauth2`` credentials: :attr:`secret` is the current access token."""

    scheme: Literal["header", "bearer", "oauth2", "none"] = "oauth2"
    token_url: str
    client_id: str
    client_secret: Secret = field(repr=False)
    refresh_token: Secret = field(repr=False)
    expires_at: datetime | None = None

    @property
    def tokens(self) -> OAuthTokens:
        if self.secret is None:
            raise ConfigError("oauth2 credentials need an access token (secret)")
        return OAuthTokens(self.secret, self.refresh_token, self.expires_at)


class Auth(Protocol):
    can_refresh: bool

    async def headers(self, post: PostForm) -> tuple[dict[str, str], int]:
        """The headers that authenticate a request, and the token generation they carry."""
        ...

    async def refresh(self, generation: int, post: PostForm) -> None:
        """Get new credentials, unless they changed since ``generation``."""
        ...

    def secrets(self) -> list[Secret]:
        """Every secret this strategy holds, for log redaction."""
        ...


class StaticAuth:
    """Fixed headers (``header``, ``bearer`` and ``none``): nothing to refresh."""

    can_refresh = False

    def __init__(self, headers: dict[str, str], secrets: list[Secret]) -> None:
        self._headers, self._secrets = headers, secrets

    async def headers(self, post: PostForm) -> tuple[dict[str, str], int]:
        return dict(self._headers), 0

    async def refresh(self, generation: int, post: PostForm) -> None:
        raise AssertionError("static credentials cannot be refreshed")

    def secrets(self) -> list[Secret]:
        return list(self._secrets)


class OAuth2Auth:
    """Bearer access token with single-flight refresh and persisted rotation."""

    can_refresh = True

    def __init__(
        self, creds: OAuth2Credentials, store: TokenStore, clock: PlatformClock, connection: str
    ) -> None:
        self.creds, self.store, self.clock, self.connection = creds, store, clock, connection
        self.tokens = creds.tokens
        self.generation = 0
        self._lock: anyio.Lock | None = None

    async def headers(self, post: PostForm) -> tuple[dict[str, str], int]:
        expires = self.tokens.expires_at
        if expires is not None and self.clock.now() >= expires - REFRESH_MARGIN:
            await self.refresh(self.generation, post)
        return {"Authorization": f"Bearer {self.tokens.access_token.reveal()}"}, self.generation

    async def refresh(self, generation: int, post: PostForm) -> None:
        self._lock = self._lock or anyio.Lock()
        async with self._lock:
            if generation != self.generation:
                return  # another request refreshed while this one waited
            store = self.store
            if not isinstance(store, SharedTokenStore):
                tokens = await self._request_tokens(post)
                await self._save(tokens)
                self.tokens, self.generation = tokens, self.generation + 1
                return
            async with store.exclusive():
                await self._refresh_shared(store, post)

    async def _refresh_shared(self, store: SharedTokenStore, post: PostForm) -> None:
        state = await store.load()
        current = self.tokens.refresh_token
        if state.tokens is not None and state.tokens.refresh_token.reveal() != current.reveal():
            self.tokens, self.generation = state.tokens, self.generation + 1
            return  # another process rotated them: use its tokens, spend nothing
        if state.reconnect:
            raise NeedsReconnect(self.connection, state.reconnect)  # no token is sent again
        spending = fingerprint(current)
        if state.spending == spending:
            await self._reconnect(
                store,
                "a refresh with the stored refresh token was interrupted before its "
                "answer was saved, so the token may be spent and is not sent again",
            )
        await store.begin_refresh(spending)
        try:
            tokens = await self._request_tokens(post)
        except AuthError as exc:
            await store.begin_refresh(None)  # an error answer: nothing was rotated
            if exc.status is not None and "invalid_grant" in str(exc):
                await self._reconnect(store, "the platform refused the refresh token")
            raise
        except TransportError as exc:
            if exc.status is not None:
                await store.begin_refresh(None)  # an error answer: nothing was rotated
            raise
        await self._save(tokens)
        self.tokens, self.generation = tokens, self.generation + 1

    async def _reconnect(self, store: SharedTokenStore, why: str) -> None:
        await store.needs_reconnect(why)
        raise NeedsReconnect(self.connection, why)

    def secrets(self) -> list[Secret]:
        return [self.tokens.access_token, self.tokens.refresh_token, self.creds.client_secret]

    async def _request_tokens(self, post: PostForm) -> OAuthTokens:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.tokens.refresh_token.reveal(),
            "client_id": self.creds.client_id,
            "client_secret": self.creds.client_secret.reveal(),
        }
        response = await post(self.creds.token_url, form)
        verdict = classify(response.status, response.body)
        if verdict.action is Action.OK:
            return parse_tokens(response.json(), self.tokens, self.clock.time(), self.connection)
        error = verdict.error if verdict.action is Action.RETRY and verdict.error else AuthError
        code = _oauth_error(response)
        raise error(
            f"token refresh refused ({response.status}): {code}{platform_message(response.body)}",
            connection=self.connection,
            status=response.status,
            url=self.creds.token_url,
        )

    async def _save(self, tokens: OAuthTokens) -> None:
        try:
            await self.store.save(tokens)
        except Exception as exc:
            raise AuthError(
                "the refreshed OAuth tokens could not be saved, so they are not used; the old "
                "refresh token may be spent and the app may need re-authorizing",
                connection=self.connection,
            ) from exc


def _oauth_error(response: Response) -> str:
    """The OAuth ``error`` code of a token endpoint's refusal, as a message prefix."""
    try:
        data = response.json()
    except Exception:
        return ""
    code = data.get("error") if isinstance(data, dict) else None
    return f"{code}: " if isinstance(code, str) else ""


def parse_tokens(data: Any, old: OAuthTokens, now: float, connection: str) -> OAuthTokens:
    """Tokens from a token endpoint's JSON; ``expires`` (absolute) or ``expires_in`` both work,
    and a response without a new refresh token keeps the old one."""
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise AuthError(
            "the token endpoint answered without an access_token", connection=connection
        )
    refresh = data.get("refresh_token")
    return OAuthTokens(
        Secret(data["access_token"]),
        Secret(refresh) if isinstance(refresh, str) and refresh else old.refresh_token,
        _expiry(data, now),
    )


def _expiry(data: dict[str, Any], now: float) -> datetime | None:
    expires_in, expires = data.get("expires_in"), data.get("expires")
    if isinstance(expires_in, int | float) and expires_in > 0:
        return datetime.fromtimestamp(now + expires_in, UTC)
    if isinstance(expires, int | float) and expires > 0:
        return datetime.fromtimestamp(expires, UTC)
    return None


def make_auth(
    credentials: Credentials, store: TokenStore | None, clock: PlatformClock, connection: str
) -> Auth:
    """The strategy for ``credentials``; :class:`ConfigError` when they are incomplete."""
    secret = credentials.secret
    if isinstance(credentials, OAuth2Credentials):
        if store is None:
            raise ConfigError(f"{connection}: oauth2 needs a token_store to persist rotated tokens")
        return OAuth2Auth(credentials, store, clock, connection)
    if credentials.scheme == "none":
        return StaticAuth({}, [secret] if secret is not None else [])  # it may sign requests
    if credentials.scheme == "oauth2":
        raise ConfigError(f"{connection}: oauth2 needs OAuth2Credentials (token endpoint, client)")
    if secret is None:
        raise ConfigError(f"{connection}: {credentials.scheme} credentials need a secret")
    if credentials.scheme == "bearer":
        return StaticAuth({"Authorization": f"Bearer {secret.reveal()}"}, [secret])
    return StaticAuth({credentials.header: secret.reveal()}, [secret])
