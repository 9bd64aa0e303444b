"""Draining the inbox into the mirror: each event through the same map/resolve/apply path as a
polled page, and each event once.

An event becomes pages (the platform's ``webhook_pages``: its payload, its deletions, or the
item fetched when the payload is partial). Its pages are written in one transaction with the
event's row in the mirror's ``webhook_events`` ledger (a batch of events shares the
transaction, each in a savepoint); an event the ledger already holds is skipped. So a
redelivered event, a crash after applying but before the inbox was told, or two processes
draining the same inbox (``webhooks serve`` and ``salync sync``) never apply an event twice.
No cursor moves: a webhook says what changed, not how far a pass has read.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, cast

from attrs import define, field

from salync_core.engine.pipeline import MappedPage, PageWork, apply_page, map_page, usage_rows
from salync_core.errors import Fatal, Retriable, SalyncError
from salync_core.store import Store, Transaction
from salync_core.store.inbox import Inbox, InboxEvent, inbox_path
from salync_core.store.operations import finish_run, start_run
from salync_core.store.webhook_ledger import claim_event
from salync_core.webhooks.events import WebhookEvent

if TYPE_CHECKING:
    from salync_core.engine.core import Engine

logger = logging.getLogger("salync.webhooks")

BATCH = 200
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0)
"""Seconds before retrying an event whose pages could not be fetched (the platform down)."""


@define
class DrainReport:
    """What one drain of the inbox did."""

    applied: int = 0
    skipped: int = 0
    """Events the mirror had applied already (a redelivery, another process)."""
    postponed: int = 0
    failed: int = 0
    errors: list[str] = field(factory=list)
    runs: dict[str, int] = field(factory=dict)
    """The run recorded for each connection that had events (``salync status`` shows it)."""


@define
class _Prepared:
    """An event with its pages mapped, ready for the batch transaction."""

    event: InboxEvent
    pages: list[tuple[PageWork, MappedPage]]
    error: str | None = None
    """Set when writing it failed (a bug): the event is kept as failed, the batch goes on."""


@define
class _OpenTransaction:
    """The mirror as ``apply_page`` sees it inside the batch transaction: its ``write()``
    hands out the transaction already open, so every event of a batch commits together."""

    txn: Transaction

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        yield self.txn


async def drain(
    engine: Engine,
    inbox: Inbox,
    connections: Sequence[str] | None = None,
    report: DrainReport | None = None,
) -> DrainReport:
    """Apply every due event of ``connections`` (all by default), oldest first: a batch of
    events in one mirror transaction, then one inbox commit marking them applied.

    Each connection with events gets a ``webhooks`` run in the mirror's run log, finished at
    the end; a caller that drains again and again (``webhooks serve``) passes one ``report``
    to keep adding to, and finishes its runs with :func:`finish_runs` when it stops."""
    if report is not None:
        await _drain(engine, inbox, connections, report)
        return report
    report = DrainReport()
    try:
        await _drain(engine, inbox, connections, report)
    finally:
        await finish_runs(engine, report)
    return report


async def finish_runs(engine: Engine, report: DrainReport) -> None:
    """Close the runs ``report`` opened, with its counts."""
    for connection, run_id in report.runs.items():
        await engine.store.run(_finish_run, engine.store, run_id, report, connection)
    report.runs.clear()


async def _drain(
    engine: Engine, inbox: Inbox, connections: Sequence[str] | None, report: DrainReport
) -> None:
    while events := await inbox.run(inbox.due, connections, BATCH):
        for connection in {e.connection for e in events} - set(report.runs):
            report.runs[connection] = await engine.store.run(_start_run, engine.store, connection)
        prepared = [p for event in events if (p := await _prepare(engine, inbox, event, report))]
        claimed = await engine.store.run(_write_batch, engine.store, prepared)
        for item, first_time in zip(prepared, claimed, strict=True):
            if item.error is not None:
                await inbox.run(inbox.fail, item.event.row, item.error)
                report.failed += 1
                report.errors.append(item.error)
            elif first_time:
                report.applied += 1
            else:
                report.skipped += 1
        # The mirror's ledger already holds what was applied: marking is bookkeeping.
        await inbox.run(inbox.mark_applied, [p.event.row for p in prepared if p.error is None])
        if len(events) < BATCH:
            break


def _start_run(store: Store, connection: str) -> int:
    with store.write() as txn:  # a write transaction, so a writer lease fences it
        return start_run(txn.conn, connection, "webhooks")


def _finish_run(store: Store, run_id: int, report: DrainReport, connection: str) -> None:
    errors = [e for e in report.errors if e.startswith(f"{connection}: ")]
    stats = {"applied": report.applied, "skipped": report.skipped, "failed": report.failed}
    with store.write() as txn:
        status = "failed" if errors else "ok"
        finish_run(txn.conn, run_id, status, stats, "; ".join(errors) or None)


async def _prepare(
    engine: Engine, inbox: Inbox, event: InboxEvent, report: DrainReport
) -> _Prepared | None:
    """The event's pages, mapped (fetching what a partial payload lacks); ``None`` when the
    event cannot be applied now (postponed) or ever (failed)."""
    try:
        live = await engine._connect(event.connection)
        run_id = report.runs[event.connection]
        parsed = WebhookEvent(event.type, event.data, event.event_id)
        pages = [item async for item in live.platform.webhook_pages(live.ctx, parsed)]
        mapped = []
        for stream, page in pages:
            work = PageWork(live, stream, engine.resolver, engine.policies, run_id, False)
            mapped.append((work, map_page(work, page)))
        return _Prepared(event, mapped)
    except SalyncError as exc:
        message = f"{event.connection}: webhook event {event.type} {event.event_id}: {exc}"
        report.errors.append(message)
        if isinstance(exc, Retriable) and not isinstance(exc, Fatal):
            delay = RETRY_DELAYS[min(event.attempts, len(RETRY_DELAYS) - 1)]
            logger.warning("%s (retrying in %.0f s)", message, delay)
            await inbox.run(inbox.postpone, event.row, str(exc), delay)
            report.postponed += 1
        else:
            logger.error("%s (not applied)", message)
            await inbox.run(inbox.fail, event.row, str(exc))
            report.failed += 1
    except Exception as exc:  # a plugin bug: keep the event, say so, go on with the rest
        logger.exception("%s: webhook event %s cannot be read", event.connection, event.row)
        await inbox.run(inbox.fail, event.row, f"internal error: {type(exc).__name__}: {exc}")
        report.failed += 1
    return None


def _write_batch(store: Store, batch: Sequence[_Prepared]) -> list[bool]:
    """One transaction: each event claimed in the ledger and, the first time, its pages
    written; each event in a savepoint of its own, so one that fails rolls back alone."""
    claimed = []
    with store.write() as txn:
        inside = cast(Store, _OpenTransaction(txn))
        for item in batch:
            event = item.event
            try:
                with txn.savepoint("event"):
                    first_time = claim_event(txn, event.connection, event.event_id)
                    if first_time:
                        for work, mapped in item.pages:
                            usage = usage_rows(work.live)
                            apply_page(inside, work, mapped, usage)
            except Exception as exc:  # a bug in mapping or resolving: this event only
                logger.exception(
                    "%s: applying webhook event %s failed", event.connection, event.row
                )
                item.error = f"internal error: {type(exc).__name__}: {exc}"
                first_time = False
            claimed.append(first_time)
    return claimed


async def drain_beside_mirror(engine: Engine, connections: Sequence[str]) -> DrainReport | None:
    """Apply what the inbox beside the mirror holds (``salync sync`` does it first), if the
    mirror has an inbox at all."""
    path = inbox_path(engine.store.path)
    if not path.exists():
        return None
    inbox = Inbox(path)
    try:
        return await drain(engine, inbox, connections)
    finally:
        inbox.close()
