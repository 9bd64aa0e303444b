"""The Sales Layer Catalog API 2.0 platform.

Facts it relies on (``shared/platforms/API-FACTS.md`` §2): ``X-API-KEY`` on every request;
collections ``Products``, ``Variants``, ``Categories`` in pages of at most 100 with ``@count``
and ``@nextLink``; OData ``$select``, ``$filter``, ``$expand``; ``*_modify`` timestamps in UTC;
50 requests per 10 seconds; deleted items are never reported, so deletions come from
reconciliation (a key-only scan).

Design: products are read with ``$expand=Variants``, so one pass over products also delivers
every variant and a full sync costs ``ceil(products / 100)`` requests for both. The
``variants`` stream then only has to follow variant changes incrementally on ``frmt_modify``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from salync_core.errors import BadResponseError, NotFoundError, RejectedError
from salync_core.http import Response, path_segment
from salync_core.platform import (
    ConnectionContext,
    Credentials,
    KeyPage,
    Limits,
    Option,
    Outbound,
    Page,
    Platform,
    PushResult,
    Record,
    Reject,
    Stream,
    Window,
)
from salync_core.state.cursors import WatermarkCursor
from salync_saleslayer import mapping

PAGE_SIZE = 100


class Resource:
    """How one stream maps onto its collection."""

    def __init__(self, path: str, id_field: str, ref_field: str, fields: frozenset[str]) -> None:
        self.path, self.id_field, self.ref_field, self.fields = path, id_field, ref_field, fields


ENTITY_RESOURCES = {"category": "categories", "product": "products", "variant": "variants"}
RESOURCES = {
    "categories": Resource("Categories", "cat_id", "cat_ref", mapping.CATEGORY_FIELDS),
    "products": Resource("Products", "prod_id", "prod_ref", mapping.PRODUCT_FIELDS - {"cat_id"}),
    "variants": Resource("Variants", "frmt_id", "frmt_ref", mapping.VARIANT_FIELDS),
}


API_118_URL = "https://api.saleslayer.com"
API_118_OPTIONS = (
    Option("api", choices=("2.0", "1.18"), help='"1.18" syncs through connectors; 2.0 is default'),
    Option("connector_code", help="API 1.18: the export connector's code"),
    Option("secret_key", secret=True, help="API 1.18: the export connector's secret key"),
    Option("pagination", types=(int,), help="API 1.18: items per export page (500-100000)"),
    Option("import_code", help="API 1.18: the import connector's code (for push)"),
    Option("import_secret", secret=True, help="API 1.18: the import connector's secret key"),
    Option(
        "import_poll_seconds",
        types=(float,),
        help="API 1.18: the longest wait between polls of an import (they start at 0.05 s)",
    ),
    Option("transient_wait", types=(float,), help="API 1.18: seconds before a busy retry"),
)


class SalesLayerPlatform(Platform):
    """Sales Layer PIM through the Catalog API 2.0."""

    name: ClassVar[str] = "saleslayer"
    # no pass ends in a sweep: deletions come from reconciliation (API-FACTS 2.4)
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream(
            "categories",
            "category",
            incremental_field="cat_modify",
            max_page_size=PAGE_SIZE,
            sweeps=False,
        ),
        Stream(
            "products",
            "product",
            incremental_field="prod_modify",
            max_page_size=PAGE_SIZE,
            also=("variant",),
            sweeps=False,
        ),
        Stream(
            "variants",
            "variant",
            incremental_field="frmt_modify",
            max_page_size=PAGE_SIZE,
            covered_by="products",
            sweeps=False,
        ),
    )
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "attributes",
            types=(list, str),
            expected='a list of field names or "*"',
            check=lambda v: (
                v == "*" or (isinstance(v, list) and all(isinstance(f, str) for f in v))
            ),
            help='extra fields to read into a record\'s attributes; "*" reads every field',
        ),
        Option(
            "variant_options",
            types=(dict,),
            expected='a table of variant field = option name, like { frmt_size = "size" }',
            check=lambda v: all(isinstance(n, str) and n for n in v.values()),
            help="variant fields that are options (size, colour), each with its option name",
        ),
        *API_118_OPTIONS,
    )

    def for_connection(self, options: Mapping[str, Any]) -> Platform:
        """API 1.18 connectors for a connection with ``api = "1.18"``; 2.0 otherwise."""
        if options.get("api") == "1.18":
            from salync_saleslayer.platform118 import SalesLayer118Platform

            return SalesLayer118Platform()
        return self

    def default_base_url(self, options: Mapping[str, Any]) -> str | None:
        return API_118_URL if options.get("api") == "1.18" else None

    def limits(self, options: Mapping[str, Any]) -> Limits:
        return Limits(windows=(Window(50, 10.0),))

    def credentials(self, options: Mapping[str, Any]) -> Credentials:
        return Credentials("header", header="X-API-KEY", secret=options.get("api_key"))

    # reading ------------------------------------------------------------------------

    async def fetch(
        self, ctx: ConnectionContext, stream: Stream, cursor: Any
    ) -> AsyncIterator[Page]:
        """A pass pages *by key*: ``$orderby=prod_id`` and ``prod_id gt <last id read>``, so an
        item deleted (or no longer matching) while the pass runs cannot shift a later one out
        of reach, as ``$skip`` would (issue 7). An item edited during the pass is read by the
        next one: its new ``prod_modify`` is after the pass start, which is fixed by the
        server's ``Date`` at the first page. The cursor keeps the last id, so a stopped sync
        resumes after the last committed page."""
        resource = RESOURCES[stream.name]
        state = WatermarkCursor.from_json(cursor)
        after = _resume_after(state)
        total: int | None = None
        while True:
            params = self._query(ctx, stream, state.since, after)
            data, response = await ctx.http.get_json(
                resource.path, params=params, headers=_headers(ctx)
            )
            items, next_link, count = _envelope(data, response.body, ctx.name, response.url)
            total = count if total is None else total  # later counts hold only what is left
            state = state.begin(response.server_time or datetime.now(UTC))
            full = state.since is None
            last = _last_id(items, resource, next_link, ctx.name, response)
            state = state.advance(None if last is None else str(last))
            yield Page(
                items, state.to_json(), response.url, complete=last is None, total=total, full=full
            )
            if last is None:
                return
            after = last

    def _query(
        self, ctx: ConnectionContext, stream: Stream, since: str | None, after: int | None = None
    ) -> dict[str, str]:
        # $orderby and gt/ge/and in $filter are documented for API 2.0 (API-FACTS §2.3:
        # guides/pagination-and-filtering, guides/filter); whether the real service pages a
        # filtered, ordered listing by an index on prod_id is not documented [UNVERIFIED].
        resource = RESOURCES[stream.name]
        params = {"$top": str(PAGE_SIZE), "$orderby": resource.id_field}
        select = self._select(ctx, stream.name)
        if select:
            params["$select"] = select
        if stream.name == "products":
            variant_select = self._select(ctx, "variants")
            params["$expand"] = (
                f"Variants($select={variant_select})" if variant_select else "Variants"
            )
        terms = []
        if since is not None:
            terms.append(f"{stream.incremental_field} ge {since}")
        if after is not None:
            terms.append(f"{resource.id_field} gt {after}")
        if terms:
            params["$filter"] = " and ".join(terms)
        return params

    def _select(self, ctx: ConnectionContext, stream: str) -> str:
        """The mapped fields plus the connection's ``attributes``; empty means all fields."""
        extra = ctx.options.get("attributes", [])
        if extra == "*":
            return ""
        fields = set(RESOURCES[stream].fields) | set(_prefixed(extra, stream))
        if stream == "variants":
            fields |= set(ctx.options.get("variant_options", {}))
        return ",".join(sorted(fields))

    def map_inbound(
        self, ctx: ConnectionContext, stream: Stream, item: Any
    ) -> Iterable[Record | Reject]:
        options = ctx.options.get("variant_options", {})
        if stream.name == "products":
            return mapping.product(item, options)
        if stream.name == "variants":
            return [mapping.variant(item, options)]
        return [mapping.category(item)]

    # reconciliation -----------------------------------------------------------------

    async def list_keys(self, ctx: ConnectionContext, stream: Stream) -> AsyncIterator[KeyPage]:
        """Every live key, paged by id like :meth:`fetch`: a scan paged with ``$skip`` would
        miss a live item whenever another is deleted during the scan, and reconciliation
        would then tombstone it. The products scan expands each product's variant keys
        (``$expand=Variants($select=frmt_id,frmt_ref)``), so one scan of ``ceil(products /
        100)`` pages lists the variants too and the ``variants`` stream needs no scan of its
        own (a nested ``$select`` in ``$expand`` is OData v4; the public API 2.0 pages show
        ``$expand=Variants`` only [UNVERIFIED]). The variant keys follow each page's product
        keys; a product without its ``Variants`` list withdraws them (``incomplete``): a
        partial list would tombstone live variants, so the variants stream scans its own."""
        resource = RESOURCES[stream.name]
        variants = RESOURCES["variants"]
        whole = stream.name == "products"  # the variant keys are listed whole, so far
        after: int | None = None
        while True:
            params = {
                "$select": f"{resource.id_field},{resource.ref_field}",
                "$top": str(PAGE_SIZE),
                "$orderby": resource.id_field,
            }
            if stream.name == "products":
                params["$expand"] = f"Variants($select={variants.id_field},{variants.ref_field})"
            if after is not None:
                params["$filter"] = f"{resource.id_field} gt {after}"
            data, response = await ctx.http.get_json(
                resource.path, params=params, headers=_headers(ctx)
            )
            items, next_link, _ = _envelope(data, response.body, ctx.name, response.url)
            yield KeyPage(_keys(items, resource), stream.entity)
            if whole:
                lists = [i.get("Variants") if isinstance(i, dict) else None for i in items]
                expanded = [v for listed in lists if isinstance(listed, list) for v in listed]
                if all(isinstance(listed, list) for listed in lists):
                    yield KeyPage(_keys(expanded, variants), "variant")
                else:
                    whole = False
                    yield KeyPage((), "variant", incomplete=True)
            last = _last_id(items, resource, next_link, ctx.name, response)
            if last is None:
                return
            after = last

    async def fetch_by_ids(
        self, ctx: ConnectionContext, stream: Stream, external_ids: Sequence[str]
    ) -> AsyncIterator[Page]:
        resource = RESOURCES[stream.name]
        ids = [i for i in external_ids if _id_value(i) is not None]  # never filter syntax
        for start in range(0, len(ids), PAGE_SIZE):
            batch = ids[start : start + PAGE_SIZE]
            params = self._query(ctx, stream, None)
            params["$filter"] = f"{resource.id_field} in ({','.join(batch)})"
            data, response = await ctx.http.get_json(
                resource.path, params=params, headers=_headers(ctx)
            )
            items, _, _ = _envelope(data, response.body, ctx.name, response.url)
            yield Page(items, None, response.url)

    # writing ----------------------------------------------------------------------------

    push_batch_size: ClassVar[int] = 1
    """The 2.0 API writes one item per call (``POST``/``PATCH``/``DELETE``); no bulk."""

    def writable_fields(self, entity: str) -> frozenset[str]:
        return mapping.WRITABLE.get(entity, frozenset())

    def holds(self, ctx: ConnectionContext, entity: str, field: str, key: str) -> bool:
        """Every locale; of attributes, only the catalog's own fields (``prod_*`` and so on)."""
        return field != "attributes" or key.startswith(mapping.PREFIX[entity])

    def map_outbound(self, ctx: ConnectionContext, item: Outbound) -> Any:
        if item.op == "delete":
            return None
        options = ctx.options.get("variant_options", {})
        return mapping.outbound(
            item.entity, item.key, item.fields, item.external_id is None, options
        )

    async def push(
        self, ctx: ConnectionContext, entity: str, batch: Sequence[tuple[Outbound, Any]]
    ) -> Sequence[PushResult]:
        resource = RESOURCES[ENTITY_RESOURCES[entity]]
        return [await self._push_one(ctx, resource, item, body) for item, body in batch]

    async def _push_one(
        self, ctx: ConnectionContext, resource: Resource, item: Outbound, body: Any
    ) -> PushResult:
        if item.external_id is not None and _id_value(item.external_id) is None:
            return PushResult(
                item.key,
                "rejected",
                message=f"{item.key}: {item.external_id!r} is not a Sales Layer id "
                "(an integer); nothing was sent",
            )
        path = f"{resource.path}({path_segment(item.external_id)})"
        try:
            if item.op == "delete":
                await ctx.http.request("DELETE", path, headers=_headers(ctx))
            elif item.external_id is not None:
                await ctx.http.request("PATCH", path, json=body, headers=_headers(ctx))
            else:
                return await self._create(ctx, resource, item, body)
        except NotFoundError:
            if item.op == "delete":
                return PushResult(item.key, "ok")  # already gone: the goal is reached
            return PushResult(
                item.key, "rejected", message=f"{item.key} no longer exists on Sales Layer"
            )
        return PushResult(item.key, "ok", external_id=item.external_id)

    async def _create(
        self, ctx: ConnectionContext, resource: Resource, item: Outbound, body: Any
    ) -> PushResult:
        if item.entity != "product":
            return PushResult(
                item.key,
                "rejected",
                message=f"creating {item.entity} records in Sales Layer is not supported; "
                "create it there first",
            )
        try:
            response = await ctx.http.request(
                "POST", resource.path, json=body, headers=_headers(ctx)
            )
        except RejectedError as exc:
            if "already exists" not in str(exc):
                raise
            existing = await self._id_by_ref(ctx, resource, item.key)
            body = {k: v for k, v in body.items() if k != resource.ref_field}
            await ctx.http.request(
                "PATCH",
                f"{resource.path}({path_segment(existing)})",
                json=body,
                headers=_headers(ctx),
            )
            return PushResult(item.key, "ok", external_id=existing)
        return PushResult(
            item.key, "ok", external_id=_id_from_location(response.headers.get("Location", ""))
        )

    async def _id_by_ref(self, ctx: ConnectionContext, resource: Resource, ref: str) -> str:
        quoted = ref.replace("'", "''")
        params = {"$filter": f"{resource.ref_field} eq '{quoted}'", "$select": resource.id_field}
        data, response = await ctx.http.get_json(
            resource.path, params=params, headers=_headers(ctx)
        )
        items, _, _ = _envelope(data, response.body, ctx.name, response.url)
        if not items:
            raise NotFoundError(f"{ref} exists and does not", connection=ctx.name, url=response.url)
        return str(items[0][resource.id_field])


def _id_value(value: Any) -> int | None:
    """A Sales Layer id (an integer, or its digits) as an int; ``None`` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _resume_after(state: WatermarkCursor) -> int | None:
    """The id a pass in progress continues after; ``None`` starts the pass (again) at the
    beginning, which is also how a cursor stored by an older version (a ``@nextLink``) is
    treated: re-reading is harmless, skipping is not."""
    return _id_value(state.next) if state.in_progress else None


def _last_id(
    items: Sequence[Any],
    resource: Resource,
    next_link: str | None,
    connection: str,
    response: Response,
) -> int | None:
    """The id the next page starts after, or ``None`` when the listing is done: the server
    linked no next page, or this page was empty."""
    if next_link is None or not items:
        return None
    ids = [_id_value(item.get(resource.id_field)) for item in items if isinstance(item, dict)]
    usable = [i for i in ids if i is not None]
    if not usable:
        raise BadResponseError(
            f"no item of the page has a usable {resource.id_field} to continue after",
            body=response.body,
            connection=connection,
            url=response.url,
        )
    return max(usable)


def _keys(items: Iterable[Any], resource: Resource) -> list[tuple[str, str]]:
    """``(reference, id)`` of the listed items that have a reference."""
    return [
        (str(i[resource.ref_field]), str(i[resource.id_field]))
        for i in items
        if isinstance(i, dict) and i.get(resource.ref_field)
    ]


def _id_from_location(location: str) -> str | None:
    """``…/Products(3)`` -> ``"3"``."""
    if location.endswith(")") and "(" in location:
        return location[location.rindex("(") + 1 : -1]
    return None


def _headers(ctx: ConnectionContext) -> dict[str, str]:
    return {"Accept-Language": ctx.locale}


def _prefixed(fields: Iterable[str], stream: str) -> Iterable[str]:
    prefix = {"products": "prod_", "variants": "frmt_", "categories": "cat_"}[stream]
    return (f for f in fields if f.startswith(prefix))


def _envelope(
    data: Any, body: bytes, connection: str, url: str
) -> tuple[list[Any], str | None, int | None]:
    """``value``, ``@nextLink`` and ``@count`` of a collection page, or a clear error."""
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise BadResponseError(
            'the page is not a Sales Layer collection (no "value" list)',
            body=body,
            connection=connection,
            url=url,
        )
    next_link = data.get("@nextLink")
    count = data.get("@count")
    return (
        data["value"],
        next_link if isinstance(next_link, str) and next_link else None,
        count if isinstance(count, int) else None,
    )
