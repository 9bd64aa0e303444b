"""Putting right what went wrong, once its cause is fixed: retry dead letters and dead pushes,
and show what a push would send (``salync dead-letters``, ``salync outbox``, ``--dry-run``).

These hold the mirror's write lock like a sync does, so they never interleave with one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from attrs import Factory, define

from salync_core.engine import outbox
from salync_core.engine.mapping import map_items
from salync_core.errors import DataError
from salync_core.store import Store
from salync_core.store.mirror import apply_deletions, apply_records
from salync_core.store.outbox_admin import (
    PUSH_PREFIX,
    dead_letters,
    forget_letters,
    requeue_dead,
    requeue_push_letter,
)

if TYPE_CHECKING:
    from salync_core.engine.core import Engine
    from salync_core.platform import Record


@define
class RetryOutcome:
    """What retrying dead letters did."""

    reapplied: int = 0
    """Inbound records that map now and were applied to the mirror."""
    requeued: int = 0
    """Rejected pushes queued again (sent by the next push)."""
    still_failing: list[tuple[int, str]] = Factory(list)
    """Dead letters kept, with the reason they still fail."""


async def requeue_outbox(
    engine: Engine, connection: str | None = None, ids: Sequence[int] = ()
) -> int:
    """Queue dead pushes again (all, one connection's, or these outbox ids)."""
    if connection is not None:
        engine.config.connection(connection)

    def go(store: Store) -> int:
        with store.write() as txn:
            return requeue_dead(txn, connection, ids)

    async with engine.writers.mirror_lock(engine.lock_wait):
        return await engine.store.run(go, engine.store)


async def retry_dead_letters(
    engine: Engine, connection: str | None = None, ids: Sequence[int] = ()
) -> RetryOutcome:
    """Map each inbound dead letter again and apply those that map now (a fixed plugin or
    configuration); queue each rejected push again. The others stay, with today's reason."""
    if connection is not None:
        engine.config.connection(connection)
    outcome = RetryOutcome()
    async with engine.writers.mirror_lock(engine.lock_wait):
        letters = await engine.store.run(
            dead_letters, engine.store.conn, connection, list(ids), None
        )
        if ids and len(letters) < len(set(ids)):
            missing = sorted(set(ids) - {int(letter["id"]) for letter in letters})
            outcome.still_failing.extend((i, "no such dead letter") for i in missing)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for letter in letters:
            groups.setdefault((letter["connection"], letter["stream"]), []).append(letter)
        for (name, stream), group in groups.items():
            if stream.startswith(PUSH_PREFIX):
                outcome.requeued += await engine.store.run(_requeue_pushes, engine.store, group)
            else:
                await _reapply(engine, name, stream, group, outcome)
    return outcome


def _requeue_pushes(store: Store, letters: list[dict[str, Any]]) -> int:
    with store.write() as txn:
        return sum(requeue_push_letter(txn, letter) for letter in letters)


async def _reapply(
    engine: Engine, name: str, stream_name: str, letters: list[dict[str, Any]], out: RetryOutcome
) -> None:
    if name not in engine.config.connections:
        out.still_failing.extend((letter["id"], f"no connection {name!r}") for letter in letters)
        return
    live = await engine._connect(name)
    stream = next((s for s in live.platform.streams if s.name == stream_name), None)
    if stream is None:
        reason = f"{live.platform.name} has no stream {stream_name!r}"
        out.still_failing.extend((letter["id"], reason) for letter in letters)
        return
    mapped: list[Record] = []
    done: list[int] = []
    for letter in letters:
        try:
            raw = orjson.loads(letter["raw"])
        except orjson.JSONDecodeError:
            out.still_failing.append((letter["id"], "the kept payload is not JSON"))
            continue
        records, rejects = map_items(live.platform, live.ctx, stream, [raw])
        if rejects:
            out.still_failing.append((letter["id"], rejects[0][1]))
            continue
        mapped.extend(records)
        done.append(letter["id"])
    if done:
        await engine.store.run(_apply, engine, name, mapped, done)
        out.reapplied += len(done)


def _apply(engine: Engine, origin: str, records: list[Record], letter_ids: list[int]) -> None:
    """Apply the records that map now and drop their dead letters, in one transaction."""
    gone: dict[str, list[str]] = {}
    for record in records:
        if record.deleted:
            gone.setdefault(record.entity, []).append(record.key)
    with engine.store.write() as txn:
        apply_records(txn, origin, [r for r in records if not r.deleted], engine.resolver)
        for entity, keys in gone.items():
            accepts = engine.policies.accepts_delete(entity, origin)
            apply_deletions(txn, origin, entity, keys, accepts)
        forget_letters(txn, letter_ids)


async def preview_push(engine: Engine, connections: Sequence[str] | None = None) -> list[Any]:
    """What a push would send now, per connection with ``push``, without sending anything:
    the outbox is planned (as the next push would plan it) and each due write is mapped to the
    platform's payload. Returns one dict per write."""
    names = [
        n
        for n in (connections or list(engine.config.connections))
        if engine.config.connection(n).push
    ]
    writes: list[dict[str, Any]] = []
    async with engine.writers.mirror_lock(engine.lock_wait):
        for name in names:
            live = await engine._connect(name)
            entities = live.config.push
            writable = {entity: live.platform.writable_fields(entity) for entity in entities}
            receiver = outbox.Receiver(
                name, writable, functools.partial(live.platform.holds, live.ctx), engine.policies
            )
            await engine.store.run(outbox.plan, engine.store, receiver, entities)
            for row in await engine.store.run(outbox.due, engine.store, name, 100_000):
                write: dict[str, Any] = {
                    "connection": name,
                    "op": row.item.op,
                    "entity": row.item.entity,
                    "key": row.item.key,
                    "fields": row.item.fields,
                }
                try:
                    write["payload"] = live.platform.map_outbound(live.ctx, row.item)
                except DataError as exc:
                    write["rejected"] = str(exc)
                writes.append(write)
    return writes
