"""Sales Layer API 1.18 connector output <-> canonical records.

An export answer carries, per table, a ``data_schema`` (the column names, in order), a
``data_schema_info`` (each column's type, language and base name) and positional ``data`` rows:
``["M", id, ...]`` for an item that is new or modified, ``["D", id]`` for one that left the
connector (API-FACTS §1.4). This module decodes them:

* tables ``catalogue``, ``products`` and ``product_formats`` become categories, products and
  variants keyed by the ``REF`` system column (the item reference, as the official SDK reads
  it); ``ID`` is the platform's id;
* ``ID_PARENT`` (category tree), ``ID_catalogue`` (a product's categories) and ``ID_products``
  (a variant's product) are links by id, turned into references through the ids this
  connection has already seen (kept in the cursor: see :class:`RefIndex`);
* a product listed once per category (no ``group_category_id``) is merged into one record;
* a field sent once per language (``data_schema_info`` gives its ``language_code`` and
  ``basename``) is merged into one ``{locale: text}`` map;
* image and file fields become ``{size: url}`` maps, one per file;
* fields the mapping does not name go to ``attributes``; rows of tables it does not know are
  kept in the ``attributes`` of the item they link to (``ID_products``), else dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salync_core.errors import DataError
from salync_core.platform import Deletion, Record, Reject

ENTITY_OF_TABLE = {"catalogue": "category", "products": "product", "product_formats": "variant"}
TABLE_OF_ENTITY = {entity: table for table, entity in ENTITY_OF_TABLE.items()}
SYSTEM = frozenset({"STATUS", "ID", "REF"})
LINKS = {"catalogue": "ID_PARENT", "products": "ID_catalogue", "product_formats": "ID_products"}
LINKED_TABLE = {"ID_PARENT": "catalogue", "ID_catalogue": "catalogue", "ID_products": "products"}
CANONICAL = {
    "catalogue": {"section_name": "title", "section_description": "description"},
    "products": {"product_name": "title", "product_description": "description"},
    "product_formats": {"format_name": "title"},
}
"""Base names of connector fields -> canonical fields, per table."""
LOCALIZED = frozenset({"title", "description"})
FILE_TYPES = frozenset({"image", "file"})


class RefIndex:
    """``ID -> REF`` of the categories and products this connection has seen, so links by id
    can be written as references. Kept in the cursor, so it survives between runs."""

    def __init__(self, data: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.refs: dict[str, dict[str, str]] = {
            table: dict((data or {}).get(table, {})) for table in ("catalogue", "products")
        }

    def learn(self, table: str, item_id: Any, ref: str) -> None:
        if table in self.refs:
            self.refs[table][str(item_id)] = ref

    def forget(self, table: str, item_id: Any) -> None:
        if table in self.refs:
            self.refs[table].pop(str(item_id), None)

    def ref(self, table: str, item_id: Any) -> str | None:
        return self.refs.get(table, {}).get(str(item_id))

    def to_json(self) -> dict[str, dict[str, str]]:
        return self.refs


class Column:
    """One column of a table's ``data_schema`` with what ``data_schema_info`` says of it."""

    def __init__(self, name: str, sizes: list[str] | None, info: Mapping[str, Any]) -> None:
        self.name, self.sizes = name, sizes
        self.type = str(info.get("type") or ("image" if sizes is not None else "string"))
        self.language = info.get("language_code") or None
        self.basename = str(info.get("basename") or name)


def columns(schema: Any, info: Any, table: str) -> list[Column]:
    """The columns of ``table``: names are strings, file fields ``{name: [sizes]}``."""
    if not isinstance(schema, list) or len(schema) < 2:
        raise DataError(f"data_schema of {table} is not a list of columns")
    infos = info if isinstance(info, dict) else {}
    result = []
    for entry in schema:
        if isinstance(entry, str):
            result.append(Column(entry, None, infos.get(entry) or {}))
        elif isinstance(entry, dict) and len(entry) == 1:
            ((name, sizes),) = entry.items()
            size_names = [str(s) for s in sizes] if isinstance(sizes, list) else []
            result.append(Column(str(name), size_names, infos.get(name) or {}))
        else:
            raise DataError(f"data_schema of {table} has a column that is not a name: {entry!r}")
    return result


def file_urls(value: Any, sizes: list[str] | None) -> list[dict[str, str]]:
    """``[["M", "name", url_size1, url_size2], ...]`` -> ``[{size1: url, size2: url}, ...]``."""
    if not isinstance(value, list):
        return []
    names = sizes or []
    files = []
    for entry in value:
        if isinstance(entry, list) and len(entry) > 2:
            urls = [u for u in entry[2:] if isinstance(u, str)]
            files.append({names[i] if i < len(names) else str(i): u for i, u in enumerate(urls)})
        elif isinstance(entry, str):
            files.append({"url": entry})
    return files


class Decoded:
    """One page decoded: items for :func:`record`, deletions and dead letters."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.deletions: list[Deletion] = []
        self.rejects: list[Reject] = []

    def add(self, entity: str, ref: str, item: dict[str, Any]) -> None:
        """Add an item; one already on the page (a product listed once per category) is merged."""
        known = self.items.get((entity, ref))
        if known is None:
            self.items[entity, ref] = item
            return
        fields, more = known["fields"], item["fields"]
        if "category_refs" in more:
            merged = fields.get("category_refs", []) + more["category_refs"]
            more = {**more, "category_refs": list(dict.fromkeys(merged))}
        for name, value in more.items():
            if isinstance(value, dict) and isinstance(fields.get(name), dict):
                fields[name] = {**fields[name], **value}
            else:
                fields[name] = value


def decode(data: Mapping[str, Any], refs: RefIndex, source_ts: str | None) -> Decoded:
    """Every table of an export answer, known tables first (links are learned before use)."""
    decoded = Decoded()
    tables = data.get("data") or {}
    if not isinstance(tables, dict):
        raise DataError('the answer\'s "data" is not a map of tables')
    schemas, infos = data.get("data_schema") or {}, data.get("data_schema_info") or {}
    order = [t for t in ENTITY_OF_TABLE if t in tables] + sorted(
        t for t in tables if t not in ENTITY_OF_TABLE
    )
    for table in order:
        rows = tables[table]
        try:
            cols = columns(schemas.get(table), infos.get(table), table)
        except DataError as exc:
            decoded.rejects.append(Reject({table: rows}, str(exc)))
            continue
        plan = Plan(table, cols)
        for row in rows if isinstance(rows, list) else [rows]:
            try:
                _row(decoded, plan, row, refs, source_ts)
            except DataError as exc:
                decoded.rejects.append(Reject({"table": table, "row": row}, f"{table}: {exc}"))
    return decoded


class Plan:
    """How to read the rows of one table, worked out once per page from its columns."""

    def __init__(self, table: str, cols: list[Column]) -> None:
        self.table, self.cols = table, cols
        self.entity = ENTITY_OF_TABLE.get(table)
        names = [c.name for c in cols]
        self.ref = names.index("REF") if "REF" in names else None
        self.link = LINKS.get(table, "")
        self.link_at = names.index(self.link) if self.link in names else None
        known = CANONICAL.get(table, {})
        self.reads = [
            (index, col, known.get(col.basename), col.type in FILE_TYPES)
            for index, col in enumerate(cols)
            if col.name not in SYSTEM and not col.name.startswith("ID_")
        ]


def _row(decoded: Decoded, plan: Plan, row: Any, refs: RefIndex, source_ts: str | None) -> None:
    table, cols = plan.table, plan.cols
    if not isinstance(row, list) or len(row) < 2:
        raise DataError(f"a row is not a list of values: {row!r}")
    status, item_id = row[0], row[1]
    if status == "D":
        entity = ENTITY_OF_TABLE.get(table)
        if entity is not None:
            decoded.deletions.append(Deletion(entity, external_id=str(item_id)))
            refs.forget(table, item_id)
        return
    if status != "M":
        raise DataError(f"row {item_id}: STATUS {status!r} is neither M nor D")
    if len(row) != len(cols):
        raise DataError(f"row {item_id} has {len(row)} values for {len(cols)} columns")
    ref = row[plan.ref] if plan.ref is not None else None
    if not isinstance(ref, str) or not ref.strip():
        raise DataError(f"row {item_id} has no REF (the item reference)")
    entity = plan.entity
    if entity is None:
        values = {col.name: value for col, value in zip(cols, row, strict=True)}
        _attach(decoded, table, cols, values, refs, source_ts)
        return
    refs.learn(table, item_id, ref)
    fields = _fields(plan, row)
    if plan.link_at is not None:
        _link(fields, entity, plan.link, row[plan.link_at], refs)
    decoded.add(
        entity, ref, {"entity": entity, "ref": ref, "id": str(item_id), "fields": fields,
                      "ts": source_ts},
    )  # fmt: skip


def _fields(plan: Plan, row: list[Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for index, col, canonical, is_file in plan.reads:
        value = row[index]
        if is_file:
            value = file_urls(value, col.sizes)
        if canonical in LOCALIZED and col.language:
            if value not in (None, ""):
                fields.setdefault(canonical, {})[col.language] = str(value)
        elif canonical is not None:
            fields[canonical] = value
        elif col.language:
            if value not in (None, ""):
                attributes.setdefault(col.basename, {})[col.language] = value
        else:
            attributes[col.name] = value
    fields["attributes"] = attributes
    return fields


def _link(fields: dict[str, Any], entity: str, link: str, value: Any, refs: RefIndex) -> None:
    table = LINKED_TABLE[link]
    ids = value if isinstance(value, list) else [] if value in (None, "", 0) else [value]
    resolved = [refs.ref(table, i) for i in ids]
    if any(r is None for r in resolved):
        unknown = [str(i) for i, r in zip(ids, resolved, strict=True) if r is None]
        fields["attributes"][link] = unknown  # kept, so nothing is lost
    known = [r for r in resolved if r is not None]
    if entity == "product":
        fields["category_refs"] = known
    elif entity == "category":
        fields["parent_ref"] = known[0] if known else None
    elif known:
        fields["product_ref"] = known[0]


def _attach(
    decoded: Decoded,
    table: str,
    cols: list[Column],
    values: Mapping[str, Any],
    refs: RefIndex,
    source_ts: str | None,
) -> None:
    """A row of a table with no canonical entity joins the attributes of the item it links to."""
    for link, parent_table in LINKED_TABLE.items():
        parent = refs.ref(parent_table, values.get(link)) if link in values else None
        if parent is not None:
            entity = ENTITY_OF_TABLE[parent_table]
            row = {c.name: values[c.name] for c in cols if c.name != "STATUS"}
            fields = {"attributes": {table: [row]}}
            known = decoded.items.get((entity, parent))
            if known is not None:
                rows = known["fields"].setdefault("attributes", {}).setdefault(table, [])
                rows.append(row)
            else:
                decoded.add(
                    entity, parent, {"entity": entity, "ref": parent, "id": None,
                                     "fields": fields, "ts": source_ts},
                )  # fmt: skip
            return
    raise DataError(f"table {table} has no canonical entity and links to no known item")


def record(item: Mapping[str, Any], option_fields: Mapping[str, str] | None = None) -> Record:
    """The canonical record of a decoded item; a variant's ``option_fields`` (connector field
    -> option name, the ``variant_options`` option) become its ``options``."""
    fields = {k: v for k, v in item["fields"].items() if v is not None}
    if item["entity"] == "variant" and option_fields and "attributes" in fields:
        attributes = dict(fields["attributes"])
        options = {
            name: str(attributes.pop(source))
            for source, name in option_fields.items()
            if attributes.get(source) is not None
        }
        if options:
            fields["options"], fields["attributes"] = options, attributes
    if not fields.get("attributes"):
        fields.pop("attributes", None)
    return Record(item["entity"], item["ref"], fields, item.get("id"), item.get("ts"))


# import (push) ------------------------------------------------------------------------

WRITABLE = {
    "product": frozenset({"title", "description", "category_refs", "attributes"}),
    "variant": frozenset({"title", "product_ref", "attributes"}),
    "category": frozenset({"title", "description", "parent_ref", "attributes"}),
}
FIELD_NAME = {
    (entity, canonical): base
    for table, names in CANONICAL.items()
    for base, canonical in names.items()
    for entity in (ENTITY_OF_TABLE[table],)
}
LINK_FIELD = {"category_refs": "catalogue_reference", "parent_ref": "parent_reference",
              "product_ref": "product_reference"}  # fmt: skip
"""Import connectors link items by reference (their "Name on Import" for the parent's REF)."""


def import_item(entity: str, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``input_data`` item for canonical ``fields`` of one record, keyed by ``REF``."""
    item: dict[str, Any] = {"REF": key}
    for name, value in fields.items():
        if name in LOCALIZED:
            base = FIELD_NAME.get((entity, name))
            if base is None:
                raise DataError(f"{entity} {name} has no Sales Layer import field")
            if value is not None and not isinstance(value, dict):
                raise DataError(f"{entity} {name}: expected {{locale: text}}, got {value!r}")
            for locale, text in (value or {}).items():
                item[f"{base}_{locale}"] = text
        elif name in LINK_FIELD:
            item[LINK_FIELD[name]] = value
        elif name == "attributes":
            for attribute, value_of in (value or {}).items():
                if isinstance(value_of, dict):  # a localized attribute
                    item.update({f"{attribute}_{loc}": v for loc, v in value_of.items()})
                else:
                    item[attribute] = value_of
    return item
