"""An emulator of Sales Layer API 1.18 connectors: a signed export connector and an import
connector over the same generated catalog as the 2.0 emulator (:mod:`.dataset`).

What it does, following ``shared/platforms/API-FACTS.md`` §1 (choices where the facts are
silent are marked *choice*):

* Every request goes to the server root. ``code``, ``time``, ``unique``, ``key256`` and the
  other parameters are read from the query string, a form body (PHP bracket keys such as
  ``input_data[products][0][REF]`` included) or a JSON body, merged in that order.
* The signature is checked: an unknown ``code`` is error 2, a ``unique`` that is not a number
  3, a ``key256`` that is not 64 hex digits 4, a ``time`` that is not a number 12, a ``time``
  more than :data:`EXPIRY_SECONDS` from the server's clock 13 (*choice*: the window is not
  documented), a signature that does not match 9. Errors are answered ``200`` with
  ``{"error": N}`` (the SDK reads only the body). A signature is not single-use (*choice*).
* Export: ``last_update`` absent, 0 or older than the last connector change gives ``action =
  "refresh"`` and every item the connector's filter passes; otherwise ``action = "update"`` and
  the items changed after ``last_update`` (``M`` rows) and those deleted or filtered out
  after it (``D`` rows). ``pagination`` is rounded down to the server's ranges of 500 (at least
  500, at most 100,000; 1000 when absent). ``next_page`` is an absolute URL on the same host
  with a page token of its own (no signature). ``group_category_id=1`` lists a product once
  with all its categories; without it a product comes once per category. Answers start with a
  UTF-8 BOM, and are gzipped when ``compression=1`` and the client accepts gzip.
* Import: ``input_data`` upserts by ``REF`` (a new reference creates the item), ``delete_data``
  deletes by ``REF``; at most 50,000 items per call (more: ``result`` 2). Items with an unknown
  field or no ``REF`` are refused one by one, each error line naming ``REF "X"``. The answer's
  ``status_tracking`` URL moves through ``prepare``, ``started`` and ``end``, one step per poll.
* Many accounts (``accounts=N``): account ``i``'s connectors are ``<code>-acct<i>`` with
  secrets ``<secret>-acct<i>``, each over its own catalog; page and tracking tokens of account
  ``i`` start with ``<i>.`` so they reach their own account's passes.
* Admin routes: ``POST /_emulator/connector`` (``{"exclude": [refs]}`` changes the connector's
  filter; any change makes the next export a refresh), ``POST /_emulator/errors``
  (``{"codes": [14, 14]}``: the next API answers carry these error codes),
  ``POST /_emulator/import-faults`` (``{"fail_halfway": 1}``: apply half a chunk, then 500).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from salync_core.testing.accounts import (
    AccountAttribute,
    account_credential,
    account_seed,
    credential_account,
)
from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import ADMIN_PREFIX, Emulator, json_response
from salync_saleslayer.dataset import generate_catalog

EXPIRY_SECONDS = 600
PASSES_KEPT = 32
"""Export passes whose pages can still be read (older page tokens answer error 1)."""
MAX_IMPORT_ITEMS = 50_000
BOM = b"\xef\xbb\xbf"
IMAGE_SIZES = ("THM", "ORG")
IMAGE_HOST = "https://images.saleslayer.example"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_BRACKETS = re.compile(r"\[([^\]]*)\]")

Item = dict[str, Any]
PARAMS: web.RequestKey[dict[str, Any]] = web.RequestKey("saleslayer_118_params")


class TableSpec:
    """A connector table: its link column, localized fields, plain fields and image fields."""

    def __init__(
        self, link: str, localized: tuple[str, ...], plain: tuple[str, ...], images: tuple[str, ...]
    ) -> None:
        self.link, self.localized, self.plain, self.images = link, localized, plain, images

    def import_fields(self, locales: tuple[str, ...]) -> frozenset[str]:
        localized = {f"{name}_{loc}" for name in self.localized for loc in locales}
        return frozenset({*localized, *self.plain, IMPORT_LINK[self.link]})


TABLES = {
    "catalogue": TableSpec(
        "ID_PARENT", ("section_name", "section_description"), ("section_tags",), ()
    ),
    "products": TableSpec(
        "ID_catalogue",
        ("product_name", "product_description", "product_material"),
        ("product_brand", "product_weight", "product_tags"),
        ("product_image",),
    ),
    "product_formats": TableSpec(
        "ID_products",
        ("format_name",),
        ("format_size", "format_color", "format_price", "format_ean", "format_tags"),
        (),
    ),
}
IMPORT_LINK = {
    "ID_PARENT": "parent_reference",
    "ID_catalogue": "catalogue_reference",
    "ID_products": "product_reference",
}
LINK_TABLE = {"ID_PARENT": "catalogue", "ID_catalogue": "catalogue", "ID_products": "products"}


def signature(code: str, secret: str, when: str, unique: str) -> str:
    return hashlib.sha256(f"{code}{secret}{when}{unique}".encode()).hexdigest()


def php_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs as nested maps (numeric keys become lists), as PHP reads them."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        path = [head, *_BRACKETS.findall(key[len(head) :])]
        node = root
        for name in path[:-1]:
            child = node.setdefault(name, {})
            node = child if isinstance(child, dict) else node.setdefault(name + "[]", {})
        node[path[-1]] = value
    converted: dict[str, Any] = _lists(root)
    return converted


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class Table:
    """Items of one connector table by id, with references and deletion times."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: dict[int, Item] = {}
        self.by_ref: dict[str, int] = {}
        self.deleted: dict[int, float] = {}
        self.next_id = 1

    def put(self, item: Item) -> None:
        self.items[item["ID"]] = item
        self.by_ref[item["REF"]] = item["ID"]
        self.deleted.pop(item["ID"], None)
        self.next_id = max(self.next_id, item["ID"] + 1)


class SalesLayer118Emulator(Emulator):
    """Sales Layer's API 1.18 connectors over a catalog of ``products`` generated products."""

    name: ClassVar[str] = "saleslayer-1.18"

    tables: AccountAttribute[dict[str, Table]] = AccountAttribute()
    connector_changed_at: AccountAttribute[float] = AccountAttribute()
    excluded: AccountAttribute[set[str]] = AccountAttribute()
    excluded_at: AccountAttribute[dict[str, float]] = AccountAttribute()
    error_codes: AccountAttribute[list[int]] = AccountAttribute()
    fail_halfway: AccountAttribute[int] = AccountAttribute()
    imports: AccountAttribute[list[dict[str, Any]]] = AccountAttribute()
    """Every import call received: item and error counts and its first item, for tests."""
    _passes: AccountAttribute[dict[str, list[tuple[str, int, str]]]] = AccountAttribute()
    _page_sizes: AccountAttribute[dict[str, int]] = AccountAttribute()
    _meta: AccountAttribute[dict[str, dict[str, Any]]] = AccountAttribute()
    _tracking: AccountAttribute[dict[str, dict[str, Any]]] = AccountAttribute()

    def __init__(
        self,
        *,
        products: int = 100,
        seed: int = 0,
        connector_code: str = "CN118EXPORT",
        secret_key: str = "sl-118-export-secret",
        import_code: str = "CN118IMPORT",
        import_secret: str = "sl-118-import-secret",
        clock: ScaledClock | None = None,
        locales: tuple[str, ...] = ("en", "es", "fr"),
        bom: bool = True,
        accounts: int = 1,
    ) -> None:
        super().__init__(seed=seed, clock=clock, accounts=accounts)
        self.secrets = {connector_code: secret_key, import_code: import_secret}
        """Account 0's codes and their secrets (account i's: :meth:`account_options`)."""
        self.export_code, self.import_code = connector_code, import_code
        self.locales, self.bom = locales, bom
        self._products = products
        self._created = self.clock.now()
        self._import_fields = {
            name: spec.import_fields(locales) | {"REF"} for name, spec in TABLES.items()
        }
        self._localized_names = {
            name: {f"{base}_{loc}": (base, loc) for base in spec.localized for loc in locales}
            for name, spec in TABLES.items()
        }
        self.account_state()  # account 0 at once

    # accounts -------------------------------------------------------------------------------

    def init_account(self, index: int) -> None:
        """The account's catalog, seeded from the emulator's seed and ``index``."""
        self.tables = {name: Table(name) for name in TABLES}
        self.connector_changed_at = 0.0
        self.excluded, self.excluded_at = set(), {}
        self.error_codes, self.fail_halfway, self.imports = [], 0, []
        self._passes, self._page_sizes, self._meta, self._tracking = {}, {}, {}, {}
        seed = account_seed(self.seed, index)
        self._load(generate_catalog(products=self._products, seed=seed, locales=self.locales,
                                    now=self._created))  # fmt: skip

    def account_options(self, index: int) -> dict[str, str]:
        """``plugin``, ``base_url`` and account ``index``'s export and import connectors."""
        if not 0 <= index < self.account_count:
            raise ValueError(f"no account {index}: this emulator serves {self.account_count}")
        export, imports = self.export_code, self.import_code
        return {
            "plugin": "saleslayer",
            "api": "1.18",
            "base_url": self.root_url,
            "connector_code": account_credential(export, index),
            "secret_key": account_credential(self.secrets[export], index),
            "import_code": account_credential(imports, index),
            "import_secret": account_credential(self.secrets[imports], index),
        }

    async def request_account(self, request: web.Request) -> int | None:
        """By the page or tracking token's ``<i>.`` prefix, else by the connector code."""
        token = request.match_info.get("token")
        if token is None:
            params = request[PARAMS] = await self._params(request)
            token = params.get("page_token") if request.method == "GET" else None
            code = params.get("code")
            if not isinstance(token, str) or not token:
                return self._code_account(code) if isinstance(code, str) else None
        head, dot, _ = token.partition(".")
        if not dot:
            return 0
        index = int(head) if head.isascii() and head.isdigit() else -1
        return index if 0 < index < self.account_count else None

    def _code_account(self, code: str) -> int | None:
        for base in (self.export_code, self.import_code):
            index = credential_account(base, code, self.account_count)
            if index is not None:
                return index
        return None

    def _new_token(self) -> str:
        """A page or tracking token, prefixed with its account's index (none for account 0)."""
        token = secrets.token_urlsafe(12)
        index = self.current_account
        return token if index == 0 else f"{index}.{token}"

    def _secret_of(self, code: str) -> str | None:
        """The secret of the current account's connector ``code``."""
        index = self.current_account
        for base, secret in self.secrets.items():
            if code == account_credential(base, index):
                return account_credential(secret, index)
        return None

    # the catalog --------------------------------------------------------------------------

    def _load(self, catalog: Any) -> None:
        stamp = self.clock.time() - 60
        for cat in catalog.categories.values():
            self.tables["catalogue"].put({
                "ID": cat["cat_id"], "REF": cat["cat_ref"], "_mod": stamp,
                "ID_PARENT": cat["cat_parent_id"] or 0,
                "section_name": cat["cat_title"], "section_description": cat["cat_description"],
                "section_tags": cat["cat_tags"],
            })  # fmt: skip
        for prod in catalog.products.values():
            self.tables["products"].put({
                "ID": prod["prod_id"], "REF": prod["prod_ref"], "_mod": stamp,
                "ID_catalogue": list(prod["cat_id"]),
                "product_name": prod["prod_title"],
                "product_description": prod["prod_description"],
                "product_material": prod["prod_material"],
                "product_brand": prod["prod_brand"], "product_weight": prod["prod_weight"],
                "product_tags": prod["prod_tags"], "product_image": list(prod["prod_image"]),
            })  # fmt: skip
        for frmt in catalog.variants.values():
            self.tables["product_formats"].put({
                "ID": frmt["frmt_id"], "REF": frmt["frmt_ref"], "_mod": stamp,
                "ID_products": frmt["prod_id"], "format_name": {},
                "format_size": frmt["frmt_size"], "format_color": frmt["frmt_color"],
                "format_price": frmt["frmt_price"], "format_ean": frmt["frmt_ean"],
                "format_tags": frmt["frmt_tags"],
            })  # fmt: skip

    def item(self, table: str, ref: str) -> Item | None:
        """A copy of the live item with this reference, or ``None``."""
        item_id = self.tables[table].by_ref.get(ref)
        if item_id is None or item_id not in self.tables[table].items:
            return None
        return dict(self.tables[table].items[item_id])

    def live_refs(self, table: str) -> set[str]:
        """References a refresh of ``table`` sends (live and passing the connector filter)."""
        return {
            i["REF"] for i in self.tables[table].items.values() if i["REF"] not in self.excluded
        }

    def modify(self, table: str, ref: str, **changes: Any) -> None:
        """Change an item as a person in the PIM would."""
        item_id = self.tables[table].by_ref[ref]
        item = self.tables[table].items[item_id]
        item.update(changes)
        item["_mod"] = self.clock.time()

    def delete(self, table: str, ref: str) -> None:
        store = self.tables[table]
        item_id = store.by_ref.pop(ref)
        del store.items[item_id]
        store.deleted[item_id] = self.clock.time()

    def change_connector(self, exclude: set[str] | None = None) -> None:
        """Change the connector (its filter leaves out ``exclude``): the next export refreshes."""
        now = self.clock.time()
        self.connector_changed_at = now
        for ref in exclude or set():
            self.excluded_at[ref] = now
        self.excluded = set(exclude or set())

    # routes ---------------------------------------------------------------------------------

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/", self._root)
        router.add_get("/tracking/{token}", self._tracking_status)
        router.add_post(ADMIN_PREFIX + "connector", self._admin_connector)
        router.add_post(ADMIN_PREFIX + "errors", self._admin_errors)
        router.add_post(ADMIN_PREFIX + "import-faults", self._admin_import_faults)

    async def _admin_connector(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads) if request.can_read_body else {}
        self.change_connector(set(body.get("exclude", [])))
        return json_response({"changed_at": self.connector_changed_at})

    async def _admin_errors(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        self.error_codes.extend(int(c) for c in body.get("codes", []))
        return json_response({"codes": self.error_codes})

    async def _admin_import_faults(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        self.fail_halfway = int(body.get("fail_halfway", 0))
        return json_response({"fail_halfway": self.fail_halfway})

    def _answer(self, request: web.Request, data: dict[str, Any], compress: bool) -> web.Response:
        body = (BOM if self.bom else b"") + orjson.dumps({"version": "1.18", **data})
        headers = {}
        if compress and "gzip" in request.headers.get("Accept-Encoding", ""):
            body, headers = gzip.compress(body, 1), {"Content-Encoding": "gzip"}
        return web.Response(body=body, content_type="application/json", headers=headers)

    def _error(self, request: web.Request, code: int) -> web.Response:
        return self._answer(request, {"time": int(self.clock.time()), "error": code}, False)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = php_form(list(request.query.items()))
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                body = orjson.loads(raw) if raw else {}
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update(php_form(parse_qsl(raw.decode(), keep_blank_values=True)))
        return params

    def _auth_error(self, params: Mapping[str, Any]) -> int | None:
        code = params.get("code")
        secret = self._secret_of(code) if isinstance(code, str) else None
        if not isinstance(code, str) or secret is None:
            return 2
        unique, key, when = params.get("unique"), params.get("key256"), params.get("time")
        if not isinstance(unique, str | int) or not str(unique).isdigit():
            return 3
        if not isinstance(key, str) or not _HEX64.fullmatch(key):
            return 4
        try:
            moment = float(when)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 12
        if abs(self.clock.time() - moment) > EXPIRY_SECONDS:
            return 13
        if key != signature(code, secret, str(when), str(unique)):
            return 9
        return None

    async def _root(self, request: web.Request) -> web.Response:
        if self.error_codes:
            return self._error(request, self.error_codes.pop(0))
        params = request.get(PARAMS) or await self._params(request)
        token = params.get("page_token")
        if isinstance(token, str) and request.method == "GET":
            return self._page(request, token, params)
        error = self._auth_error(params)
        if error is not None:
            return self._error(request, error)
        if params["code"] == account_credential(self.import_code, self.current_account):
            return self._import(request, params)
        return self._export(request, params)

    # export -------------------------------------------------------------------------------

    def _export(self, request: web.Request, params: Mapping[str, Any]) -> web.Response:
        now = self.clock.time()
        try:
            last = float(params.get("last_update") or 0)
        except (TypeError, ValueError):
            last = 0.0
        refresh = last <= 0 or last < self.connector_changed_at
        entries: list[tuple[str, int, str]] = []
        for name, table in self.tables.items():
            for item_id, item in table.items.items():
                out = item["REF"] in self.excluded
                if out and not refresh and self.excluded_at.get(item["REF"], 0) > last:
                    entries.append((name, item_id, "D"))
                elif not out and (refresh or item["_mod"] > last):
                    entries.append((name, item_id, "M"))
            if not refresh:
                entries += [(name, i, "D") for i, t in table.deleted.items() if t > last]
        grouped = str(params.get("group_category_id", "0")) == "1"
        if not grouped:
            entries = [
                (t, i, f"M{n}") if s == "M" and t == "products" else (t, i, s)
                for t, i, s in entries
                for n in range(self._category_rows(t, i, s))
            ]
        token = self._new_token()
        self._passes[token] = entries
        self._page_sizes[token] = page_size(params.get("pagination"))
        self._meta[token] = {
            "action": "refresh" if refresh else "update",
            "time": int(now),
            "compress": str(params.get("compression", "1")) == "1",
        }
        for old in list(self._passes)[:-PASSES_KEPT]:
            del self._passes[old], self._page_sizes[old], self._meta[old]
        return self._serve(request, token, 1)

    def _category_rows(self, table: str, item_id: int, status: str) -> int:
        if table != "products" or status != "M":
            return 1
        return max(1, len(self.tables[table].items[item_id]["ID_catalogue"]))

    def _page(self, request: web.Request, token: str, params: Mapping[str, Any]) -> web.Response:
        if token not in self._passes:
            return self._error(request, 1)
        try:
            page = int(params.get("page", "1"))
        except ValueError:
            return self._error(request, 1)
        return self._serve(request, token, page)

    def _serve(self, request: web.Request, token: str, page: int) -> web.Response:
        entries, size, meta = self._passes[token], self._page_sizes[token], self._meta[token]
        pages = max(1, -(-len(entries) // size))
        chunk = entries[(page - 1) * size : page * size]
        data: dict[str, list[Any]] = {}
        for table, item_id, status in chunk:
            data.setdefault(table, []).append(self._row(table, item_id, status))
        next_page = ""
        if page < pages:
            next_page = f"{self.root_url}/?page_token={token}&page={page + 1}"
        answer = {
            "time": meta["time"],
            "action": meta["action"],
            "schema": {
                "connector_type": "default",
                "default_language": self.locales[0],
                "languages": list(self.locales),
            },
            "data_schema": {t: self._schema(t) for t in data},
            "data_schema_info": {t: self._schema_info(t) for t in data},
            "data": data,
            "page_count": pages,
            "page_length": size,
            "next_page": next_page,
        }
        return self._answer(request, answer, meta["compress"])

    def _columns(self, table: str) -> Iterator[tuple[str, str, str | None]]:
        """``(column, base name, language)`` in schema order after the system columns."""
        spec = TABLES[table]
        for name in spec.localized:
            for locale in self.locales:
                yield f"{name}_{locale}", name, locale
        for name in (*spec.plain, *spec.images):
            yield name, name, None

    def _schema(self, table: str) -> list[Any]:
        spec = TABLES[table]
        columns: list[Any] = ["STATUS", "ID", "REF", spec.link]
        for column, base, _ in self._columns(table):
            columns.append({column: list(IMAGE_SIZES)} if base in spec.images else column)
        return columns

    def _schema_info(self, table: str) -> dict[str, Any]:
        spec = TABLES[table]
        info: dict[str, Any] = {}
        for column, base, locale in self._columns(table):
            kind = "image" if base in spec.images else "string"
            entry: dict[str, Any] = {"type": kind, "origin": "database", "basename": base}
            if locale:
                entry["language_code"] = locale
            if kind == "image":
                entry["sizes"] = {size: {"width": 0, "height": 0} for size in IMAGE_SIZES}
            info[column] = entry
        return info

    def _row(self, table: str, item_id: int, status: str) -> list[Any]:
        item = self.tables[table].items.get(item_id)
        if status == "D" or item is None:
            return ["D", item_id]
        spec = TABLES[table]
        link = item.get(spec.link)
        if table == "products" and status != "M":  # one row per category
            link = link[int(status[1:])] if link else 0
        row = ["M", item_id, item["REF"], link]
        for _, base, locale in self._columns(table):
            value = item.get(base)
            if locale is not None:
                row.append((value or {}).get(locale, ""))
            elif base in spec.images:
                row.append([
                    ["M", name, *(f"{IMAGE_HOST}/{size}/{name}" for size in IMAGE_SIZES)]
                    for name in value or []
                ])  # fmt: skip
            else:
                row.append(value)
        return row

    # import -------------------------------------------------------------------------------

    def _import(self, request: web.Request, params: Mapping[str, Any]) -> web.Response:
        updates = params.get("input_data") or {}
        deletes = params.get("delete_data") or {}
        if not isinstance(updates, dict) or not isinstance(deletes, dict):
            return self._error(request, 1)
        work: list[tuple[str, str, Any]] = [
            (table, "upsert", item) for table, items in updates.items() for item in _listed(items)
        ] + [(table, "delete", item) for table, items in deletes.items() for item in _listed(items)]
        now = int(self.clock.time())
        if len(work) > MAX_IMPORT_ITEMS:
            message = f"{len(work)} items in one call; at most {MAX_IMPORT_ITEMS} are accepted"
            return self._answer(
                request, {"time": now, "input_response": {"result": 2, "errors": [message]}}, False
            )
        halfway = len(work) // 2 if self.fail_halfway > 0 else None
        errors: list[str] = []
        counts = {"new_items": 0, "updated_items": 0, "deleted_items": 0}
        for index, (table, op, item) in enumerate(work):
            if index == halfway:
                self.fail_halfway -= 1
                return web.Response(status=500, text="import worker crashed")
            problem = self._import_one(table, op, item, counts)
            if problem:
                errors.append(problem)
        self.imports.append({"items": len(work), "errors": len(errors), "first": work[0][2]})
        token = self._new_token()
        self._tracking[token] = {"polls": 0}
        affected = sum(counts.values())
        answer = {
            "result": 1 if affected else 0,
            "errors": errors,
            "items_affected": affected,
            **counts,
            "status_tracking": f"{self.root_url}/tracking/{token}",
        }
        return self._answer(request, {"time": now, "input_response": answer}, False)

    def _import_one(self, table: str, op: str, item: Any, counts: dict[str, int]) -> str | None:
        if table not in TABLES:
            return f"{table}: no such table in the import connector"
        if not isinstance(item, dict) or not isinstance(item.get("REF"), str) or not item["REF"]:
            return f"{table}: an item without REF was skipped"
        ref = item["REF"]
        quoted = orjson.dumps(ref).decode()
        store = self.tables[table]
        if op == "delete":
            if ref in store.by_ref:
                self.delete(table, ref)
                counts["deleted_items"] += 1
            return None
        allowed = self._import_fields[table]
        unknown = sorted(name for name in item if name not in allowed)
        if unknown:
            return f"{table} REF {quoted}: unknown field(s) {', '.join(unknown)}"
        item_id = store.by_ref.get(ref)
        existing = store.items.get(item_id) if item_id is not None else None
        record: Item = dict(existing) if existing else {"ID": store.next_id, "REF": ref}
        try:
            self._apply_fields(table, record, item)
        except ValueError as exc:
            return f"{table} REF {quoted}: {exc}"
        record["_mod"] = self.clock.time()
        store.put(record)
        counts["updated_items" if existing else "new_items"] += 1
        return None

    def _apply_fields(self, table: str, record: Item, item: Mapping[str, Any]) -> None:
        spec, localized = TABLES[table], self._localized_names[table]
        for name, value in item.items():
            if name == "REF":
                continue
            if name == IMPORT_LINK[spec.link]:
                record[spec.link] = self._link_ids(spec.link, value)
            elif name in localized:
                base, locale = localized[name]
                record[base] = {**record.get(base, {}), locale: value}
            else:
                record[name] = value

    def _link_ids(self, link: str, value: Any) -> Any:
        refs = value if isinstance(value, list) else [] if value in (None, "") else [value]
        target = self.tables[LINK_TABLE[link]]
        missing = [r for r in refs if r not in target.by_ref]
        if missing:
            raise ValueError(f"{IMPORT_LINK[link]} {', '.join(map(str, missing))} does not exist")
        ids = [target.by_ref[r] for r in refs]
        if link == "ID_catalogue":
            return ids
        return ids[0] if ids else 0

    async def _tracking_status(self, request: web.Request) -> web.Response:
        job = self._tracking.get(request.match_info["token"])
        if job is None:
            return self._error(request, 1)
        step = min(job["polls"], 2)
        job["polls"] += 1
        status, percent = (("prepare", 0), ("started", 50), ("end", 100))[step]
        answer = {
            "time": int(self.clock.time()),
            "input_status": status,
            "input_percent_completion": percent,
            "input_action_message": "Import finished" if status == "end" else "Importing",
        }
        return self._answer(request, answer, False)


def _listed(items: Any) -> list[Any]:
    if isinstance(items, list):
        return items
    if isinstance(items, dict):
        return [items]
    return []


def page_size(pagination: Any) -> int:
    """The server's range for a requested page size: ranges of 500, from 500 to 100,000."""
    try:
        asked = int(pagination)
    except (TypeError, ValueError):
        return 1000
    return max(500, min(100_000, (asked - 1) // 500 * 500))
