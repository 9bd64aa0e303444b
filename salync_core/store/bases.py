"""Each connection's base (what it last held of a record), stored copy-on-write.

A connection's base is almost always the mirror's record itself: it delivered the record, or
was pushed it, and nothing changed since. So ``id_map.base`` holds only where the base differs
from ``records.fields``:

* ``NULL``: the base is the record's fields;
* ``{"field": value, ..., "__absent__": ["field", ...]}``: the fields whose base value differs
  from the mirror's (or that the mirror lacks), and the mirror's fields the connection does not
  hold at all;
* ``{"__deleted__": true}``: the connection deleted the record (a whole base, never overlaid).

The price is one rule: whoever overwrites a field in ``records`` first copies the old value
into the base of every connection whose base for that field was the mirror's
(:func:`preserve`), so what a connection last held never moves under it. ``apply_records``
and ``settle_field``, the only writers of ``records.fields``, both do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson

DELETED_MARK = "__deleted__"
"""A connection's whole base when it is known to have deleted the record."""
ABSENT = "__absent__"
"""The names of the mirror's fields a connection does not hold."""


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()  # database.to_json; migrations import this module


def _same(held: Any, mirror: Any) -> bool:
    return held is mirror or (type(held) is type(mirror) and held == mirror)


def encode_base(held: Mapping[str, Any], fields: Mapping[str, Any] | None) -> str | None:
    """``id_map.base`` for a connection holding ``held`` while the mirror holds ``fields``:
    ``None`` when they are the same, else the differences (see the module's docstring)."""
    if DELETED_MARK in held:
        return to_json(held)
    if not fields:
        return to_json(held) if held else None
    diff: dict[str, Any] = {}
    for name, value in held.items():  # this runs for every record delivered: no calls inside
        mirror = fields.get(name, diff)  # diff: a sentinel no field value can be
        if value is mirror or (type(value) is type(mirror) and value == mirror):
            continue
        diff[name] = value
    if fields.keys() != held.keys():
        absent = [name for name in fields if name not in held]
        if absent:
            diff[ABSENT] = absent
    return to_json(diff) if diff else None


def decode_base(stored: str | bytes | None, fields: dict[str, Any] | None) -> dict[str, Any]:
    """A connection's whole base from ``id_map.base`` and the record's ``fields`` (``None``
    when the mirror has no such record). The result may be ``fields`` itself: do not mutate."""
    if stored is None:
        return {} if fields is None else fields
    diff: dict[str, Any] = orjson.loads(stored)
    if DELETED_MARK in diff:
        return diff
    absent = diff.pop(ABSENT, ())
    if fields is None:
        return diff
    base = {**fields, **diff}
    for name in absent:
        base.pop(name, None)
    return base


Overwrite = tuple[Mapping[str, Any], Mapping[str, Any]]
"""``(the record's fields before, {field: new value})`` of one record about to be written."""

# The connections that hold anything, by a skip over id_map's primary key (a handful of rows,
# whatever the size of the table), then each one's rows of the keys by that key as well.
HOLDERS = (
    "WITH RECURSIVE holders(name) AS (SELECT min(connection) FROM id_map"
    " UNION ALL SELECT (SELECT min(connection) FROM id_map WHERE connection > name)"
    " FROM holders WHERE name IS NOT NULL) "
)
"""A CTE of the connections id_map holds rows of: join ``holders`` on ``connection`` to look a
record up in every connection's rows by the primary key instead of scanning the table."""
# The writer is left out of the holders before the join, not after it: filtering the joined
# rows would still look every key up in the writer's own rows (5x slower for one connection).
_OTHERS_SQL = (
    HOLDERS + "SELECT m.connection, m.key, m.base FROM holders"
    " JOIN id_map m ON m.connection = holders.name"
    " WHERE holders.name IS NOT ? AND m.entity = ? AND m.key IN (SELECT value FROM json_each(?))"
)


def preserve(
    conn: sqlite3.Connection, entity: str, overwrites: Mapping[str, Overwrite], writer: str | None
) -> None:
    """Copy-on-write: before the mirror's records of ``entity`` take new values, copy the old
    ones into the base of every connection but ``writer`` whose base for them was the mirror's.

    A base that already held the new value explicitly goes back to "the mirror's" (it holds
    what the mirror now holds), so bases stay small as connections converge."""
    if not overwrites:
        return
    updates = []
    for connection, key, stored in conn.execute(
        _OTHERS_SQL, (writer, entity, to_json(list(overwrites)))
    ):
        before, changed = overwrites[key]
        diff: dict[str, Any] = {} if stored is None else orjson.loads(stored)
        if DELETED_MARK in diff:
            continue
        absent: list[str] = diff.get(ABSENT, [])
        moved = False
        for name, value in changed.items():
            if name in diff:
                if _same(diff[name], value):
                    del diff[name]  # it holds what the mirror will hold
                    moved = True
            elif name not in absent:
                if name in before:
                    if _same(before[name], value):
                        continue
                    diff[name] = before[name]
                else:
                    absent.append(name)
                moved = True
        if not moved:
            continue
        if absent:
            diff[ABSENT] = absent
        updates.append((to_json(diff) if diff else None, connection, entity, key))
    conn.executemany(
        "UPDATE id_map SET base = ? WHERE connection = ? AND entity = ? AND key = ?", updates
    )
