"""Open conflicts, their resolution, and ``explain``: where every field's value came from."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson
from attrs import frozen

from salync_core.conflicts.policies import LOCAL, MISSING
from salync_core.conflicts.policy_set import PolicySet
from salync_core.converters import codec
from salync_core.errors import ConflictError, DataError
from salync_core.store import Store
from salync_core.store.database import to_json
from salync_core.store.mirror import decode_clocks, encode_clocks

RESOLVED_RULE = "manual:resolved"


@frozen
class Conflict:
    """Concurrent changes of one field that a person has to settle."""

    id: int
    entity: str
    key: str
    field: str
    candidates: dict[str, Any]
    """The competing values by origin (the mirror's current one included)."""
    status: str
    created_at: str
    resolution: dict[str, Any] | None = None


def _conflict(row: tuple[Any, ...]) -> Conflict:
    id_, entity, key, field, candidates, status, created_at, resolution = row
    return Conflict(
        id_,
        entity,
        key,
        field,
        orjson.loads(candidates),
        status,
        created_at,
        orjson.loads(resolution) if resolution else None,
    )


_COLUMNS = "id, entity, key, field, candidates, status, created_at, resolution"


def list_conflicts(conn: sqlite3.Connection, status: str | None = "open") -> list[Conflict]:
    sql = f"SELECT {_COLUMNS} FROM conflicts"
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status = ?"
        params = (status,)
    return [_conflict(row) for row in conn.execute(sql + " ORDER BY id", params)]


def get_conflict(conn: sqlite3.Connection, conflict_id: int) -> Conflict:
    row = conn.execute(f"SELECT {_COLUMNS} FROM conflicts WHERE id = ?", (conflict_id,)).fetchone()
    if row is None:
        raise ConflictError(f"no conflict #{conflict_id}")
    return _conflict(row)


def resolve(
    store: Store, conflict_id: int, take: str | None = None, value: Any = MISSING
) -> Conflict:
    """Settle a conflict with one candidate's value (``take``) or a value of your own."""
    if (take is None) == (value is MISSING):
        raise ConflictError(
            "resolve a conflict with exactly one of --take CONNECTION or --value JSON"
        )
    with store.write() as txn:
        conflict = get_conflict(txn.conn, conflict_id)
        if conflict.status != "open":
            raise ConflictError(f"conflict #{conflict_id} is already resolved")
        if take is not None:
            if take not in conflict.candidates:
                choices = ", ".join(sorted(conflict.candidates))
                raise ConflictError(
                    f"conflict #{conflict_id}: {take!r} is not a candidate ({choices})"
                )
            origin, chosen, resolution = take, conflict.candidates[take], {"take": take}
        else:
            try:
                chosen = codec(conflict.entity).normalize({conflict.field: value})[conflict.field]
            except DataError as exc:
                raise ConflictError(f"conflict #{conflict_id}: {exc}") from None
            origin, resolution = LOCAL, {"value": chosen}
        row = txn.conn.execute(
            "SELECT fields, clocks FROM records WHERE entity = ? AND key = ?",
            (conflict.entity, conflict.key),
        ).fetchone()
        fields, clocks = orjson.loads(row[0]), decode_clocks(row[1])
        seq = txn.next_seq()
        fields[conflict.field] = chosen
        clocks[conflict.field] = [origin, datetime.now(UTC).timestamp(), seq, RESOLVED_RULE]
        txn.conn.execute(
            "UPDATE records SET fields = ?, clocks = ?, seq = ? WHERE entity = ? AND key = ?",
            (to_json(fields), encode_clocks(clocks), seq, conflict.entity, conflict.key),
        )
        txn.conn.execute(
            "INSERT INTO changes (seq, entity, key, op, fields, origin, at)"
            " VALUES (?, ?, ?, 'upsert', ?, ?, ?)",
            (
                seq,
                conflict.entity,
                conflict.key,
                to_json([conflict.field]),
                origin,
                txn.now,
            ),
        )
        txn.conn.execute(
            "UPDATE conflicts SET status = 'resolved', resolution = ?, resolved_at = ?"
            " WHERE id = ?",
            (to_json(resolution), txn.now, conflict_id),
        )
        return get_conflict(txn.conn, conflict_id)


def explain(conn: sqlite3.Connection, policies: PolicySet, entity: str, key: str) -> dict[str, Any]:
    """Field by field: the value, who set it and when, under which rule, and what each
    connection last held."""
    row = conn.execute(
        "SELECT fields, clocks, deleted, seq FROM records WHERE entity = ? AND key = ?",
        (entity, key),
    ).fetchone()
    if row is None:
        raise DataError(f"no {entity} {key!r} in the mirror")
    fields, clocks, deleted, seq = orjson.loads(row[0]), decode_clocks(row[1]), bool(row[2]), row[3]
    bases = {
        connection: (external_id, orjson.loads(base))
        for connection, external_id, base in conn.execute(
            "SELECT connection, external_id, base FROM id_map WHERE entity = ? AND key = ?"
            " ORDER BY connection",
            (entity, key),
        )
    }
    return {
        "entity": entity,
        "key": key,
        "deleted": deleted,
        "seq": seq,
        "external_ids": {c: ext for c, (ext, _) in bases.items()},
        "fields": [
            _explain_field(entity, name, fields[name], clocks.get(name), policies, bases)
            for name in sorted(fields)
        ],
        "open_conflicts": [
            c.id for c in list_conflicts(conn) if c.entity == entity and c.key == key
        ],
    }


def _explain_field(
    entity: str,
    name: str,
    value: Any,
    clock: list[Any] | None,
    policies: PolicySet,
    bases: dict[str, tuple[Any, dict[str, Any]]],
) -> dict[str, Any]:
    origin, ts, seq, rule = clock if clock else (None, None, None, None)
    return {
        "field": name,
        "value": value,
        "origin": origin,
        "source_time": None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(),
        "seq": seq,
        "decided_by": rule,
        "policy": policies.for_field(entity, name).rule,
        "configured_in": policies.source(entity, name),
        "held_by": {c: base[name] for c, (_, base) in bases.items() if name in base},
    }
