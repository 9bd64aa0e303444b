"""An emulator of the Sales Layer Catalog API 2.0 (REST/OData), for plugin authors, tests and
benchmarks, following the public documentation (https://docs.api.saleslayer.com and the Sales
Layer support articles on API 2.0).

What it serves under ``/rest/Catalog`` (``X-API-KEY`` on every request):

* ``GET /Products``, ``/Variants``, ``/Categories`` with ``$select``, ``$filter``, ``$orderby``,
  ``$top`` (at most 100), ``$skip`` and ``$expand`` (``Variants`` on products, ``Products`` on
  categories, with a nested ``$select``), answered in the ``value``/``@count``/``@readLink``/
  ``@nextLink`` envelope;
* ``GET /Products(3)`` and the like, ``GET /Products/$metadata`` (a JSON Schema);
* ``POST`` (201 + ``Location``), ``PATCH`` (204) and ``DELETE`` (204) on the same resources.

Behaviour chosen where the public documentation is silent or contradicts itself:

* Localized fields are always answered as the full ``{culture: text}`` map, whatever the
  ``Accept-Language``: the published example sends ``Accept-Language: en`` and gets a map holding
  only ``es`` back, so the header does not select what is returned. It does decide the culture of
  a plain-string value in a write (``{"prod_title": "Coat"}``) and of a localized field named in
  ``$filter``/``$orderby``. An ``Accept-Language`` naming a culture the account does not have is
  refused only where a culture is needed.
* ``@nextLink`` advances ``$skip`` by the page length (the published example's ``$skip=3`` after
  two items looks like a typo) and is left out on the last page.
* PATCH answers 204 as the write articles say (the newer OpenAPI page says 200).
* Status ``X`` means deleted: such records are never listed or fetched, and writing ``X`` as a
  status is refused (use ``DELETE``). Deleting a product deletes its variants; deleting a
  category does not touch its children or the products filed under it.
* Problem bodies other than the documented 401 use ``https://api2.saleslayer.com/errors/<slug>``
  as their ``type``, following the 401's pattern.
* 429 answers carry ``Retry-After`` and no ``X-RateLimit-*`` headers (none are documented).

Admin routes (no key): ``POST /_emulator/config`` (``{"rate_limit": false}``), ``POST
/_emulator/touch`` (modify N products, for "1% changed" benchmarks) and ``GET
/_emulator/catalog/summary``, besides the toolkit's ``stats``, ``faults`` and ``reset-stats``.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from aiohttp import web

from salync_core.testing.accounts import (
    AccountAttribute,
    account_credential,
    account_seed,
    credential_account,
)
from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import (
    ACCOUNT_KEY,
    ADMIN_PREFIX,
    Emulator,
    Handler,
    json_response,
)
from salync_core.testing.limiters import SlidingWindow
from salync_saleslayer.dataset import (
    HEAVY_PRODUCT_FIELDS,
    HEAVY_VARIANT_FIELDS,
    PROFILES,
    Record,
    format_timestamp,
    generate_catalog,
    product_title,
)
from salync_saleslayer.odata import (
    Expand,
    Kind,
    ODataError,
    OrderKey,
    Predicate,
    instant,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_select,
    sort_records,
)

PAGE_LIMIT = 100
RATE_LIMIT = 50
RATE_WINDOW_SECONDS = 10.0
STATUSES = ("V", "I", "D", "R")
DELETED = "X"
PROBLEM_TYPE = "https://api2.saleslayer.com/errors/"
QUERY_CACHE_SIZE = 64
_SINCE = re.compile(r"(?P<field>\w+_modify) (?P<op>ge|gt) (?P<value>'?[0-9T:.+Z-]+'?)")
_KEYSET = re.compile(
    r"(?:(?P<since>(?P<field>\w+_modify) (?:ge|gt) '?[0-9T:.+Z-]+'?) and )?"
    r"(?P<id>\w+_id) gt (?P<after>\d+)"
)

# Entities -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A field of an entity and what a write may do with it."""

    kind: Kind
    create: bool = False
    """May be sent in a POST body."""
    update: bool = False
    """May be sent in a PATCH body."""
    nullable: bool = False
    """May be null (a write sends null to clear it)."""
    enum: tuple[str, ...] | None = None


def _editable(kind: Kind, *, nullable: bool = False) -> Field:
    return Field(kind, create=True, update=True, nullable=nullable)


_READ_ONLY_INT = Field(Kind.INT)
_TIMESTAMP = Field(Kind.DATETIME)
_STATUS = Field(Kind.STRING, create=True, update=True, enum=STATUSES)
_REFERENCE = Field(Kind.STRING, create=True)


@dataclass(frozen=True)
class Entity:
    """An entity set (``Products``) and the names of its key, reference and bookkeeping fields."""

    name: str
    id_field: str
    ref_field: str
    stat_field: str
    creation_field: str
    modify_field: str
    default_status: str
    fields: Mapping[str, Field]
    mandatory: tuple[str, ...]
    expands: tuple[str, ...] = ()
    kinds: Mapping[str, Kind] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        kinds = {name: spec.kind for name, spec in self.fields.items()}
        object.__setattr__(self, "kinds", kinds)


PRODUCTS = Entity(
    name="Products",
    id_field="prod_id",
    ref_field="prod_ref",
    stat_field="prod_stat",
    creation_field="prod_creation",
    modify_field="prod_modify",
    default_status="R",  # the documented metadata's default
    fields={
        "prod_id": _READ_ONLY_INT,
        "prod_ref": _REFERENCE,
        "prod_title": _editable(Kind.LOCALIZED),
        "prod_description": _editable(Kind.LOCALIZED),
        "prod_stat": _STATUS,
        "cat_id": _editable(Kind.INT_LIST),
        "cat_ref": Field(Kind.STRING_LIST),
        "prod_image": _editable(Kind.STRING_LIST),
        "prod_creation": _TIMESTAMP,
        "prod_modify": _TIMESTAMP,
        "prod_brand": _editable(Kind.STRING, nullable=True),
        "prod_material": _editable(Kind.LOCALIZED),
        "prod_weight": _editable(Kind.NUMBER, nullable=True),
        "prod_tags": _editable(Kind.STRING_LIST),
    },
    mandatory=("prod_ref",),
    expands=("Variants",),
)
VARIANTS = Entity(
    name="Variants",
    id_field="frmt_id",
    ref_field="frmt_ref",
    stat_field="frmt_stat",
    creation_field="frmt_creation",
    modify_field="frmt_modify",
    default_status="R",
    fields={
        "frmt_id": _READ_ONLY_INT,
        "frmt_ref": _REFERENCE,
        "prod_id": Field(Kind.INT, create=True),
        "prod_ref": Field(Kind.STRING),
        "frmt_stat": _STATUS,
        "frmt_size": _editable(Kind.STRING, nullable=True),
        "frmt_color": _editable(Kind.STRING, nullable=True),
        "frmt_price": _editable(Kind.NUMBER, nullable=True),
        "frmt_ean": _editable(Kind.STRING, nullable=True),
        "frmt_tags": _editable(Kind.STRING, nullable=True),
        "frmt_link": _editable(Kind.STRING, nullable=True),
        "frmt_creation": _TIMESTAMP,
        "frmt_modify": _TIMESTAMP,
    },
    mandatory=("frmt_ref", "prod_id"),
)
CATEGORIES = Entity(
    name="Categories",
    id_field="cat_id",
    ref_field="cat_ref",
    stat_field="cat_stat",
    creation_field="cat_creation",
    modify_field="cat_modify",
    default_status="V",
    fields={
        "cat_id": _READ_ONLY_INT,
        "cat_ref": _REFERENCE,
        "cat_title": _editable(Kind.LOCALIZED),
        "cat_description": _editable(Kind.LOCALIZED),
        "cat_parent_id": _editable(Kind.INT, nullable=True),
        "cat_parent_ref": Field(Kind.STRING, nullable=True),
        "cat_stat": _STATUS,
        "cat_tags": _editable(Kind.STRING_LIST),
        "cat_creation": _TIMESTAMP,
        "cat_modify": _TIMESTAMP,
    },
    mandatory=("cat_ref",),
    expands=("Products",),
)
ENTITIES = (PRODUCTS, VARIANTS, CATEGORIES)
"""The entity sets of the ``standard`` catalog profile."""

_CUSTOM_KINDS = {
    "string": _editable(Kind.STRING, nullable=True),
    "integer": _editable(Kind.INT, nullable=True),
    "number": _editable(Kind.NUMBER, nullable=True),
    "string list": _editable(Kind.STRING_LIST),
    "date-time": _editable(Kind.DATETIME, nullable=True),
    "localized": _editable(Kind.LOCALIZED),
}


def entities_for(profile: str) -> tuple[Entity, Entity, Entity]:
    """Products, variants and categories as a catalog of ``profile`` defines them: the
    ``heavy`` profile's custom attributes are fields of their entity like any other (a
    ``$select``, a ``$filter`` or a write may name them)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown catalog profile {profile!r}; use one of {', '.join(PROFILES)}")
    if profile == "standard":
        return ENTITIES

    def extended(entity: Entity, custom: Mapping[str, str]) -> Entity:
        fields = {**entity.fields, **{name: _CUSTOM_KINDS[kind] for name, kind in custom.items()}}
        return dataclasses.replace(entity, fields=fields)

    return (
        extended(PRODUCTS, HEAVY_PRODUCT_FIELDS),
        extended(VARIANTS, HEAVY_VARIANT_FIELDS),
        CATEGORIES,
    )


class Table:
    """One entity's records by id (ascending, since ids only grow) and its live references."""

    def __init__(self, entity: Entity, records: dict[int, Record]) -> None:
        self.entity = entity
        self.records = records
        self.live_refs = {
            record[entity.ref_field]: record_id
            for record_id, record in records.items()
            if record[entity.stat_field] != DELETED
        }
        self.next_id = max(records, default=0) + 1
        modify = entity.modify_field
        self._by_modify = sorted((instant(r[modify]) or "", i) for i, r in records.items())
        self._since_built: list[tuple[str, int]] = []
        """(modify, id) of every write since the index was built: writes stamp the clock's
        now, which never goes back, so appending keeps this list sorted too."""

    def touched(self, record: Record) -> None:
        """Note that ``record``'s modification time was just set."""
        entry = (instant(record[self.entity.modify_field]) or "", record[self.entity.id_field])
        self._since_built.append(entry)

    def changed_since(self, moment: str, inclusive: bool) -> list[int]:
        """Ids of live records modified at (``ge``) or after (``gt``) ``moment``, in id order.
        A record written several times has stale entries too; every one of them is no later
        than its true time, so "some entry is late enough" means "the record is"."""
        bound = (moment, -1) if inclusive else (moment, 1 << 62)
        ids = {i for _, i in self._by_modify[bisect.bisect_left(self._by_modify, bound) :]}
        ids.update(i for _, i in self._since_built[bisect.bisect_left(self._since_built, bound) :])
        return sorted(i for i in ids if self.live(i) is not None)

    def live(self, record_id: int) -> Record | None:
        record = self.records.get(record_id)
        if record is None or record[self.entity.stat_field] == DELETED:
            return None
        return record

    def live_ids(self) -> list[int]:
        """Ids of the live records, ascending (records are kept in id order)."""
        stat = self.entity.stat_field
        return [i for i, record in self.records.items() if record[stat] != DELETED]

    def live_records(self) -> list[Record]:
        stat = self.entity.stat_field
        return [record for record in self.records.values() if record[stat] != DELETED]

    def insert(self, record: Record) -> None:
        record_id = record[self.entity.id_field]
        self.records[record_id] = record
        self.live_refs[record[self.entity.ref_field]] = record_id
        self.next_id = record_id + 1
        self.touched(record)

    def mark_deleted(self, record: Record, timestamp: str) -> None:
        record[self.entity.stat_field] = DELETED
        record[self.entity.modify_field] = timestamp
        self.live_refs.pop(record[self.entity.ref_field], None)


# Answers ------------------------------------------------------------------------------------


class ApiError(Exception):
    """Raised anywhere below a handler to answer with ``response`` instead."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def problem(
    status: int,
    detail: str,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An RFC 9457 ``application/problem+json`` answer shaped like the documented 401."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:  # an injected fault may use any status, 520 say
        title = "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/problem+json",
        headers=headers,
    )


def validation_failed(failures: Mapping[str, list[str]]) -> ApiError:
    """400 ``{"validationFailures": {"field": ["message"]}}``."""
    return ApiError(json_response({"validationFailures": failures}, 400))


def bad_request(message: str) -> ApiError:
    """400 whose body is a bare JSON string, as the write endpoints answer."""
    return ApiError(json_response(message, 400))


class _FieldError(ValueError):
    """A value a write may not store in a field."""


@dataclass(frozen=True)
class _Query:
    """A request's query options, parsed and compiled."""

    select: tuple[str, ...] | None
    expands: Mapping[str, Expand]
    filter_text: str
    matches: Predicate | None
    orderby_text: str
    order: tuple[OrderKey, ...]
    culture: str | None
    top: int
    skip: int


_LIST_OPTIONS = frozenset({"$select", "$expand", "$filter", "$orderby", "$top", "$skip"})
_ITEM_OPTIONS = frozenset({"$select", "$expand"})


# The emulator -------------------------------------------------------------------------------


class SalesLayerEmulator(Emulator):
    """The Sales Layer Catalog API 2.0 over a generated catalog of ``products`` products.

    ``rate_limit`` switches the 50-requests-per-10-seconds limit (also at runtime through
    ``POST /_emulator/config``). ``locales`` are the account's cultures (``en``, ``es`` and
    ``fr`` by default; ``en`` and ``es`` for the heavy profile); ``default_locale`` is the one
    used when a request has no ``Accept-Language``. ``profile`` is the catalog's shape:
    ``standard`` or ``heavy`` (custom attributes and long descriptions, see
    :mod:`salync_saleslayer.dataset`).

    ``accounts`` serves that many accounts, each with its own catalog of ``products`` products
    (seeded from ``seed`` and its index, built on its first request), its own key
    (``account_options(i)``) and its own rate limit; account 0 is the one described above.
    """

    name: ClassVar[str] = "saleslayer"
    api_prefix: ClassVar[str] = "/rest/Catalog"

    _tables: AccountAttribute[dict[str, Table]] = AccountAttribute()
    _variants_of: AccountAttribute[dict[int, list[int]]] = AccountAttribute()
    _products_in: AccountAttribute[dict[int, list[int]] | None] = AccountAttribute()
    _query_cache: AccountAttribute[dict[tuple[str, str, str, str | None], list[int]]] = (
        AccountAttribute()
    )
    _touch_revision: AccountAttribute[int] = AccountAttribute()
    _rate_limit: AccountAttribute[bool] = AccountAttribute()
    _window: AccountAttribute[SlidingWindow] = AccountAttribute()

    def __init__(
        self,
        *,
        products: int = 100,
        seed: int = 0,
        api_key: str = "sl-test-key",
        rate_limit: bool = True,
        clock: ScaledClock | None = None,
        locales: tuple[str, ...] | None = None,
        default_locale: str = "en",
        profile: str = "standard",
        accounts: int = 1,
    ) -> None:
        products_entity, variants_entity, categories_entity = entities_for(profile)
        self._entities = {
            entity.name: entity for entity in (products_entity, variants_entity, categories_entity)
        }
        if locales is None:
            locales = ("en", "es") if profile == "heavy" else ("en", "es", "fr")
        if default_locale not in locales:
            raise ValueError(f"default locale {default_locale!r} is not one of {locales}")
        super().__init__(seed=seed, clock=clock, accounts=accounts)
        self.api_key = api_key
        """Account 0's key; account i's is ``account_options(i)["api_key"]``."""
        self.locales = locales
        self.default_locale = default_locale
        self._cultures = {locale.lower(): locale for locale in locales}
        self._products, self._profile, self._rate_limit_default = products, profile, rate_limit
        self._created = self.clock.now()
        self.unexpanded: set[int] = set()
        """Ids of items answered without their ``$expand`` navigations, as a server that
        ignores a nested ``$select`` might (the public pages show only ``$expand=Variants``)."""
        self.account_state()  # account 0 at once
        self.app.middlewares.append(self._gate)

    def init_account(self, index: int) -> None:
        """The account's catalog (seeded from the emulator's seed and its index), limit and
        caches."""
        self._rate_limit = self._rate_limit_default
        self._window = SlidingWindow(RATE_LIMIT, RATE_WINDOW_SECONDS, self.clock)
        catalog = generate_catalog(
            products=self._products,
            seed=account_seed(self.seed, index),
            locales=self.locales,
            now=self._created,
            profile=self._profile,
        )
        entities = self._entities
        self._tables = {
            PRODUCTS.name: Table(entities[PRODUCTS.name], catalog.products),
            VARIANTS.name: Table(entities[VARIANTS.name], catalog.variants),
            CATEGORIES.name: Table(entities[CATEGORIES.name], catalog.categories),
        }
        variants_of: dict[int, list[int]] = {}
        for variant in catalog.variants.values():
            variants_of.setdefault(variant["prod_id"], []).append(variant["frmt_id"])
        self._variants_of = variants_of
        self._products_in = None
        self._query_cache = {}
        self._touch_revision = 0

    def account_for_request(self, request: web.Request) -> int | None:
        return credential_account(
            self.api_key, request.headers.get("X-API-KEY", ""), self.account_count
        )

    def account_options(self, index: int) -> dict[str, str]:
        """``plugin``, ``base_url`` and ``api_key`` of account ``index``."""
        return {
            "plugin": "saleslayer",
            "base_url": self.base_url,
            "api_key": account_credential(self.api_key, index),
        }

    # Python API for tests' assertions ---------------------------------------------------

    @property
    def rate_limit(self) -> bool:
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, enabled: bool) -> None:
        if enabled and not self._rate_limit:
            self._window = SlidingWindow(RATE_LIMIT, RATE_WINDOW_SECONDS, self.clock)
        self._rate_limit = enabled

    def product_by_ref(self, ref: str) -> dict[str, Any] | None:
        """A copy of the live product with this reference, or ``None``."""
        return self._by_ref(PRODUCTS.name, ref)

    def variant_by_ref(self, ref: str) -> dict[str, Any] | None:
        return self._by_ref(VARIANTS.name, ref)

    def category_by_ref(self, ref: str) -> dict[str, Any] | None:
        return self._by_ref(CATEGORIES.name, ref)

    def live_product_refs(self) -> set[str]:
        """References of every product a full listing would return."""
        return set(self._tables[PRODUCTS.name].live_refs)

    def corrupt(self, collection: str, record_id: int, field_name: str, value: Any) -> None:
        """Store a value the API itself would refuse (a missing reference, a wrong type) in
        ``collection`` (``"Products"``, ``"Variants"``, ``"Categories"``), to test how a client
        treats bad data coming from the platform."""
        self._tables[collection].records[record_id][field_name] = value
        self._changed()

    def delete(self, collection: str, record_id: int) -> bool:
        """Delete a live record as ``DELETE /{collection}({id})`` would (a product takes its
        variants along); returns whether it was live. For tests and hooks that change the
        catalog while a client pages through it."""
        entity = self._entities[collection]
        record = self._tables[collection].live(record_id)
        if record is not None:
            self._delete_record(entity, record)
        return record is not None

    def edit(self, collection: str, record_id: int, changes: Mapping[str, Any]) -> bool:
        """Store ``changes`` (values as the API stores them, unchecked) in a live record and
        stamp its modification time, as a ``PATCH`` would; returns whether it was live."""
        table = self._tables[collection]
        record = table.live(record_id)
        if record is not None:
            record.update(copy.deepcopy(dict(changes)))
            record[table.entity.modify_field] = self._now()
            table.touched(record)
            self._changed()
        return record is not None

    def live_refs(self, collection: str) -> set[str]:
        """References of the live records of ``collection``."""
        return set(self._tables[collection].live_refs)

    def live_ids(self, collection: str) -> list[int]:
        """Ids of the live records of ``collection``, ascending."""
        return self._tables[collection].live_ids()

    def summary(self) -> dict[str, dict[str, int]]:
        """Live and deleted record counts per entity."""
        counts = {}
        for name, table in self._tables.items():
            live = len(table.live_refs)
            counts[name.lower()] = {"live": live, "deleted": len(table.records) - live}
        return counts

    def _by_ref(self, collection: str, ref: str) -> dict[str, Any] | None:
        table = self._tables[collection]
        record_id = table.live_refs.get(ref)
        return None if record_id is None else copy.deepcopy(table.records[record_id])

    # routes ---------------------------------------------------------------------------

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        for entity in self._entities.values():
            collection = f"{self.api_prefix}/{entity.name}"
            item = collection + "({id})"
            router.add_get(collection, self._bind(self._list, entity))
            router.add_post(collection, self._bind(self._create, entity))
            router.add_get(collection + "/$metadata", self._bind(self._metadata, entity))
            router.add_get(item, self._bind(self._get, entity))
            router.add_patch(item, self._bind(self._update, entity))
            router.add_delete(item, self._bind(self._delete, entity))
        router.add_post(ADMIN_PREFIX + "config", self._admin_config)
        router.add_post(ADMIN_PREFIX + "touch", self._admin_touch)
        router.add_get(ADMIN_PREFIX + "catalog/summary", self._admin_summary)

    @staticmethod
    def _bind(
        handler: Callable[[web.Request, Entity], Awaitable[web.Response]], entity: Entity
    ) -> Handler:
        async def bound(request: web.Request) -> web.StreamResponse:
            return await handler(request, entity)

        return bound

    def error_response(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """Injected faults answer with problem+json too."""
        return problem(status, message, headers=headers)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """API key, then the rate limit, then the handler; :class:`ApiError` becomes its answer."""
        if not request.path.startswith(self.api_prefix + "/"):
            return await handler(request)
        if request.get(ACCOUNT_KEY) is None:
            return problem(401, "A valid API key is required.", request.path)
        if self._rate_limit:
            wait = self._window.hit()
            if wait is not None:
                retry_after = str(max(1, math.ceil(wait)))
                detail = f"Rate limit of {RATE_LIMIT} requests per 10 seconds exceeded."
                return problem(429, detail, request.path, {"Retry-After": retry_after})
        try:
            return await handler(request)
        except ApiError as error:
            return error.response
        except web.HTTPClientError as error:  # no such route: problem+json like every error
            allow = error.headers.get("Allow")
            detail = f"{request.method} {request.path} is not a resource of this API."
            return problem(error.status, detail, request.path, {"Allow": allow} if allow else None)

    # reads ------------------------------------------------------------------------------

    async def _list(self, request: web.Request, entity: Entity) -> web.Response:
        query = self._query(request, entity, _LIST_OPTIONS)
        ids = self._matching_ids(entity, query)
        page = ids[query.skip : query.skip + query.top]
        records = self._tables[entity.name].records
        body: dict[str, Any] = {
            "value": [self._project(records[i], entity, query.select, query.expands) for i in page],
            "@count": len(ids),
            "@readLink": str(request.url),
        }
        next_skip = query.skip + len(page)
        if page and next_skip < len(ids):  # an empty page ($top=0) must not link to itself
            body["@nextLink"] = str(request.url.update_query({"$skip": str(next_skip)}))
        return json_response(body)

    async def _get(self, request: web.Request, entity: Entity) -> web.Response:
        record = self._live_or_404(request, entity)
        query = self._query(request, entity, _ITEM_OPTIONS)
        return json_response(self._project(record, entity, query.select, query.expands))

    async def _metadata(self, request: web.Request, entity: Entity) -> web.Response:
        return json_response(self._schema(entity, str(request.url)))

    def _query(self, request: web.Request, entity: Entity, allowed: frozenset[str]) -> _Query:
        """The request's query options, parsed; every malformed one is reported in one 400."""
        params = request.rel_url.query
        failures = {
            name: [f"Unsupported query option; use {', '.join(sorted(allowed))}."]
            for name in params
            if name.startswith("$") and name not in allowed
        }

        def parsed(name: str, parse: Callable[[str], Any], default: Any) -> Any:
            text = params.get(name)
            if text is None or not text.strip() or name not in allowed:
                return default
            try:
                return parse(text)
            except (ODataError, ValueError) as error:
                failures[name] = [str(error)]
                return default

        filter_text, orderby_text = params.get("$filter", ""), params.get("$orderby", "")
        culture = self._culture(request) if filter_text or orderby_text else None
        query = _Query(
            select=parsed("$select", lambda text: parse_select(text, entity.fields), None),
            expands=parsed(
                "$expand", lambda text: parse_expand(text, self._navigations(entity)), {}
            ),
            filter_text=filter_text,
            matches=parsed("$filter", lambda text: parse_filter(text, entity.kinds, culture), None),
            orderby_text=orderby_text,
            order=parsed("$orderby", lambda text: parse_orderby(text, entity.kinds, culture), ()),
            culture=culture,
            top=parsed("$top", lambda text: min(_non_negative(text), PAGE_LIMIT), PAGE_LIMIT),
            skip=parsed("$skip", _non_negative, 0),
        )
        if failures:
            raise validation_failed(failures)
        return query

    def _matching_ids(self, entity: Entity, query: _Query) -> list[int]:
        """Ids of the live records matching ``$filter`` in ``$orderby`` order (id order by
        default). Cached per query until the next write, so paging through a filtered
        listing evaluates the filter once rather than once per page; a keyset page (``…
        and prod_id gt 300`` in id order) slices the cached ids of the query without its
        id bound, so paging by key costs no more than paging by ``$skip``."""
        keyset = self._keyset(entity, query)
        if keyset is not None:
            since, after = keyset
            ids = self._cached(
                (entity.name, since, "", None), lambda: self._ids_since(entity, since)
            )
            return ids[bisect.bisect_right(ids, after) :]
        key = (entity.name, query.filter_text, query.orderby_text, query.culture)
        return self._cached(key, lambda: self._searched(entity, query))

    def _cached(
        self, key: tuple[str, str, str, str | None], compute: Callable[[], list[int]]
    ) -> list[int]:
        ids = self._query_cache.get(key)
        if ids is None:
            ids = compute()
            if len(self._query_cache) >= QUERY_CACHE_SIZE:
                del self._query_cache[next(iter(self._query_cache))]
            self._query_cache[key] = ids
        return ids

    def _searched(self, entity: Entity, query: _Query) -> list[int]:
        ids = None
        if _SINCE.fullmatch(query.filter_text or "") and _in_id_order(entity, query):
            ids = self._changed_since(entity, query.filter_text)
        return self._evaluate(entity, query) if ids is None else ids

    def _keyset(self, entity: Entity, query: _Query) -> tuple[str, int] | None:
        """``("prod_modify ge T", 300)`` for the keyset query a sync client sends
        (``[X_modify ge|gt T and ]X_id gt N`` in id order), else ``None``."""
        match = _KEYSET.fullmatch(query.filter_text or "")
        if match is None or match["id"] != entity.id_field or not _in_id_order(entity, query):
            return None
        if match["field"] not in (None, entity.modify_field):
            return None
        since = match["since"] or ""
        return since, int(match["after"])

    def _ids_since(self, entity: Entity, since: str) -> list[int]:
        """Live ids in id order, of records changed since ``since`` (all when it is empty)."""
        if not since:
            return self._tables[entity.name].live_ids()
        ids = self._changed_since(entity, since)
        if ids is None:  # an unreadable moment: let the full evaluation report it
            ids = self._evaluate(entity, self._parsed_filter(entity, since))
        return ids

    def _parsed_filter(self, entity: Entity, text: str) -> _Query:
        matches = parse_filter(text, entity.kinds, None)
        return _Query(None, {}, text, matches, "", (), None, PAGE_LIMIT, 0)

    def _changed_since(self, entity: Entity, filter_text: str) -> list[int] | None:
        """The incremental query every sync client sends (``X_modify ge|gt T`` in id order),
        answered from the table's modification index instead of a scan of the catalog."""
        match = _SINCE.fullmatch(filter_text)
        if match is None or match["field"] != entity.modify_field:
            return None
        try:
            moment = instant(match["value"].strip("'")) or ""
        except ODataError:
            return None
        return self._tables[entity.name].changed_since(moment, inclusive=match["op"] == "ge")

    def _evaluate(self, entity: Entity, query: _Query) -> list[int]:
        """Matching ids by a scan. Ids are the table's keys, not read back from the records,
        so a record :meth:`corrupt` gave a bad id is still listed (and id order is key order)."""
        table = self._tables[entity.name]
        ids = table.live_ids()
        if query.matches is not None:
            ids = [i for i in ids if query.matches(table.records[i])]
        if query.order and not _in_id_order(entity, query):
            by_id = {id(table.records[i]): i for i in ids}
            ordered = sort_records([table.records[i] for i in ids], query.order)
            ids = [by_id[id(record)] for record in ordered]
        return ids

    def _project(
        self,
        record: Record,
        entity: Entity,
        select: Sequence[str] | None,
        expands: Mapping[str, Expand],
    ) -> Record:
        """The record as answered: its selected fields and expanded navigations. Without
        either it is the stored dict itself, serialized before anything can change it."""
        if not expands:
            return record if select is None else {name: record[name] for name in select}
        item = dict(record) if select is None else {name: record[name] for name in select}
        if record[entity.id_field] in self.unexpanded:
            return item
        for expand in expands.values():
            related = self._related(entity, record[entity.id_field])
            if expand.select is not None:
                related = [{name: other[name] for name in expand.select} for other in related]
            item[expand.name] = related
            item[f"{expand.name}@count"] = len(related)
        return item

    def _related(self, entity: Entity, record_id: int) -> list[Record]:
        """The live variants of a product, or the live products filed under a category."""
        if entity.name == PRODUCTS.name:
            other, ids = VARIANTS, self._variants_of.get(record_id)
        else:
            other, ids = PRODUCTS, self._products_by_category().get(record_id)
        if not ids:
            return []
        records, stat = self._tables[other.name].records, other.stat_field
        return [record for record in map(records.__getitem__, ids) if record[stat] != DELETED]

    def _navigations(self, entity: Entity) -> dict[str, Mapping[str, Field]]:
        """What ``$expand`` may name on ``entity``, with the fields of each."""
        return {name: self._entities[name].fields for name in entity.expands}

    def _products_by_category(self) -> dict[int, list[int]]:
        if self._products_in is None:
            self._products_in = {}
            for product in self._tables[PRODUCTS.name].live_records():
                for cat_id in product["cat_id"]:
                    self._products_in.setdefault(cat_id, []).append(product["prod_id"])
        return self._products_in

    def _live_or_404(self, request: web.Request, entity: Entity) -> Record:
        key = request.match_info["id"]
        valid = key.isascii() and key.isdigit()
        record = self._tables[entity.name].live(int(key)) if valid else None
        if record is None:
            detail = f"{entity.name} with id {key} was not found."
            raise ApiError(problem(404, detail, request.path))
        return record

    def _culture(self, request: web.Request) -> str | None:
        """The request's culture: ``Accept-Language`` (``en``, ``en-US``), or the default when it
        is absent; ``None`` when it names no culture of the account."""
        header = request.headers.get("Accept-Language", "").strip().lower()
        if not header:
            return self.default_locale
        return self._cultures.get(header) or self._cultures.get(header.split("-")[0])

    def _schema(self, entity: Entity, url: str) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the entity as this emulator answers it."""
        properties = {
            name: self._field_schema(entity, spec) for name, spec in entity.fields.items()
        }
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": url,
            "title": entity.name,
            "type": "object",
            "properties": properties,
            "required": list(entity.mandatory),
        }

    def _field_schema(self, entity: Entity, spec: Field) -> dict[str, Any]:
        schema: dict[str, Any]
        if spec.kind is Kind.LOCALIZED:
            schema = {
                "type": "object",
                "propertyNames": {"enum": list(self.locales)},
                "additionalProperties": {"type": "string"},
            }
        elif spec.kind in (Kind.INT_LIST, Kind.STRING_LIST):
            item = "integer" if spec.kind is Kind.INT_LIST else "string"
            schema = {"type": "array", "items": {"type": item}}
        else:
            json_type = {Kind.INT: "integer", Kind.NUMBER: "number"}.get(spec.kind, "string")
            schema = {"type": [json_type, "null"] if spec.nullable else json_type}
            if spec.kind is Kind.DATETIME:
                schema["format"] = "date-time"
        if spec.enum is not None:
            schema["enum"] = list(spec.enum)
            schema["default"] = entity.default_status
        if not (spec.create or spec.update):
            schema["readOnly"] = True
        return schema

    # writes -----------------------------------------------------------------------------

    async def _create(self, request: web.Request, entity: Entity) -> web.Response:
        body = await _json_object(request)
        table = self._tables[entity.name]
        for name in entity.mandatory:
            if body.get(name) in (None, ""):
                raise bad_request(f"Attribute {name} is mandatory")
        changes = self._validated(entity, body, self._culture(request), None)
        if changes[entity.ref_field] in table.live_refs:
            raise bad_request(f"Reference {changes[entity.ref_field]} already exists")
        self._link(request, entity, changes, table.next_id)
        record = self._blank(entity, table.next_id)
        record.update(changes)
        table.insert(record)
        if entity.name == VARIANTS.name:
            self._variants_of.setdefault(record["prod_id"], []).append(record["frmt_id"])
        self._changed()
        location = (
            f"{request.url.origin()}{self.api_prefix}/{entity.name}({record[entity.id_field]})"
        )
        return web.Response(status=201, headers={"Location": location})

    async def _update(self, request: web.Request, entity: Entity) -> web.Response:
        record = self._live_or_404(request, entity)
        body = await _json_object(request)
        changes = self._validated(entity, body, self._culture(request), record)
        self._link(request, entity, changes, record[entity.id_field])
        record.update(changes)
        record[entity.modify_field] = self._now()
        self._tables[entity.name].touched(record)
        self._changed()
        return web.Response(status=204)

    async def _delete(self, request: web.Request, entity: Entity) -> web.Response:
        self._delete_record(entity, self._live_or_404(request, entity))
        return web.Response(status=204)

    def _delete_record(self, entity: Entity, record: Record) -> None:
        now = self._now()
        self._tables[entity.name].mark_deleted(record, now)
        if entity.name == PRODUCTS.name:
            variants = self._tables[VARIANTS.name]
            for variant_id in self._variants_of.get(record["prod_id"], ()):
                variant = variants.live(variant_id)
                if variant is not None:
                    variants.mark_deleted(variant, now)
        self._changed()

    def _now(self) -> str:
        return format_timestamp(self.clock.time())

    def _changed(self) -> None:
        """Forget everything derived from the data: the next read sees the write."""
        self._query_cache.clear()
        self._products_in = None

    def _blank(self, entity: Entity, record_id: int) -> Record:
        """A new record: every field empty, then id, status and timestamps set."""
        empty: dict[Kind, Callable[[], Any]] = {
            Kind.LOCALIZED: dict,
            Kind.INT_LIST: list,
            Kind.STRING_LIST: list,
        }
        record = {
            name: empty.get(spec.kind, lambda: None)() for name, spec in entity.fields.items()
        }
        now = self._now()
        record[entity.id_field] = record_id
        record[entity.stat_field] = entity.default_status
        record[entity.creation_field] = record[entity.modify_field] = now
        return record

    def _validated(
        self, entity: Entity, body: Mapping[str, Any], culture: str | None, current: Record | None
    ) -> dict[str, Any]:
        """The body's values as they will be stored; unknown, read-only and ill-typed fields
        are all reported in one 400."""
        creating = current is None
        failures: dict[str, list[str]] = {}
        changes: dict[str, Any] = {}
        for name, value in body.items():
            spec = entity.fields.get(name)
            if spec is None:
                failures[name] = [f"Unknown field {name}."]
            elif not (spec.create if creating else spec.update):
                failures[name] = [f"{name} cannot be {'set' if creating else 'edited'}."]
            else:
                try:
                    old = None if current is None else current[name]
                    changes[name] = self._coerced(spec, value, culture, old)
                except _FieldError as error:
                    failures[name] = [str(error)]
        if failures:
            raise validation_failed(failures)
        return changes

    def _coerced(self, spec: Field, value: Any, culture: str | None, old: Any) -> Any:
        if value is None:
            if spec.nullable:
                return None
            raise _FieldError("This field cannot be null.")
        if spec.kind is Kind.LOCALIZED:
            return self._localized(value, culture, old)
        if spec.kind is Kind.INT:
            return _integer(value)
        if spec.kind is Kind.INT_LIST:
            values = value if isinstance(value, list) else [value]
            return list(dict.fromkeys(_integer(item) for item in values))
        if spec.kind is Kind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _FieldError("Expected a number.")
            return value
        if spec.kind is Kind.STRING_LIST:
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise _FieldError("Expected a string or a list of strings.")
            return values
        if not isinstance(value, str):
            raise _FieldError("Expected a string.")
        if spec.enum is not None and value not in spec.enum:
            raise _FieldError(f"Expected one of {', '.join(spec.enum)}.")
        return value

    def _localized(self, value: Any, culture: str | None, old: Any) -> dict[str, str]:
        """A plain string is text in the request's culture; an object is merged culture by
        culture into what is stored. Returns a new map (stored maps may be shared)."""
        if isinstance(value, str):
            if culture is None:
                raise _FieldError(
                    "Accept-Language names no culture of this account; send a "
                    f"{{culture: text}} object or use one of {', '.join(self.locales)}."
                )
            value = {culture: value}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _FieldError("Expected a string or an object of culture to text.")
        merged = dict(old or {})
        for key, text in value.items():
            culture_key = self._cultures.get(key.lower())
            if culture_key is None:
                raise _FieldError(f"Unknown culture {key}; use {', '.join(self.locales)}.")
            merged[culture_key] = text
        return merged

    def _link(
        self, request: web.Request, entity: Entity, changes: dict[str, Any], record_id: int
    ) -> None:
        """Check the ids a write refers to and fill in the matching references."""
        if entity.name == PRODUCTS.name and "cat_id" in changes:
            changes["cat_ref"] = [
                self._category_ref(cat_id, "cat_id") for cat_id in changes["cat_id"]
            ]
        elif entity.name == CATEGORIES.name and changes.get("cat_parent_id") is not None:
            parent_id = changes["cat_parent_id"]
            changes["cat_parent_ref"] = self._category_ref(parent_id, "cat_parent_id")
            if self._is_ancestor_or_self(record_id, parent_id):
                raise validation_failed({"cat_parent_id": ["A category cannot be its own parent."]})
        elif entity.name == CATEGORIES.name and "cat_parent_id" in changes:
            changes["cat_parent_ref"] = None
        elif entity.name == VARIANTS.name and "prod_id" in changes:
            product = self._tables[PRODUCTS.name].live(changes["prod_id"])
            if product is None:
                detail = f"Products with id {changes['prod_id']} was not found."
                raise ApiError(problem(404, detail, request.path))
            changes["prod_ref"] = product["prod_ref"]

    def _category_ref(self, cat_id: int, field_name: str) -> str:
        category = self._tables[CATEGORIES.name].live(cat_id)
        if category is None:
            raise validation_failed({field_name: [f"Category {cat_id} does not exist."]})
        ref: str = category["cat_ref"]
        return ref

    def _is_ancestor_or_self(self, record_id: int, category_id: int | None) -> bool:
        """Whether ``record_id`` is ``category_id`` or one of its ancestors."""
        categories = self._tables[CATEGORIES.name].records
        seen: set[int] = set()
        while category_id is not None and category_id not in seen:
            if category_id == record_id:
                return True
            seen.add(category_id)
            category_id = categories[category_id]["cat_parent_id"]
        return False

    # admin ------------------------------------------------------------------------------

    async def _admin_config(self, request: web.Request) -> web.Response:
        """``{"rate_limit": false}`` switches the rate limit; answers the configuration."""
        try:
            changes = await request.json(loads=orjson.loads)
            if not isinstance(changes, dict) or set(changes) - {"rate_limit"}:
                raise ValueError("the only setting is rate_limit")
            if "rate_limit" in changes:
                if not isinstance(changes["rate_limit"], bool):
                    raise ValueError("rate_limit must be true or false")
                self.rate_limit = changes["rate_limit"]
        except ValueError as error:
            return json_response({"error": "bad_request", "message": str(error)}, 400)
        return json_response({"rate_limit": self.rate_limit})

    async def _admin_touch(self, request: web.Request) -> web.Response:
        """``{"count": N, "seed": S}``: give N distinct live products a new title in every
        culture and bump their ``prod_modify``; answers their ids and the timestamp."""
        try:
            body = await request.json(loads=orjson.loads)
            count, seed = body.get("count"), body.get("seed", 0)
            if not isinstance(count, int) or not isinstance(seed, int) or count < 0:
                raise ValueError("count must be a non-negative integer and seed an integer")
            ids = self._touch(count, seed)
        except (ValueError, AttributeError) as error:
            return json_response({"error": "bad_request", "message": str(error)}, 400)
        return json_response({"ids": ids, "modified_at": self._now()})

    def _touch(self, count: int, seed: int) -> list[int]:
        table = self._tables[PRODUCTS.name]
        live = sorted(table.live_refs.values())
        if count > len(live):
            raise ValueError(f"only {len(live)} live products")
        rng = random.Random(seed)
        ids = sorted(rng.sample(live, count))
        self._touch_revision += 1
        now = self._now()
        for prod_id in ids:
            record = table.records[prod_id]
            record["prod_title"] = product_title(rng, self.locales, prod_id, self._touch_revision)
            record["prod_modify"] = now
            table.touched(record)
        self._changed()
        return ids

    async def _admin_summary(self, request: web.Request) -> web.Response:
        return json_response(self.summary())


def _in_id_order(entity: Entity, query: _Query) -> bool:
    """No ``$orderby`` (id order is the default) or ``$orderby=<id field> [asc]``."""
    if not query.order:
        return True
    (key, *rest) = query.order
    return not rest and key.field == entity.id_field and not key.descending


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise validation_failed({"body": ["The request body must be a JSON object."]})
    return body


def _non_negative(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"Expected a non-negative integer, got {text!r}.")
    return int(text)


def _integer(value: Any) -> int:
    """An id: an integer, or digits in a string as the documented examples send (``"004"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise _FieldError(f"Expected an integer, got {value!r}.")


__all__ = ["ENTITIES", "SalesLayerEmulator"]
