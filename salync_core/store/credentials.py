"""Connection secrets at rest: one Fernet-encrypted JSON object per connection.

API keys, client secrets and OAuth tokens are only ever written encrypted; their names are not
secret and are kept in clear so ``salync secrets list`` needs no key. A rotated OAuth refresh
token is committed with ``synchronous = FULL`` before the client uses it: some platforms' refresh
tokens are single-use, so losing the new one to a power cut would lock the connection out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping

import anyio
import orjson

from salync_core.converters import format_datetime, parse_datetime
from salync_core.http.auth import OAuthTokens, StoredState
from salync_core.secrets import Secret, SecretBox
from salync_core.store.database import Store, Transaction, to_json


def stored_names(conn: sqlite3.Connection, connection: str) -> list[str]:
    """Names of the secrets stored for a connection (never their values)."""
    row = conn.execute(
        "SELECT secret_names FROM connections WHERE name = ?", (connection,)
    ).fetchone()
    return [] if row is None or row[0] is None else list(orjson.loads(row[0]))


def load_secrets(
    conn: sqlite3.Connection, box: SecretBox | None, connection: str
) -> dict[str, Secret]:
    """The stored secrets of a connection, decrypted (``box`` may be None when none are stored)."""
    row = conn.execute("SELECT secrets FROM connections WHERE name = ?", (connection,)).fetchone()
    if row is None or row[0] is None:
        return {}
    if box is None:
        raise ValueError("a secret box is needed to read stored secrets")
    values = orjson.loads(box.decrypt(row[0]))
    return {name: Secret(value) for name, value in values.items()}


def _write(
    txn: Transaction, box: SecretBox, connection: str, plugin: str, values: Mapping[str, Secret]
) -> None:
    plain = orjson.dumps({name: secret.reveal() for name, secret in values.items()})
    txn.conn.execute(
        "INSERT INTO connections (name, plugin, secrets, secret_names, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET plugin = excluded.plugin,"
        " secrets = excluded.secrets, secret_names = excluded.secret_names",
        (connection, plugin, box.encrypt(plain), to_json(sorted(values)), txn.now),
    )


def save_secrets(
    store: Store, box: SecretBox, connection: str, plugin: str, values: Mapping[str, Secret | None]
) -> None:
    """Set (a ``Secret``) or remove (``None``) named secrets of a connection, atomically."""
    with store.write() as txn:
        current = load_secrets(txn.conn, box, connection)
        for name, value in values.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        _write(txn, box, connection, plugin, current)


SPENDING = "refresh_spending"
"""The fingerprint of a refresh token whose refresh was sent and not yet answered and saved."""
NEEDS_RECONNECT = "needs_reconnect"
"""Why the connection's grant is gone; its name (in clear) is what ``salync status`` shows."""


class StoredTokens:
    """The engine's :class:`~salync_core.http.auth.SharedTokenStore` for ``oauth2``
    connections: the tokens live encrypted in the mirror, and a lock file next to it makes a
    refresh single-flight across every process that uses the mirror."""

    def __init__(self, store: Store, box: SecretBox, connection: str, plugin: str) -> None:
        self.store, self.box, self.connection, self.plugin = store, box, connection, plugin

    async def save(self, tokens: OAuthTokens) -> None:
        values: dict[str, Secret | None] = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": Secret(format_datetime(tokens.expires_at)) if tokens.expires_at else None,
            SPENDING: None,
            NEEDS_RECONNECT: None,
        }
        await self.store.run(self._save_durably, values)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold ``<mirror>.oauth-<connection>.lock`` (a blocking ``flock``; the kernel
        releases it if this process dies)."""
        path = self.store.path.with_name(f"{self.store.path.name}.oauth-{self.connection}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def load(self) -> StoredState:
        stored = await self.store.run(load_secrets, self.store.conn, self.box, self.connection)
        spending = stored.get(SPENDING)
        access, refresh = stored.get("access_token"), stored.get("refresh_token")
        tokens = None
        if access is not None and refresh is not None:
            expires = stored.get("expires_at")
            tokens = OAuthTokens(
                access, refresh, parse_datetime(expires.reveal()) if expires else None
            )
        reconnect = stored.get(NEEDS_RECONNECT)
        return StoredState(
            tokens,
            spending.reveal() if spending else None,
            reconnect.reveal() if reconnect else None,
        )

    async def begin_refresh(self, fingerprint: str | None) -> None:
        """Record (or clear, with ``None``) the refresh token about to be spent, durably."""
        value = Secret(fingerprint) if fingerprint else None
        await self.store.run(self._save_durably, {SPENDING: value})

    async def needs_reconnect(self, reason: str) -> None:
        await self.store.run(self._save_durably, {NEEDS_RECONNECT: Secret(reason)})

    def _save_durably(self, values: Mapping[str, Secret | None]) -> None:
        self.store.conn.execute("PRAGMA synchronous = FULL")
        try:
            save_secrets(self.store, self.box, self.connection, self.plugin, values)
        finally:
            self.store.conn.execute("PRAGMA synchronous = NORMAL")
