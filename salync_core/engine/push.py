"""Push: plan the outbox for a connection, then deliver it in the largest batches it takes."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import anyio

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
    """Send rows batch by batch; returns False when the connection cannot go on."""
    size = max(1, live.platform.push_batch_size)
    by_entity: dict[str, list[outbox.Due]] = {}
    for row in rows:
        by_entity.setdefault(row.item.entity, []).append(row)
    for entity, group in by_entity.items():
        for start in range(0, len(group), size):
            if not await _send_batch(store, live, entity, group[start : start + size], report):
                return False
    return True


async def _send_batch(
    store: Store, live: LiveConnection, entity: str, batch: Sequence[outbox.Due], report: RunReport
) -> bool:
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
    acked, _retrying, dead = await store.run(
        outbox.record_results, store, live.name, done, payloads
    )
    report.pushed += acked
    report.push_failed += dead
    if dead:
        report.problems.append(
            Problem(live.name, "push", f"{dead} {entity} push(es) rejected; see dead letters")
        )
    return go_on
