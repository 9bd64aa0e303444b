"""What a platform plugin provides and what the core hands it.

A plugin registers :class:`Platform` objects (see :mod:`salync_core.hookspecs`). The engine
drives their async methods; the plugin never touches SQLite or opens its own HTTP session. A
platform describes itself with :class:`Stream` and :class:`Limits`, reads through
:meth:`Platform.fetch` (pages of raw items plus the cursor to store once a page is applied),
maps raw items to canonical :class:`Record` objects, and writes back through
:meth:`Platform.push`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from attrs import Factory, field, frozen

if TYPE_CHECKING:
    from salync_core.http.client import HttpClient
    from salync_core.secrets import Secret
    from salync_core.webhooks.events import WebhookEvent, WebhookSubscription

JSON = Any
"""A JSON-ready value: what ``orjson.dumps`` accepts."""


@frozen
class Window:
    """At most ``requests`` requests in any ``seconds`` seconds (a sliding window)."""

    requests: int
    seconds: float


@frozen
class Limits:
    """The request limits a platform enforces for one credential."""

    windows: tuple[Window, ...] = ()
    daily: int | None = None
    """Requests per UTC day; the quota resets at midnight UTC."""
    bucket: Literal["window", "leaky"] = "window"
    """How ``X-RateLimit-Remaining``/``-Reset`` are read: ``window``, the remaining requests
    come back all at once at the reset; ``leaky``, the bucket drains steadily and is empty at
    the reset (Salla), so requests free up one by one before it."""


@frozen
class Stream:
    """One collection a platform can list, such as products or categories."""

    name: str
    entity: str
    """The canonical entity its records are; a page may also carry ``also`` entities."""
    incremental_field: str | None = None
    """The field the platform filters on for "changed since"; ``None`` means full scans only."""
    reports_deletions: bool = False
    """Whether pages report deletions; if not, deletions come from reconciliation."""
    max_page_size: int = 100
    also: tuple[str, ...] = ()
    """Other entities this stream's pages carry (variants expanded into products)."""
    covered_by: str | None = None
    """A stream whose full pass already delivers this stream's records; the engine then skips
    this stream's full pass and only starts its incremental watermark."""
    sweeps: bool = True
    """A pass may end in a :class:`Sweep`, so the engine stamps every record a pass delivers
    as seen. A stream whose deletions come from elsewhere (reported, or reconciliation) says
    ``False``: a record it delivers unchanged then costs no write at all, and a ``Sweep`` it
    sends anyway is refused (the stamps it needs were not kept)."""


@frozen
class Record:
    """One canonical record mapped from a platform item."""

    entity: str
    key: str
    fields: dict[str, JSON]
    external_id: str | None = None
    source_ts: str | None = None
    """When the platform last changed it (UTC ISO-8601); drives last-writer-wins."""
    deleted: bool = False
    """The item is known deleted on the platform (an ``X`` status, an archive)."""


@frozen
class Deletion:
    """A deletion a platform reported, by our key or by its own id."""

    entity: str
    key: str | None = None
    external_id: str | None = None


@frozen
class Reject:
    """A raw item the plugin could not use, kept for the dead-letter table."""

    raw: JSON
    reason: str


@frozen
class Sweep:
    """The end of a pass that delivered everything that exists (a connector refresh): every
    live record of ``entities`` this connection delivered before ``since`` and not again
    since is gone from the platform. The engine tombstones them in the page's transaction,
    under the same mass-deletion guard as reconciliation."""

    entities: tuple[str, ...]
    since: str
    """When the pass began, UTC ISO-8601 on the local clock (the mirror's ``seen_at``)."""


@frozen
class Page:
    """One page of a stream: what to apply, and the cursor to store in the same transaction."""

    items: Sequence[JSON]
    cursor: JSON
    ref: str = ""
    """Where the page came from (a URL, a page number), for reports."""
    deletions: Sequence[Deletion] = ()
    rejects: Sequence[Reject] = ()
    complete: bool = False
    """This page ends the pass: no further page follows."""
    total: int | None = None
    """How many items the whole pass holds, when the platform says (for progress bars)."""
    full: bool = False
    """The pass reads everything, not only changes: a stream ``covered_by`` this one needs no
    full pass of its own once it completes."""
    sweep: Sweep | None = None
    """Set on the last page of a pass that sent everything: see :class:`Sweep`."""


@frozen
class KeyPage:
    """One page of a key-only scan used by reconciliation: every key that still exists."""

    keys: Sequence[tuple[str, str | None]]
    """``(key, external_id)`` pairs of one entity."""
    entity: str
    incomplete: bool = False
    """The scan cannot list ``entity`` whole after all (a products scan met a product without
    its variants): the keys it listed for ``entity`` do not count, nothing of it is deleted,
    and the entity's own stream scans it. Lets a plugin send keys page by page instead of
    holding them all until it knows the listing is whole."""


@frozen
class Outbound:
    """One record to write to a platform: the fields it lacks, against what it last saw."""

    entity: str
    key: str
    fields: dict[str, JSON]
    """The fields to send, with the mirror's values."""
    base: Mapping[str, JSON]
    """What this platform last held for those fields (empty for a record it never saw);
    read-only (the engine decodes it only when a platform reads it)."""
    external_id: str | None
    """The platform's id for the record, if it has one yet."""
    op: Literal["upsert", "delete"] = "upsert"
    idempotency_key: str = ""
    receipt: str | None = None
    """What the platform said when it queued this write (:attr:`PushResult.receipt`), or
    ``None`` if it was never queued. A write with a receipt was sent already: the platform
    confirms it by reading, it never sends it again."""


@frozen
class PushResult:
    """What happened to one :class:`Outbound` item."""

    key: str
    status: Literal["ok", "retry", "rejected", "queued"]
    """``queued``: the platform accepted the write and applies it later (a queue it cannot be
    asked about). The outbox keeps it pending without spending an attempt, asks again on a
    growing, capped schedule with :attr:`Outbound.receipt` set, and never buries it."""
    external_id: str | None = None
    message: str = ""
    receipt: str = ""
    """For ``queued``: whatever the platform needs later to confirm the write."""


@frozen
class Option:
    """One connection setting a platform accepts beyond the core's own keys.

    The configuration loader refuses keys no platform declares (with a "did you mean" hint),
    checks each value against ``types``, and resolves and encrypts ``secret`` options
    (``"env:VAR"``, a literal, or ``salync secrets set``) like ``api_key``.
    """

    name: str
    types: tuple[type, ...] = (str,)
    secret: bool = False
    required: bool = False
    help: str = ""
    choices: tuple[Any, ...] = ()
    """The only values accepted (empty: any value of the right type)."""
    default: Any = None
    """Filled into ``ctx.options`` when the file leaves the option out (``None``: left out)."""
    expected: str = ""
    """How a message describes a good value (``"a list of field names"``); by default it is
    built from ``types`` and ``choices``."""
    check: Callable[[Any], bool] | None = field(default=None, eq=False)
    """A further test of a value of the right type: list items, the shape of a table."""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this option's value, or ``None`` when it can."""
        if self.secret:
            ok = isinstance(value, str) and bool(value)
            expected = self.expected or 'a string (a literal or "env:VARIABLE")'
        else:
            ok = _has_type(value, self.types) and (not self.choices or value in self.choices)
            ok = ok and (self.check is None or self.check(value))
            expected = self.expected or _describe(self.types, self.choices)
        return None if ok else f"expected {expected}, got {value!r}"


_TYPE_NAMES = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    """TOML types: ``true`` is no number, and a whole number is a good float."""
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def _describe(types: tuple[type, ...], choices: tuple[Any, ...]) -> str:
    if choices:
        return "one of " + ", ".join(repr(c) for c in choices)
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


@frozen(kw_only=True)
class ConnectionContext:
    """What the engine gives a platform for one configured connection."""

    name: str
    base_url: str
    options: Mapping[str, Any] = Factory(dict)
    http: HttpClient = field(repr=False)
    locale: str = "en"
    directory: Path = Path()
    """The configuration file's directory: relative paths in options are read from it."""


@frozen
class Credentials:
    """How the shared HTTP client authenticates (see :mod:`salync_core.http.auth`)."""

    scheme: Literal["header", "bearer", "oauth2", "none"]
    header: str = "Authorization"
    secret: Secret | None = field(default=None, repr=False)


class Platform(abc.ABC):
    """A platform the engine can sync with. Subclass it and register an instance.

    Only ``name``, ``streams``, :meth:`fetch` and :meth:`map_inbound` are required; reconcile
    and push are opt-in by overriding :meth:`list_keys`, :meth:`map_outbound` and :meth:`push`.
    """

    name: ClassVar[str]
    streams: ClassVar[tuple[Stream, ...]]
    push_batch_size: ClassVar[int] = 1
    """The largest number of records one :meth:`push` call may carry."""
    secret_options: ClassVar[tuple[str, ...]] = ("api_key",)
    """Shorthand for secret options that need no other declaration: each name is accepted as
    ``Option(name, secret=True)`` (``api_key`` by default; ``()`` for a platform without one)."""
    options: ClassVar[tuple[Option, ...]] = ()
    """The connection settings this platform accepts beyond the core's (see :class:`Option`);
    any other key in its ``[connections.NAME]`` table is refused at load."""

    def default_base_url(self, options: Mapping[str, Any]) -> str | None:
        """The base URL of a connection whose table sets none. ``None`` (the default) makes
        ``base_url`` required; a platform that reads files, or whose address is an option of its
        own, returns one (``options`` are the table's raw values)."""
        return None

    def declared_options(self) -> dict[str, Option]:
        """Every option the platform accepts by name: :attr:`options` and, unless declared
        there, :attr:`secret_options`."""
        declared = {name: Option(name, secret=True) for name in self.secret_options}
        declared.update((option.name, option) for option in self.options)
        return declared

    def for_connection(self, options: Mapping[str, Any]) -> Platform:
        """The platform that serves a connection with these options: ``self``, unless the
        platform speaks several APIs and the options choose another (Sales Layer 1.18)."""
        return self

    def stream(self, name: str) -> Stream:
        """The stream called ``name``."""
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(name)

    def limits(self, options: Mapping[str, Any]) -> Limits:
        """The request limits for a connection with these options (a plan may change them)."""
        return Limits()

    def credentials(self, options: Mapping[str, Any]) -> Credentials:
        """How to authenticate; by default a Bearer API key from the ``api_key`` option."""
        return Credentials("bearer", secret=options.get("api_key"))

    @abc.abstractmethod
    def fetch(self, ctx: ConnectionContext, stream: Stream, cursor: JSON) -> AsyncIterator[Page]:
        """Yield the pages of ``stream`` after ``cursor`` (``None``: from the start)."""

    @abc.abstractmethod
    def map_inbound(
        self, ctx: ConnectionContext, stream: Stream, item: JSON
    ) -> Iterable[Record | Reject]:
        """Map one raw item to canonical records; raise :class:`DataError` if it cannot be.

        An item may carry several records (a product with its variants); yield a
        :class:`Reject` for a part that is bad so the good parts still apply."""

    def list_keys(self, ctx: ConnectionContext, stream: Stream) -> AsyncIterator[KeyPage]:
        """Yield every key that exists on the platform, for reconciliation."""
        raise NotImplementedError(f"{self.name} cannot list keys for {stream.name}")

    def fetch_by_ids(
        self, ctx: ConnectionContext, stream: Stream, external_ids: Sequence[str]
    ) -> AsyncIterator[Page]:
        """Yield pages holding the items with these ids (reconcile fetches what it lacks)."""
        raise NotImplementedError(f"{self.name} cannot fetch {stream.name} by id")

    def writable_fields(self, entity: str) -> frozenset[str]:
        """Canonical fields of ``entity`` this platform accepts on push (none by default)."""
        return frozenset()

    def holds(self, ctx: ConnectionContext, entity: str, field: str, key: str) -> bool:
        """Whether the platform keeps ``key`` of the keyed map ``field`` (a locale of localized
        text, an attribute): the engine pushes a map only when a key it holds differs.
        Everything, by default; a one-language platform holds only its locale."""
        return True

    def map_outbound(self, ctx: ConnectionContext, item: Outbound) -> JSON:
        """Map one outbound record to the platform's payload."""
        raise NotImplementedError(f"{self.name} does not accept pushes")

    async def push(
        self, ctx: ConnectionContext, entity: str, batch: Sequence[tuple[Outbound, JSON]]
    ) -> Sequence[PushResult]:
        """Write one batch (at most :attr:`push_batch_size`), one result per item, in order."""
        raise NotImplementedError(f"{self.name} does not accept pushes")

    # webhooks (opt-in) --------------------------------------------------------------------

    webhook_events: ClassVar[tuple[str, ...]] = ()
    """The events ``salync webhooks subscribe`` registers; empty: the platform sends none."""

    def parse_webhook(
        self, ctx: ConnectionContext, headers: Mapping[str, str], body: bytes
    ) -> Sequence[WebhookEvent]:
        """Verify one delivery over its raw bytes and return its events; raise
        :class:`~salync_core.webhooks.WebhookRejected` for an unsigned, forged or malformed
        one (see :mod:`salync_core.webhooks.verify` for the shared checks)."""
        from salync_core.webhooks.events import WebhookRejected

        raise WebhookRejected(404, f"{self.name} does not send webhooks")

    def webhook_pages(
        self, ctx: ConnectionContext, event: WebhookEvent
    ) -> AsyncIterator[tuple[Stream, Page]]:
        """The pages an event means, applied like polled pages without moving any cursor:
        the items it carries, its deletions, or what a partial payload lacks, fetched."""
        raise NotImplementedError(f"{self.name} does not apply webhook events")

    async def subscribe_webhooks(
        self, ctx: ConnectionContext, url: str
    ) -> Sequence[WebhookSubscription]:
        """Register :attr:`webhook_events` to be delivered under ``url`` (the connection's
        ``/webhooks/<connection>`` address), signed with its ``webhook_secret``."""
        raise NotImplementedError(f"{self.name} cannot subscribe to webhooks")
