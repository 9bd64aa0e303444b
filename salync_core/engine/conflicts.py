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
from salync_core.store import conflict_rows as rows

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


def _conflict(row: rows.ConflictRow) -> Conflict:
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


def list_conflicts(conn: sqlite3.Connection, status: str | None = "open") -> list[Conflict]:
    return [_conflict(row) for row in rows.conflict_rows(conn, status)]


def get_conflict(conn: sqlite3.Connection, conflict_id: int) -> Conflict:
    row = rows.conflict_row(conn, conflict_id)
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
        at = datetime.now(UTC).timestamp()
        rows.settle_field(
            txn, conflict.entity, conflict.key, conflict.field, chosen, (origin, at, RESOLVED_RULE)
        )
        rows.mark_resolved(txn, conflict_id, resolution)
        return get_conflict(txn.conn, conflict_id)


def explain(conn: sqlite3.Connection, policies: PolicySet, entity: str, key: str) -> dict[str, Any]:
    """Field by field: the value, who set it and when, under which rule, and what each
    connection last held."""
    record = rows.record_with_clocks(conn, entity, key)
    if record is None:
        raise DataError(f"no {entity} {key!r} in the mirror")
    fields, clocks, deleted, seq = record
    bases = rows.bases_of(conn, entity, key)
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
