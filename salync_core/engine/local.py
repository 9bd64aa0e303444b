"""Edits from the host app and the change feed it reads.

Local edits carry the origin ``local``: a participant in the policies like any connection, so
``owner = "local"`` makes the host app the source of truth for a field, and a local edit to a
field another connection owns is refused whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from attrs import frozen

from salync_core.conflicts.policies import LOCAL
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver
from salync_core.converters import codec, format_datetime
from salync_core.errors import DataError, PolicyError
from salync_core.platform import Record
from salync_core.store import Store, change_feed
from salync_core.store.mirror import apply_deletions, apply_local_batch, apply_records
from salync_core.store.outbox import push_position


@frozen
class Change:
    """One row of the change log, as the change feed delivers it: which fields changed, with
    the record's current values (a later change of a field appears again later in the feed)."""

    seq: int
    entity: str
    key: str
    op: str
    fields: dict[str, Any] | None
    origin: str
    at: str


def upsert(
    store: Store, resolver: Resolver, entity: str, key: str, fields: Mapping[str, Any]
) -> int | None:
    """Apply a local edit; returns its change seq, or ``None`` when nothing changed."""
    if not isinstance(key, str) or not key.strip():
        raise DataError(f"{entity}: a local edit needs a reference, got {key!r}")
    clean = codec(entity).normalize(fields)
    record = Record(entity, key, clean, source_ts=format_datetime(datetime.now(UTC)))
    with store.write() as txn:
        stats = apply_records(txn, LOCAL, [record], resolver, track_base=False)
        return txn.last_seq if stats.changed else None


@frozen
class BatchResult:
    """What :func:`upsert_many` did: how many records changed, and the records it refused
    with the reason (a value that does not validate, a field another connection owns). The
    refused records are left as they were; every other record of the batch is applied."""

    changed: int
    unchanged: int
    refused: dict[str, str]
    last_seq: int | None
    """The change seq of the batch's last change, or ``None`` when nothing changed."""


def upsert_many(
    store: Store, resolver: Resolver, entity: str, records: Mapping[str, Mapping[str, Any]]
) -> BatchResult:
    """Apply many local edits (``{key: fields}``) in one transaction, each with the
    semantics of :func:`upsert`. A record that is refused does not stop the others."""
    model = codec(entity)
    moment = format_datetime(datetime.now(UTC))
    refused: dict[str, str] = {}
    good: list[Record] = []
    for key, fields in records.items():
        try:
            if not isinstance(key, str) or not key.strip():
                raise DataError(f"{entity}: a local edit needs a reference, got {key!r}")
            good.append(Record(entity, key, model.normalize(fields), source_ts=moment))
        except DataError as exc:
            refused[str(key)] = str(exc)
    if not good:
        return BatchResult(0, 0, refused, None)
    with store.write() as txn:
        stats, blocked = apply_local_batch(txn, good, resolver)
        last = txn.last_seq if stats.changed else None
    refused.update(blocked)
    return BatchResult(stats.changed, len(good) - len(blocked) - stats.changed, refused, last)


def delete(store: Store, policies: PolicySet, entity: str, key: str) -> bool:
    """Tombstone a record from the host app; returns whether it was live."""
    codec(entity)
    if not policies.accepts_delete(entity, LOCAL):
        raise PolicyError(
            f"{LOCAL} may not delete {entity} records: {policies.entities[entity].rule}"
        )
    with store.write() as txn:
        return apply_deletions(txn, LOCAL, entity, [key]) == 1


def delete_many(store: Store, policies: PolicySet, entity: str, keys: Sequence[str]) -> int:
    """Tombstone many records in one transaction; returns how many were live. Deleting is
    allowed or refused for the whole entity, so a refusal refuses the whole batch."""
    codec(entity)
    if not policies.accepts_delete(entity, LOCAL):
        raise PolicyError(
            f"{LOCAL} may not delete {entity} records: {policies.entities[entity].rule}"
        )
    with store.write() as txn:
        return apply_deletions(txn, LOCAL, entity, list(dict.fromkeys(keys)))


def read_changes(
    conn: sqlite3.Connection, since: int, limit: int, entity: str | None = None
) -> list[Change]:
    """Change-log rows after ``since``, oldest first."""
    rows = change_feed.changes_after(conn, since, limit, entity)
    return [
        Change(seq, ent, key, op, _values(names, current), origin, at)
        for seq, ent, key, op, names, origin, at, current in rows
    ]


def _values(names: str | None, current: str | None) -> dict[str, Any] | None:
    if names is None:
        return None
    record = orjson.loads(current) if current else {}
    return {name: record.get(name) for name in orjson.loads(names)}


def register_consumer(store: Store, name: str, since: int | None) -> int:
    """Register a change-feed consumer (tombstones wait for it); returns its position."""
    with store.write() as txn:
        start = txn.last_seq if since is None else since
        return change_feed.add_consumer(txn, name, start)


def acknowledge(store: Store, name: str, seq: int) -> None:
    """A consumer has handled everything up to ``seq`` (positions never move backwards)."""
    with store.write() as txn:
        if not change_feed.advance_consumer(txn, name, seq):
            raise DataError(f"no change-feed consumer named {name!r}; register it first")


def purge_tombstones(store: Store, pushing: list[str]) -> int:
    """Forget deleted records every pushing connection and every consumer has passed."""
    with store.write() as txn:
        positions = change_feed.consumer_positions(txn.conn) + [
            push_position(txn.conn, name) for name in pushing
        ]
        horizon = min(positions, default=txn.last_seq)
        return change_feed.forget_tombstones(txn, horizon)
