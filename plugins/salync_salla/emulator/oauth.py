"""Salla's accounts host: authorize, token, user info (API-FACTS §3.1, §3.5a).

* ``GET /oauth2/auth`` approves at once (the merchant's consent screen is not emulated) and
  redirects to ``redirect_uri`` with ``code``, ``scope`` and the ``state`` with its hyphens
  stripped, as Salla does.
* ``POST /oauth2/token`` (form): ``authorization_code`` (single-use code, client and
  ``redirect_uri`` checked) and ``refresh_token``. Refresh tokens are single-use and belong to a
  *family* started by one authorization: a refresh returns a new pair; presenting a refresh
  token that was already used revokes the whole family (every access and refresh token of it),
  answering ``invalid_grant``. The previous access token stays valid until it expires.
* The answer carries both ``expires`` (absolute) and ``expires_in`` (both are published).
* ``GET /oauth2/user/info``: the README's shape, no ``data`` envelope.

Several merchants (an emulator's ``accounts``) install the same app: each family belongs to one
account, whose merchant id is the first's plus its index. ``/oauth2/auth?account=i`` (the
emulator's stand-in for which merchant logs in) starts a family of account ``i``.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from attrs import define, field

from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import json_response

ACCESS_TTL = 14 * 86400.0
"""Access tokens last 14 days (oauth2-merchant README)."""


@define
class Family:
    """The tokens descended from one authorization."""

    scope: str
    refresh: str
    used: set[str] = field(factory=set)
    access: dict[str, float] = field(factory=dict)
    """Access token -> platform expiry time."""
    revoked: bool = False
    account: int = 0
    """The store (the emulator's account) that installed the app."""


class Accounts:
    """OAuth state and the accounts routes."""

    def __init__(
        self,
        clock: ScaledClock,
        client_id: str,
        client_secret: str,
        merchant_id: int,
        plan: str,
        accounts: int = 1,
    ) -> None:
        self.clock, self.client_id, self.client_secret = clock, client_id, client_secret
        self.merchant_id, self.plan, self.account_count = merchant_id, plan, accounts
        self.families: list[Family] = []
        self._by_access: dict[str, Family] = {}
        self.codes: dict[str, tuple[str, str, int]] = {}
        """Code -> (redirect_uri, scope, account)."""
        self.refreshes = 0
        self.replays = 0
        self.access_ttl = ACCESS_TTL

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/oauth2/auth", self.authorize)
        router.add_post("/oauth2/token", self.token)
        router.add_get("/oauth2/user/info", self.user_info)

    # Python API ---------------------------------------------------------------------------

    def issue(
        self, scope: str = "offline_access products.read_write", account: int = 0
    ) -> dict[str, Any]:
        """A new family's first token answer (what installing the app on account ``account``'s
        store gives)."""
        family = Family(scope, _token("rt"), account=account)
        self.families.append(family)
        return self._answer(family)

    def access_ok(self, token: str) -> bool:
        family = self._by_access.get(token)
        return (
            family is not None
            and not family.revoked
            and family.access.get(token, -1.0) > self.clock.time()
        )

    def account_of(self, token: str) -> int | None:
        """The account whose family issued access token ``token`` (valid or not)."""
        family = self._by_access.get(token)
        return None if family is None else family.account

    def expire_access_tokens(self) -> None:
        """Every access token expires now (their refresh tokens still work)."""
        for family in self.families:
            family.access = dict.fromkeys(family.access, 0.0)

    def family_of(self, refresh: str) -> Family | None:
        for family in self.families:
            if refresh == family.refresh or refresh in family.used:
                return family
        return None

    # routes -------------------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        redirect, scope = query.get("redirect_uri", ""), query.get("scope", "")
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return json_response({"error": "invalid_client"}, 400)
        if not redirect.startswith(("http://127.0.0.1", "https://")):
            return json_response({"error": "invalid_request", "error_description": "uri"}, 400)
        account_text = query.get("account", "0")
        account = int(account_text) if account_text.isascii() and account_text.isdigit() else -1
        if not 0 <= account < self.account_count:
            return json_response({"error": "invalid_request", "error_description": "account"}, 400)
        code = _token("code")
        self.codes[code] = (redirect, scope, account)
        state = query.get("state", "").replace("-", "")
        target = redirect + ("&" if "?" in redirect else "?")
        target += urlencode({"code": code, "scope": scope, "state": state})
        raise web.HTTPFound(target)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _error(401, "invalid_client", "Client authentication failed")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.pop(str(form.get("code", "")), None)
            if entry is None or entry[0] != form.get("redirect_uri"):
                return _error(400, "invalid_grant", "The authorization code is invalid")
            family = Family(entry[1], _token("rt"), account=entry[2])
            self.families.append(family)
            return json_response(self._answer(family))
        if grant == "refresh_token":
            return self._refresh(str(form.get("refresh_token", "")))
        return _error(400, "unsupported_grant_type", "The grant type is not supported")

    def _refresh(self, presented: str) -> web.Response:
        family = self.family_of(presented)
        if family is None or family.revoked:
            return _error(400, "invalid_grant", "The refresh token is invalid.")
        if presented in family.used:
            family.revoked = True
            self.replays += 1
            return _error(400, "invalid_grant", "The refresh token was already used; revoked.")
        family.used.add(presented)
        family.refresh = _token("rt")
        self.refreshes += 1
        return json_response(self._answer(family))

    async def user_info(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not self.access_ok(token):
            return _error(401, "unauthorized", "The access token is invalid")
        merchant_id = self.merchant_id + (self.account_of(token) or 0)
        return json_response(
            {
                "id": 1771165749,
                "name": "Test User",
                "email": "merchant@example.sa",
                "mobile": "+966500000000",
                "role": "user",
                "created_at": "2021-12-31 11:36:57",
                "merchant": {
                    "id": merchant_id,
                    "username": f"dev-{merchant_id}",
                    "name": "متجر التجربة",
                    "plan": self.plan,
                    "status": "active",
                    "domain": f"https://salla.sa/dev-{merchant_id}",
                },
            }
        )

    def _answer(self, family: Family) -> dict[str, Any]:
        access = _token("at")
        expires = self.clock.time() + self.access_ttl
        family.access[access] = expires
        self._by_access[access] = family
        return {
            "token_type": "bearer",
            "access_token": access,
            "expires": int(expires),
            "expires_in": int(self.access_ttl),
            "refresh_token": family.refresh,
            "scope": family.scope,
        }


def _token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def _error(status: int, code: str, description: str) -> web.Response:
    return json_response({"error": code, "error_description": description}, status)
