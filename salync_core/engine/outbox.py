"""The outbox: what each connection must be sent, planned from the change log in one
transaction, delivered in batches, acknowledged exactly once. Pure store work, no I/O.

Planning reads the change-log rows after the connection's push cursor (and the records the
connection holds a refused value for), compares the mirror with what the connection last held
(its base), and queues only the fields it lacks and may receive. The outbox rows and the new
push cursor commit together, so a crash never loses or repeats a plan. An acknowledged push
updates the connection's base, so the value coming back on the next read is no change at all
(echo suppression).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from attrs import frozen

from salync_core.conflicts.policies import MISSING
from salync_core.conflicts.policy_set import PolicySet
from salync_core.models import KEYED_FIELDS
from salync_core.platform import Outbound, PushResult
from salync_core.store import Store, Transaction
from salync_core.store import outbox as outbox_rows
from salync_core.store.bases import ABSENT
from salync_core.store.database import to_json
from salync_core.store.mirror import DELETED_MARK
from salync_core.store.operations import add_dead_letters

MAX_ATTEMPTS = 8
QUEUED_RECHECK = (15.0, 600.0)
"""Seconds between confirmations of a write the platform queued (half its age, within these
bounds): a slow queue costs a few reads, never attempts, and never a dead letter."""


@frozen
class Due:
    """One outbox row ready to send."""

    id: int
    item: Outbound
    attempts: int


@frozen
class Receiver:
    """What one connection can be sent: the fields it writes, the keys of keyed maps (locales,
    attributes) it holds, and the policies that say whether it receives a field at all."""

    connection: str
    writable: dict[str, frozenset[str]]
    holds: Callable[[str, str, str], bool]
    policies: PolicySet
    foreign: frozenset[str] = frozenset()
    """Other platforms' names: a key ``"<name>:<id>"`` is in that platform's own namespace
    (a Salla product without a SKU) and is never sent to this connection."""

    def receives(self, key: str) -> bool:
        namespace, colon, _ = key.partition(":")
        return not colon or namespace not in self.foreign

    def lacks(self, entity: str, fields: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        """The mirror's fields the connection lacks, may receive and can write."""
        writable = self.writable.get(entity, frozenset())
        keyed = KEYED_FIELDS.get(entity, frozenset())
        return {
            name: value
            for name, value in fields.items()
            if name in writable
            and self._differs(entity, name, value, base.get(name, MISSING), name in keyed)
            and self.policies.for_field(entity, name).receives(self.connection)
        }

    def _differs(self, entity: str, name: str, value: Any, held: Any, keyed: bool) -> bool:
        if not keyed or type(value) is not dict:
            return bool(held != value)
        held_map = held if type(held) is dict else {}
        return any(
            held_map.get(key, MISSING) != item
            for key, item in value.items()
            if self.holds(entity, name, key)
        )


def plan(store: Store, receiver: Receiver, entities: Sequence[str]) -> int:
    """Queue what the receiver must be sent; returns how many outbox rows were written."""
    if not entities:
        return 0
    connection = receiver.connection
    with store.write() as txn:
        since = outbox_rows.push_position(txn.conn, connection)
        planned = 0
        targets = outbox_rows.pending_targets(txn.conn, connection, since, entities)
        for start in range(0, len(targets), PLAN_CHUNK):
            planned += _plan_chunk(txn, receiver, targets[start : start + PLAN_CHUNK])
        outbox_rows.mark_planned(txn, connection)
        return planned


PLAN_CHUNK = 500
"""Records planned per round of queries: a bulk push plans tens of thousands at once."""


def _plan_chunk(txn: Transaction, receiver: Receiver, targets: Sequence[tuple[str, str]]) -> int:
    """Plan a chunk of records with one query per table and entity, in ``targets`` order."""
    conn, connection = txn.conn, receiver.connection
    by_entity: dict[str, list[str]] = {}
    for entity, key in targets:
        by_entity.setdefault(entity, []).append(key)
    writes: dict[tuple[str, str], tuple[str, str]] = {}
    pending: dict[tuple[str, str], list[outbox_rows.QueuedWrite]] = {}
    for entity, keys in by_entity.items():
        for key, row in outbox_rows.records_to_plan(conn, connection, entity, keys):
            write = _planned_write(receiver, entity, row) if receiver.receives(key) else None
            if write is not None:  # each record decoded, planned and dropped in turn
                writes[entity, key] = write
        for key, queued in outbox_rows.queued_writes(conn, connection, entity, keys).items():
            pending[entity, key] = queued
    stale: list[int] = []
    inserts: list[tuple[str, str, str, str, str, str]] = []
    planned = 0
    for entity, key in targets:
        write = writes.get((entity, key))
        if write is None:
            continue
        op, payload = write
        planned += 1
        queued = pending.get((entity, key), [])
        if any(row_op == op and row_fields == payload for _, row_op, row_fields in queued):
            continue  # the same write is already queued: it keeps its key for its retries
        stale.extend(row_id for row_id, _, _ in queued)
        inserts.append((connection, entity, key, op, payload, new_idempotency_key()))
    outbox_rows.replace_writes(txn, stale, inserts)
    return planned


def _planned_write(
    receiver: Receiver, entity: str, row: outbox_rows.PlanningRow
) -> tuple[str, str] | None:
    """``(op, fields JSON)`` the receiver must be sent for one record, or ``None``.

    Only the fields the stored base names (``store/bases.py``) can differ from what the
    connection holds: the others are the mirror's by definition, so they are not compared."""
    fields, deleted, held, diff = row
    if deleted:
        if not held or (diff is not None and diff.get(DELETED_MARK)):
            return None
        return "delete", to_json({})
    if not held:
        send = receiver.lacks(entity, fields, {})
    elif diff is None:
        return None  # it holds the mirror's record
    elif DELETED_MARK in diff:
        send = receiver.lacks(entity, fields, diff)
    else:
        named = diff.keys() | diff.get(ABSENT, ())
        send = receiver.lacks(
            entity, {name: value for name, value in fields.items() if name in named}, diff
        )
    if not send:
        return None
    return "upsert", to_json(send)


def new_idempotency_key() -> str:
    """A key of its own for every planned write.

    Planning the same record again after an acknowledged push is a new write (the platform
    refused or changed the value since), so it must not reuse the acknowledged write's key: a
    platform would answer the stored response and apply nothing. A retry re-sends the same
    outbox row, so it sends the key stored with it."""
    return os.urandom(16).hex()  # a uuid4's randomness, a third of its cost


def due(store: Store, connection: str, limit: int = 1000) -> list[Due]:
    """Pending rows whose next attempt is due, oldest first, with what the connection holds.

    Read in a write transaction: it claims the rows for sending, so a run whose writer lease
    was taken over (:class:`~salync_core.errors.Fenced`) stops here instead of sending them."""
    with store.write() as txn:
        rows = outbox_rows.due_writes(txn.conn, connection, time.time(), limit)
        return [
            Due(
                row_id,
                Outbound(entity, key, orjson.loads(fields), base, ext_id, op, idem, receipt),
                tries,
            )
            for row_id, entity, key, op, fields, idem, tries, ext_id, base, receipt in rows
        ]


def next_wait(store: Store, connection: str) -> float | None:
    """Seconds until the next pending row is due, or ``None`` when nothing is pending."""
    at = outbox_rows.next_due_at(store.conn, connection)
    return None if at is None else max(0.0, at - time.time())


def record_results(
    store: Store, connection: str, sent: Sequence[tuple[Due, PushResult]], payloads: dict[int, Any]
) -> tuple[int, int, int]:
    """Acknowledge, reschedule or bury each sent row; returns (acked, retrying, dead)."""
    acked = retrying = dead = 0
    with store.write() as txn:
        _acknowledge_all(txn, connection, [(r, res) for r, res in sent if res.status == "ok"])
        for row, result in sent:
            if result.status == "ok":
                acked += 1
            elif result.status == "queued":
                outbox_rows.hold_queued(
                    txn, row.id, result.receipt, result.message, *QUEUED_RECHECK
                )
                retrying += 1
            elif result.status == "retry" and row.attempts + 1 < MAX_ATTEMPTS:
                _reschedule(txn, row, result.message)
                retrying += 1
            else:
                _bury(txn, connection, row, result.message, payloads.get(row.id))
                dead += 1
    return acked, retrying, dead


def _acknowledge_all(
    txn: Transaction, connection: str, acked: Sequence[tuple[Due, PushResult]]
) -> None:
    """Mark rows acknowledged and make what they sent the connection's base."""
    outbox_rows.acknowledge(
        txn,
        connection,
        [
            (
                row.id,
                row.item.entity,
                row.item.key,
                result.external_id or row.item.external_id,
                None if row.item.op == "delete" else row.item.fields,
            )
            for row, result in acked
        ],
    )


def _reschedule(txn: Transaction, row: Due, message: str) -> None:
    delay = random.uniform(0, min(300.0, 0.5 * 2 ** (row.attempts + 1)))  # full jitter
    outbox_rows.reschedule(txn, row.id, time.time() + delay, message)


def _bury(txn: Transaction, connection: str, row: Due, message: str, payload: Any) -> None:
    outbox_rows.bury(txn, row.id, message)
    raw = payload if payload is not None else row.item.fields
    add_dead_letters(
        txn, connection, f"push:{row.item.entity}", row.item.key, [(raw, message)], None
    )
