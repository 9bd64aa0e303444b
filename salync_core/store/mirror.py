"""Applying changes to the mirror: the records, their clocks, the change log, tombstones and each
connection's base, all inside the caller's transaction.

Sync pages and the host app's local edits both come through :func:`apply_records` and
:func:`apply_deletions`, so both are resolved by the same policies and logged the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from attrs import define, evolve

from salync_core.conflicts.policies import LOCAL
from salync_core.conflicts.resolver import Resolver
from salync_core.converters import parse_datetime
from salync_core.errors import PolicyError
from salync_core.models import BOOKKEEPING_FIELDS, COUNTER_FIELDS, KEYED_FIELDS, identity
from salync_core.platform import Record
from salync_core.store.bases import DELETED_MARK as DELETED_MARK
from salync_core.store.bases import Overwrite, decode_base, encode_base, preserve
from salync_core.store.database import Transaction, to_json

dumps = to_json
loads = orjson.loads


@define
class ApplyStats:
    """What applying a batch did, summed into a sync run's report."""

    received: int = 0
    changed: int = 0
    created: int = 0
    deleted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    decisions: int = 0

    def add(self, other: ApplyStats) -> None:
        for name in ApplyStats.__attrs_attrs__:
            setattr(self, name.name, getattr(self, name.name) + getattr(other, name.name))


def encode_clocks(clocks: dict[str, Any], fields: dict[str, Any]) -> str:
    """Per-field clocks as stored: fields that share a clock share one entry,
    ``[[origin, source_ts, seq, rule, [field, ...]], ...]``. A page's fields mostly share one
    (or one per policy), so this is a fraction of a clock per field.

    When every field of the record (``fields``) has a clock, the largest group is written
    first and without its names, ``[origin, source_ts, seq, rule]``: "every other field". A
    record one origin set whole (the common case) is then one short entry."""
    whole = len(clocks) == len(fields) and clocks.keys() == fields.keys()
    if whole:
        values = list(clocks.values())
        if values.count(values[0]) == len(values):  # one clock for all: no grouping at all
            return dumps([values[0]])
    groups: dict[tuple[Any, ...], list[str]] = {}
    for name, (origin, ts, seq, rule) in clocks.items():
        groups.setdefault((origin, ts, seq, rule), []).append(name)
    if not whole:
        return dumps([[*clock, names] for clock, names in groups.items()])
    rest = max(groups, key=lambda clock: len(groups[clock]))
    return dumps(
        [list(rest), *([*clock, names] for clock, names in groups.items() if clock != rest)]
    )


def decode_clocks(stored: str | bytes, fields: dict[str, Any]) -> dict[str, Any]:
    """``{field: [origin, source_ts, seq, rule]}`` from :func:`encode_clocks`' text and the
    record's ``fields`` (which an entry without names stands for the rest of). The fields of
    that entry share one list: a clock is replaced, never changed in place."""
    clocks: dict[str, Any] = {}
    rest = None
    for entry in loads(stored):
        if len(entry) == 4:
            rest = entry
            continue
        origin, ts, seq, rule, names = entry
        for name in names:
            clocks[name] = [origin, ts, seq, rule]
    if rest is None:
        return clocks
    if not clocks:
        return dict.fromkeys(fields, rest)
    return {**dict.fromkeys(fields, rest), **clocks}


def _chunks(items: Sequence[str], size: int = 900) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# One JSON array parameter instead of a variable number of "?" keeps the statement text fixed,
# so SQLite's statement cache prepares it once per connection, not once per page.
_RECORDS_SQL = (
    "SELECT key, fields, clocks, deleted FROM records"
    " WHERE entity = ? AND key IN (SELECT value FROM json_each(?))"
)
_BASES_SQL = (
    "SELECT key, external_id, base, diverged FROM id_map"
    " WHERE connection = ? AND entity = ? AND key IN (SELECT value FROM json_each(?))"
)


StoredRecord = tuple[str, str, bool]
"""A record as stored: its fields and its clocks as JSON text, and whether it is deleted."""
Seen = tuple[str | None, str | None, bool]
"""One connection's ``id_map`` row as stored: its id for the record, its base as
``id_map.base`` holds it (``None``: the record's fields) and whether it diverged."""


def load_records(
    conn: sqlite3.Connection, entity: str, keys: Sequence[str]
) -> dict[str, StoredRecord]:
    """``key -> (fields, clocks, deleted)`` as stored, for the keys that exist. Left as text:
    a record delivered unchanged is told from its text alone (:func:`_apply_one`)."""
    return {
        key: (fields, clocks, bool(deleted))
        for key, fields, clocks, deleted in conn.execute(_RECORDS_SQL, (entity, dumps(keys)))
    }


def load_seen(
    conn: sqlite3.Connection, connection: str, entity: str, keys: Sequence[str]
) -> dict[str, Seen]:
    """``key -> (external_id, stored base, diverged)`` of one connection, as stored."""
    return {
        key: (external_id, base, bool(diverged))
        for key, external_id, base, diverged in conn.execute(
            _BASES_SQL, (connection, entity, dumps(keys))
        )
    }


@define
class _Writes:
    """Rows gathered while resolving, written with one ``executemany`` per table."""

    records: list[tuple[Any, ...]]
    changes: list[tuple[Any, ...]]
    id_map: list[tuple[Any, ...]]
    undeleted: list[tuple[str, str]]
    conflicts: list[tuple[Any, ...]]
    overwrites: dict[str, dict[str, Overwrite]]
    """``entity -> key -> (fields before, changed fields)`` of the records written."""

    @classmethod
    def empty(cls) -> _Writes:
        return cls([], [], [], [], [], {})

    def flush(self, conn: sqlite3.Connection, writer: str | None) -> None:
        for entity, overwrites in self.overwrites.items():
            preserve(conn, entity, overwrites, writer)
        conn.executemany(
            "INSERT INTO records (entity, key, fields, clocks, deleted, seq)"
            " VALUES (?, ?, ?, ?, 0, ?)"
            " ON CONFLICT (entity, key) DO UPDATE SET fields = excluded.fields,"
            " clocks = excluded.clocks, deleted = 0, seq = excluded.seq",
            self.records,
        )
        conn.executemany(
            "INSERT INTO changes (seq, entity, key, op, fields, origin, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            self.changes,
        )
        conn.executemany(
            "INSERT INTO id_map (connection, entity, key, external_id, base, diverged, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (connection, entity, key) DO UPDATE SET"
            " external_id = coalesce(excluded.external_id, external_id), base = excluded.base,"
            " diverged = excluded.diverged, seen_at = excluded.seen_at",
            self.id_map,
        )
        conn.executemany("DELETE FROM tombstones WHERE entity = ? AND key = ?", self.undeleted)
        for entity, key, field, candidates, now in self.conflicts:
            _open_conflict(conn, entity, key, field, candidates, now)


def apply_records(
    txn: Transaction,
    origin: str,
    records: Sequence[Record],
    resolver: Resolver,
    *,
    track_base: bool = True,
    stamp_seen: bool = True,
) -> ApplyStats:
    """Resolve and write ``records`` from ``origin``.

    ``track_base`` is off for the host app: its edits are made against the mirror as it is, so
    the mirror's value is their base, and a field a policy refuses raises :class:`PolicyError`
    (the caller's transaction then rolls back, so nothing is applied half-way).

    ``stamp_seen`` off: a record delivered exactly as the mirror and the connection's base
    already hold it is not written at all (its ``id_map.seen_at`` keeps the pass that last
    changed it). Only a pass that may end in a :class:`~salync_core.platform.Sweep` needs
    every record it delivers stamped."""
    stats = ApplyStats(received=len(records))
    writes = _Writes.empty()
    by_entity: dict[str, list[Record]] = {}
    for record in records:
        by_entity.setdefault(record.entity, []).append(record)
    for entity, group in by_entity.items():
        keys = [r.key for r in group]
        seen = load_seen(txn.conn, origin, entity, keys) if track_base else {}
        moved = _reidentify(txn, origin, entity, group, seen, resolver, stats)
        if moved is not None:
            group, keys = moved, [r.key for r in moved]
            seen = load_seen(txn.conn, origin, entity, keys) if track_base else {}
        if track_base and COUNTER_FIELDS.get(entity):
            group = _without_queued_counts(txn, origin, entity, group)
        current = load_records(txn.conn, entity, keys)
        for record in group:
            _apply_one(
                txn,
                origin,
                record,
                current.get(record.key),
                seen.get(record.key),
                resolver,
                writes,
                stats,
                track_base,
                stamp_seen,
            )
    writes.flush(txn.conn, origin if track_base else None)
    return stats


_KNOWN_IDS_SQL = (
    "SELECT external_id, key FROM id_map WHERE connection = ? AND entity = ?"
    " AND external_id IN (SELECT value FROM json_each(?))"
)


_QUEUED_SQL = (
    "SELECT DISTINCT key FROM outbox WHERE connection = ? AND entity = ? AND status = 'pending'"
    " AND receipt IS NOT NULL AND key IN (SELECT value FROM json_each(?))"
)


def _without_queued_counts(
    txn: Transaction, origin: str, entity: str, group: list[Record]
) -> list[Record]:
    """Records without their counts where a write of ours is queued at ``origin`` (a
    ``queued`` push, not confirmed yet): a read cannot tell that write, applied or not, from
    another change to the count, so the count (and its base) wait for the confirmation."""
    keys = dumps([r.key for r in group])
    queued = {key for (key,) in txn.conn.execute(_QUEUED_SQL, (origin, entity, keys))}
    if not queued:
        return group
    counters = COUNTER_FIELDS[entity]
    return [
        evolve(r, fields={k: v for k, v in r.fields.items() if k not in counters})
        if r.key in queued
        else r
        for r in group
    ]


def _reidentify(
    txn: Transaction,
    origin: str,
    entity: str,
    group: list[Record],
    seen: dict[str, Seen],
    resolver: Resolver,
    stats: ApplyStats,
) -> list[Record] | None:
    """The records again, where this connection already maps a record's platform id to
    another key (``None``: no such record). ``seen`` is the connection's rows for the records'
    keys: a key already mapped to the record's id needs no lookup (the id is unique).

    For entities known by the platform's own id (``identity == "external"``) the known key
    wins: an adjustment the host app created as ``L-1`` and pushed stays ``L-1`` when the
    platform lists it under its id. For entities known by their reference, the platform renamed
    the item (a new SKU): the old key is tombstoned and unmapped, the new one arrives as new.
    """
    ids = [
        r.external_id
        for r in group
        if r.external_id is not None and (r.key not in seen or seen[r.key][0] != r.external_id)
    ]
    if not ids:
        return None
    known = dict(txn.conn.execute(_KNOWN_IDS_SQL, (origin, entity, dumps(ids))).fetchall())
    moved = {
        r.external_id: known[r.external_id]
        for r in group
        if known.get(r.external_id, r.key) != r.key
    }
    if not moved:
        return None
    if identity(entity) == "external":
        return [evolve(r, key=moved[r.external_id]) if r.external_id in moved else r for r in group]
    old_keys = list(moved.values())
    txn.conn.executemany(
        "DELETE FROM id_map WHERE connection = ? AND entity = ? AND key = ?",
        [(origin, entity, key) for key in old_keys],
    )
    accepts = resolver.policies.accepts_delete(entity, origin)
    stats.deleted += apply_deletions(txn, origin, entity, old_keys, accepts)
    return group


def _apply_one(
    txn: Transaction,
    origin: str,
    record: Record,
    stored: StoredRecord | None,
    seen: Seen | None,
    resolver: Resolver,
    writes: _Writes,
    stats: ApplyStats,
    track_base: bool,
    stamp_seen: bool,
) -> None:
    if stored is not None and seen is not None and seen[1] is None and not stored[2]:
        # the connection held the mirror's record (no base of its own) and sends it again,
        # to the byte: three-way, nothing changed; only the stamp may be due
        sent = _without_empty_maps(record)
        if dumps(sent) == stored[0] and record.external_id in (None, seen[0]):
            stats.unchanged += 1
            if stamp_seen:
                writes.id_map.append(
                    (origin, record.entity, record.key, seen[0], None, int(seen[2]), txn.now)
                )
            return
    if stored is None:
        fields, clocks, deleted = None, None, False
    else:
        fields = loads(stored[0])
        clocks, deleted = decode_clocks(stored[1], fields), stored[2]
    if seen is not None:
        base: dict[str, Any] | None = decode_base(seen[1], fields)
    else:
        base = None if track_base else fields
    ts = _epoch(record.source_ts)
    outcome = resolver.resolve(origin, record.entity, record.fields, base, fields, clocks, ts)
    if outcome.rejected and not track_base:
        rules = ", ".join(
            f"{name} ({resolver.policies.for_field(record.entity, name).rule})"
            for name in outcome.rejected
        )
        raise PolicyError(f"{origin} may not change {record.entity} {record.key!r}: {rules}")
    stats.decisions += outcome.decisions
    news = outcome.changed
    if stored is not None and news.keys() <= BOOKKEEPING_FIELDS[record.entity]:
        news = {}  # only the source's own timestamps moved: nothing happened to the record
    revive = deleted and (base is None or bool(news))
    after = fields
    if news or revive:
        seq = txn.next_seq()
        merged = after = {**(fields or {}), **outcome.changed}
        merged_clocks = dict(clocks or {})
        for name, clock in outcome.clocks.items():
            clock[2] = seq
            merged_clocks[name] = clock
        names = list(merged if revive else news)
        writes.records.append(
            (record.entity, record.key, dumps(merged), encode_clocks(merged_clocks, merged), seq)
        )
        if outcome.changed:
            overwrites = writes.overwrites.get(record.entity)
            if overwrites is None:
                overwrites = writes.overwrites[record.entity] = {}
            prior = overwrites.get(record.key)
            overwrites[record.key] = (
                (fields or {}, outcome.changed)
                if prior is None
                else (prior[0], {**prior[1], **outcome.changed})
            )
        writes.changes.append(
            (seq, record.entity, record.key, "upsert", dumps(names), origin, txn.now)
        )
        if revive:
            writes.undeleted.append((record.entity, record.key))
        stats.changed += 1
        stats.created += stored is None
    else:
        stats.unchanged += 1
    for name, value, cur in outcome.conflicts:
        writes.conflicts.append(
            (
                record.entity,
                record.key,
                name,
                {origin: value, cur.origin or "mirror": cur.value},
                txn.now,
            )
        )
    stats.conflicts += len(outcome.conflicts)
    if track_base:
        diverged = outcome.diverged or (seen is not None and seen[2])
        held = _held(record, base)
        if stored is None and seen is None and not outcome.diverged:
            # a new record taken whole: what it holds, left out its empty maps, is what the
            # mirror took (the resolver skips exactly those, and takes the rest as they are)
            kept = None if len(outcome.changed) == len(held) else encode_base(held, after)
        else:
            kept = encode_base(held, after)
        writes.id_map.append(
            (origin, record.entity, record.key, record.external_id, kept, int(diverged), txn.now)
        )


def _without_empty_maps(record: Record) -> dict[str, Any]:
    """The record's fields as the mirror would hold them: without its empty keyed maps (the
    resolver never writes one)."""
    fields = record.fields
    empty = [name for name in KEYED_FIELDS.get(record.entity, ()) if fields.get(name) == {}]
    return {k: v for k, v in fields.items() if k not in empty} if empty else fields


def _held(record: Record, base: dict[str, Any] | None) -> dict[str, Any]:
    """What the connection holds now: its record, with the keys of keyed maps it did not send
    kept from before (it still holds what we pushed to it in other languages). An empty keyed
    map is left out: resolution and planning read a missing map as an empty one, and the
    resolver never writes one to the mirror, so the base stays the mirror's (nothing stored)."""
    fields = record.fields
    held = None
    for name in KEYED_FIELDS.get(record.entity, ()):
        now = fields.get(name)
        if type(now) is not dict:
            continue
        before = base.get(name) if base else None
        if type(before) is dict and before.keys() - now.keys():
            held = held if held is not None else dict(fields)
            held[name] = {**before, **now}
        elif not now:
            held = held if held is not None else dict(fields)
            del held[name]
    return fields if held is None else held


def _epoch(source_ts: str | None) -> float | None:
    return None if source_ts is None else parse_datetime(source_ts).timestamp()


def _open_conflict(
    conn: sqlite3.Connection,
    entity: str,
    key: str,
    field: str,
    candidates: dict[str, Any],
    now: str,
) -> None:
    row = conn.execute(
        "SELECT id, candidates FROM conflicts WHERE entity = ? AND key = ? AND field = ?"
        " AND status = 'open'",
        (entity, key, field),
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO conflicts (entity, key, field, candidates, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (entity, key, field, dumps(candidates), now),
        )
    else:
        merged = {**loads(row[1]), **candidates}
        conn.execute("UPDATE conflicts SET candidates = ? WHERE id = ?", (dumps(merged), row[0]))


def apply_deletions(
    txn: Transaction, origin: str, entity: str, keys: Sequence[str], accepts: bool = True
) -> int:
    """Tombstone ``keys`` of ``entity`` deleted by ``origin``; returns how many were live.

    The origin's base of each becomes :data:`DELETED_MARK`: it has deleted them, so the push
    planner never sends it their deletion back."""
    if not accepts:
        return 0
    live = [
        key
        for (key,) in txn.conn.execute(
            "SELECT key FROM records WHERE entity = ? AND deleted = 0"
            " AND key IN (SELECT value FROM json_each(?))",
            (entity, dumps(list(keys))),
        )
    ]
    rows = [(txn.next_seq(), key) for key in live]
    txn.conn.executemany(
        "UPDATE id_map SET base = ? WHERE connection = ? AND entity = ? AND key = ?",
        [(dumps({DELETED_MARK: True}), origin, entity, key) for key in live],
    )
    txn.conn.executemany(
        "UPDATE records SET deleted = 1, seq = ? WHERE entity = ? AND key = ?",
        [(seq, entity, key) for seq, key in rows],
    )
    txn.conn.executemany(
        "INSERT INTO changes (seq, entity, key, op, fields, origin, at)"
        " VALUES (?, ?, ?, 'delete', NULL, ?, ?)",
        [(seq, entity, key, origin, txn.now) for seq, key in rows],
    )
    txn.conn.executemany(
        "INSERT OR REPLACE INTO tombstones (entity, key, seq, origin, deleted_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(entity, key, seq, origin, txn.now) for seq, key in rows],
    )
    return len(rows)


def apply_local_batch(
    txn: Transaction, records: Sequence[Record], resolver: Resolver
) -> tuple[ApplyStats, dict[str, str]]:
    """Apply host-app edits in ``txn``, refusing a record a policy refuses without losing the
    others; returns the stats and ``{key: reason}`` of the refused records.

    The batch is applied whole first; only when some record is refused is it applied again
    one record per savepoint (so a refused record rolls back alone). Change-log numbers the
    first attempt used are then skipped: the log stays in order, with a gap."""
    txn.conn.execute("SAVEPOINT local_batch")
    try:
        stats = apply_records(txn, LOCAL, records, resolver, track_base=False)
    except PolicyError:
        txn.conn.execute("ROLLBACK TO local_batch")
    else:
        txn.conn.execute("RELEASE local_batch")
        return stats, {}
    txn.conn.execute("RELEASE local_batch")
    stats, refused = ApplyStats(), {}
    for record in records:
        txn.conn.execute("SAVEPOINT local_record")
        try:
            stats.add(apply_records(txn, LOCAL, [record], resolver, track_base=False))
        except PolicyError as exc:
            txn.conn.execute("ROLLBACK TO local_record")
            refused[record.key] = str(exc)
        txn.conn.execute("RELEASE local_record")
    return stats, refused
