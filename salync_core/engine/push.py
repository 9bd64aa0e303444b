"""Push: plan the outbox for a connection, then deliver it in the largest batches it takes."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import anyio
from attrs import frozen

from salync_core import plugins
from salync_core.conflicts.policy_set import PolicySet
from salync_core.engine import outbox
from salync_core.engine.connections import LiveConnection
from salync_core.engine.report import Problem, RunReport
from salync_core.errors import DataError, Fatal, QuotaExhausted, RejectedError, SalyncError
from salync_core.platform import PushResult
from salync_core.store import Store

MAX_INLINE_WAIT = 5.0
"""A retry due within this many seconds is waited for; later ones wait for the next run."""
PUSH_CONCURRENCY = 32
"""Batches of one entity a connection has in flight at once. The HTTP client's pacer still
holds every request within the platform's limits (a request in flight holds its slot of a
window, and a 429 holds them all). 32 rather than 8: with more answers arriving per turn of
the event loop, both the engine and the server spend less CPU a request (about 15-20% less
against the emulators with limits lifted); beyond 32 nothing more is gained."""


async def push_connection(
    store: Store, live: LiveConnection, policies: PolicySet, report: RunReport
) -> None:
    """Plan and deliver everything ``live`` must receive."""
    entities = live.config.push
    writable = {entity: live.platform.writable_fields(entity) for entity in entities}
    unsupported = [e for e, fields in writable.items() if not fields]
    if unsupported:
        report.problems.append(
            Problem(
                live.name,
                "push",
                f"{live.platform.name} cannot receive {', '.join(unsupported)}",
                fatal=True,
            )
        )
        return
    receiver = outbox.Receiver(
        live.name,
        writable,
        functools.partial(live.platform.holds, live.ctx),
        policies,
        frozenset(plugins.platforms()) - {live.platform.name},
    )
    await store.run(outbox.plan, store, receiver, entities)
    while not report.paused_until:
        # at least one full batch per round, so a bulk platform's chunks are not cut short
        limit = max(1000, live.platform.push_batch_size)
        rows = await store.run(outbox.due, store, live.name, limit)
        if rows:
            if not await _deliver(store, live, rows, report):
                return
            continue
        wait = await store.run(outbox.next_wait, store, live.name)
        if wait is None or wait > MAX_INLINE_WAIT:
            return
        await anyio.sleep(wait)


async def _deliver(
    store: Store, live: LiveConnection, rows: Sequence[outbox.Due], report: RunReport
) -> bool:
    """Send rows batch by batch, one entity after the other (in the order they were planned);
    returns False when the connection cannot go on."""
    size = max(1, live.platform.push_batch_size)
    by_entity: dict[str, list[outbox.Due]] = {}
    for row in rows:
        by_entity.setdefault(row.item.entity, []).append(row)
    for entity, group in by_entity.items():
        batches = [group[start : start + size] for start in range(0, len(group), size)]
        if not await _deliver_concurrently(store, live, entity, batches, report):
            return False
    return True


@frozen
class _Sent:
    """One batch's answers, waiting to be recorded."""

    done: list[tuple[outbox.Due, PushResult]]
    payloads: dict[int, Any]


async def _deliver_concurrently(
    store: Store,
    live: LiveConnection,
    entity: str,
    batches: Sequence[Sequence[outbox.Due]],
    report: RunReport,
) -> bool:
    """Up to :data:`PUSH_CONCURRENCY` batches in flight (that many workers taking the next
    batch in order: no task or limiter wait per batch); one recorder writes the answers,
    those that arrived together in one transaction. Each row is sent once here and recorded
    once; a row whose answer was not recorded yet when the process dies stays pending and
    is sent again with the same idempotency key, as before. Once a batch says the connection
    cannot go on (a quota, a fatal error), no further batch starts."""
    go_on = True
    pending = iter(batches)
    send_answers, answers = anyio.create_memory_object_stream[_Sent](math.inf)

    async def send() -> None:
        nonlocal go_on
        for batch in pending:  # the workers share one iterator: each batch goes once
            if not go_on:
                return
            sent, can_go_on = await _send_batch(live, entity, batch, report)
            go_on = go_on and can_go_on
            send_answers.send_nowait(sent)

    async def record() -> None:
        async with answers:
            async for first in answers:
                group = [first]
                while True:
                    try:
                        group.append(answers.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await _record(store, live, entity, group, report)

    try:
        async with anyio.create_task_group() as recorder:
            recorder.start_soon(record)
            async with send_answers, anyio.create_task_group() as senders:
                for _ in range(min(PUSH_CONCURRENCY, len(batches))):
                    senders.start_soon(send)
    except BaseExceptionGroup as group:  # the caller handles the error itself, not a group
        raise _first(group) from None
    return go_on


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _send_batch(
    live: LiveConnection, entity: str, batch: Sequence[outbox.Due], report: RunReport
) -> tuple[_Sent, bool]:
    """Map and send one batch; returns its answers and whether the connection can go on."""
    mapped, payloads, results = [], {}, {}
    for row in batch:
        try:
            payloads[row.id] = live.platform.map_outbound(live.ctx, row.item)
            mapped.append(row)
        except DataError as exc:
            results[row.id] = PushResult(row.item.key, "rejected", message=str(exc))
    go_on = True
    if mapped:
        try:
            sent = await live.platform.push(
                live.ctx, entity, [(r.item, payloads[r.id]) for r in mapped]
            )
            if len(sent) != len(mapped):
                raise SalyncError(
                    f"{live.platform.name}.push returned {len(sent)} results "
                    f"for {len(mapped)} items"
                )
            results.update({r.id: res for r, res in zip(mapped, sent, strict=True)})
        except QuotaExhausted as exc:
            report.paused_until = exc.resume_at.isoformat()
            go_on = False
        except RejectedError as exc:
            results.update(
                {r.id: PushResult(r.item.key, "rejected", message=str(exc)) for r in mapped}
            )
        except SalyncError as exc:
            if isinstance(exc, Fatal):
                report.problems.append(Problem(live.name, "push", str(exc), fatal=True))
                go_on = False
            else:
                results.update(
                    {r.id: PushResult(r.item.key, "retry", message=str(exc)) for r in mapped}
                )
    done = [(row, results[row.id]) for row in batch if row.id in results]
    return _Sent(done, payloads), go_on


async def _record(
    store: Store, live: LiveConnection, entity: str, group: Sequence[_Sent], report: RunReport
) -> None:
    """Acknowledge, reschedule or bury the answers of ``group`` in one transaction."""
    done = [answer for sent in group for answer in sent.done]
    payloads = {row_id: body for sent in group for row_id, body in sent.payloads.items()}
    if not done:
        return
    acked, _retrying, dead = await store.run(
        outbox.record_results, store, live.name, done, payloads
    )
    report.pushed += acked
    report.push_failed += dead
    if dead:
        report.problems.append(
            Problem(live.name, "push", f"{dead} {entity} push(es) rejected; see dead letters")
        )
