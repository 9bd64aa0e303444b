"""Sales Layer API 1.18: signed connector requests, its error codes, and the export pass.

Facts (``shared/platforms/API-FACTS.md`` §1): every request carries ``code`` (the connector),
``time`` (UNIX seconds), ``unique`` (a random number) and ``key256``, the SHA-256 hex of
``code + secret + time + unique``, and ``ver=1.18``. The secret itself is never sent, so no URL
the client logs, stores (a ``next_page`` in the cursor) or shows can reveal it; the signature
is single-use by design. Errors come as ``"error": N`` in an otherwise normal answer.

The export pass: the first request sends ``last_update`` (the ``time`` of the answer that began
the last completed pass; nothing the first time); the answer's own ``time`` becomes the next
``last_update`` once every ``next_page`` has been read. ``action = "refresh"`` means the
connector changed and everything is sent again: the pass's last page then carries a
:class:`~salync_core.platform.Sweep`, so whatever the refresh did not send again is tombstoned.
"""

from __future__ import annotations

import hashlib
import logging
import secrets as random_source
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
from attrs import evolve, field, frozen

from salync_core.errors import (
    AuthError,
    BadResponseError,
    ConfigError,
    RejectedError,
    ServerError,
    TransportError,
)
from salync_core.platform import ConnectionContext, Page, Sweep
from salync_core.secrets import Secret, redactor
from salync_saleslayer import mapping118

log = logging.getLogger("salync.saleslayer")

VERSION = "1.18"
DEFAULT_PAGINATION = 5000
"""Items per page asked for (the official SDK's default); the server rounds it to its ranges."""
ERRORS = {
    1: "Validation error",
    2: "Invalid connector code",
    3: "Wrong unique key",
    4: "Invalid codification key",
    5: "Incorrect date of last_update",
    6: "API version nonexistent",
    7: "Wrong output mode",
    8: "Invalid compression type",
    9: "Invalid private key",
    10: "Service temporarily blocked",
    11: "Service temporarily unavailable",
    12: "Incorrect date-code",
    13: "Date code has expired",
    14: "Updating data. Try later",
}
"""The API's error codes and their meaning (the official SDK's ``__error_list``)."""
INFORMATIVE = frozenset({5, 6, 7, 8})
"""Codes that come with a usable answer (all data, JSON, uncompressed): logged, not raised."""
TRANSIENT = frozenset({10, 11, 14})
"""Codes that pass: retried a few times, then left for the next run with the cursor kept."""
CLOCK = frozenset({12, 13})
TRANSIENT_ATTEMPTS = 3
TRANSIENT_WAIT = 1.0
"""Seconds between in-run retries of a transient code (the ``transient_wait`` option)."""
ALL_TABLES = tuple(mapping118.ENTITY_OF_TABLE.values())


class ConnectorError(TransportError):
    """An answer with a Sales Layer error code; ``code`` and its meaning are in the message."""

    def __init__(self, code: int, *, connection: str, url: str) -> None:
        self.code = code
        meaning = ERRORS.get(code, "unknown error code")
        super().__init__(
            f"Sales Layer answered error {code} ({meaning}){_hint(code)}",
            connection=connection,
            url=url,
        )


class ConnectorAuthError(ConnectorError, AuthError):
    """Codes 2, 3, 4, 9, 12, 13: the connector code, the secret or the clock is wrong."""


class ConnectorBusyError(ConnectorError, ServerError):
    """Codes 10, 11, 14: the service is blocked, unavailable or updating; try later."""


class ConnectorRejectedError(ConnectorError, RejectedError):
    """Code 1 and unknown codes: the request itself was refused."""


def _hint(code: int) -> str:
    if code in (2, 9):
        return ": check connector_code and secret_key (or import_code and import_secret)"
    if code in CLOCK:
        return ": the request's time is not the server's; check this machine's clock"
    if code in TRANSIENT:
        return "; the sync will try again later from where it stopped"
    return ""


def error_for(code: int, connection: str, url: str) -> ConnectorError:
    """The error to raise for an answer carrying ``code``."""
    if code in TRANSIENT:
        return ConnectorBusyError(code, connection=connection, url=url)
    if code in (2, 3, 4, 9, 12, 13):
        return ConnectorAuthError(code, connection=connection, url=url)
    return ConnectorRejectedError(code, connection=connection, url=url)


def signature(code: str, secret: str, when: str, unique: str) -> str:
    """``key256``: SHA-256 hex of the four values concatenated with no separator."""
    return hashlib.sha256(f"{code}{secret}{when}{unique}".encode()).hexdigest()


@frozen
class Signer:
    """Signs requests for one connector (export or import)."""

    code: str
    secret: Secret
    skew: float = 0.0
    """Seconds the server's clock is ahead of ours (learned from an error 13 answer)."""

    def params(self) -> dict[str, str]:
        when = str(int(time.time() + self.skew))
        unique = str(random_source.randbelow(2**31 - 1) + 1)
        return {
            "code": self.code,
            "time": when,
            "unique": unique,
            "key256": signature(self.code, self.secret.reveal(), when, unique),
            "ver": VERSION,
        }


def signer(ctx: ConnectionContext, code_option: str, secret_option: str) -> Signer:
    """The signer for a connector from the connection's options; the secret is masked in
    every message from now on."""
    code, secret = ctx.options.get(code_option), ctx.options.get(secret_option)
    if not isinstance(code, str) or not code:
        raise ConfigError(f'[connections.{ctx.name}]: api = "1.18" needs {code_option}')
    if isinstance(secret, str):
        secret = Secret(secret)
    if not isinstance(secret, Secret):
        raise ConfigError(f'[connections.{ctx.name}]: api = "1.18" needs {secret_option}')
    redactor.add(secret)
    return Signer(code, secret)


def check(data: Any, body: bytes, ctx: ConnectionContext, url: str) -> dict[str, Any]:
    """The answer as a map, or the error its code names (informative codes are logged)."""
    if not isinstance(data, dict):
        raise BadResponseError(
            "the answer is not a Sales Layer JSON object", body=body, connection=ctx.name, url=url
        )
    code = data.get("error")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, int) and code:
        if code in INFORMATIVE:
            log.info("%s: Sales Layer notes error %d (%s)", ctx.name, code, ERRORS[code])
        else:
            raise error_for(code, ctx.name, url)
    return data


def server_time(data: Mapping[str, Any]) -> int | None:
    value = data.get("time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


@frozen
class ExportCursor:
    """Where the export stands: the ``last_update`` to send, the pass in progress, and the
    ``ID -> REF`` index of categories and products (links arrive by id)."""

    last_update: int | None = None
    next: str | None = None
    """The ``next_page`` URL of the pass in progress (it carries its own page token)."""
    pass_time: int | None = None
    """The ``time`` of the answer that began the pass in progress: the next ``last_update``."""
    refresh_since: str | None = None
    """Set while a refresh pass runs: when it began, on the local clock (see Sweep)."""
    refs: dict[str, dict[str, str]] = field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_update": self.last_update,
            "next": self.next,
            "pass_time": self.pass_time,
            "refresh_since": self.refresh_since,
            "refs": self.refs,
        }

    @classmethod
    def from_json(cls, data: Any) -> ExportCursor:
        """A stored cursor; anything unreadable starts over (a full export)."""
        if not isinstance(data, dict):
            return cls()
        last, nxt, pass_time = data.get("last_update"), data.get("next"), data.get("pass_time")
        since, refs = data.get("refresh_since"), data.get("refs")
        if not (
            (last is None or isinstance(last, int))
            and (nxt is None or isinstance(nxt, str))
            and (pass_time is None or isinstance(pass_time, int))
            and (since is None or isinstance(since, str))
            and isinstance(refs, dict)
        ):
            return cls()
        return cls(last, nxt, pass_time, since, refs)


def _local_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Exporter:
    """Reads the export connector of one connection, page by page."""

    def __init__(self, ctx: ConnectionContext) -> None:
        self.ctx = ctx
        self.signer = signer(ctx, "connector_code", "secret_key")
        self.pagination = int(ctx.options.get("pagination", DEFAULT_PAGINATION))
        self.wait = float(ctx.options.get("transient_wait", TRANSIENT_WAIT))

    def first_params(self, cursor: ExportCursor) -> dict[str, str]:
        params = {
            "pagination": str(self.pagination),
            "group_category_id": "1",
            "compression": "1",
        }
        if cursor.last_update is not None:
            params["last_update"] = str(cursor.last_update)
        return params

    async def get(self, url: str, params: Mapping[str, str] | None) -> tuple[dict[str, Any], str]:
        """One signed GET (a ``next_page`` URL is sent as it is: it carries its own
        authentication), with error 13 answered by re-signing on the server's clock and
        transient codes retried a few times."""
        attempt = 0
        while True:
            attempt += 1
            signed = None if params is None else {**self.signer.params(), **params}
            data, response = await self.ctx.http.get_json(url, params=signed)
            try:
                return check(data, response.body, self.ctx, response.url), response.url
            except ConnectorError as exc:
                theirs = server_time(data) if isinstance(data, dict) else None
                if exc.code == 13 and attempt == 1 and theirs is not None and params is not None:
                    self.signer = evolve(self.signer, skew=theirs - time.time())
                    log.info("%s: signing on Sales Layer's clock (%+.0f s)", self.ctx.name,
                             self.signer.skew)  # fmt: skip
                    continue
                if exc.code in TRANSIENT and attempt < TRANSIENT_ATTEMPTS:
                    log.info("%s; retry %d in %.1f s", exc, attempt, self.wait)
                    await anyio.sleep(self.wait)
                    continue
                raise

    async def pages(self, cursor_json: Any) -> AsyncIterator[Page]:
        cursor = ExportCursor.from_json(cursor_json)
        refs = mapping118.RefIndex(cursor.refs)
        if cursor.next is not None:
            url, params = cursor.next, None
        else:
            url, params = "", self.first_params(cursor)
        while True:
            data, where = await self.get(url, params)
            answered = server_time(data)
            if cursor.next is None:  # the first page of a pass
                refresh = data.get("action") == "refresh" or cursor.last_update is None
                cursor = evolve(
                    cursor,
                    pass_time=answered,
                    refresh_since=_local_now() if refresh else None,
                )
            decoded = mapping118.decode(data, refs, _iso(answered))
            next_page = data.get("next_page")
            next_page = next_page if isinstance(next_page, str) and next_page else None
            sweep = None
            if next_page is None:
                if cursor.refresh_since is not None:
                    sweep = Sweep(ALL_TABLES, cursor.refresh_since)
                cursor = ExportCursor(cursor.pass_time or cursor.last_update, refs=refs.to_json())
            else:
                cursor = evolve(cursor, next=next_page, refs=refs.to_json())
            yield Page(
                list(decoded.items.values()),
                cursor.to_json(),
                redactor.redact(where),
                deletions=decoded.deletions,
                rejects=decoded.rejects,
                complete=next_page is None,
                total=_total(data),
                full=sweep is not None,
                sweep=sweep,
            )
            if next_page is None:
                return
            url, params = next_page, None


def _total(data: Mapping[str, Any]) -> int | None:
    count, length = data.get("page_count"), data.get("page_length")
    if isinstance(count, int) and isinstance(length, int):
        return count * length
    return None
