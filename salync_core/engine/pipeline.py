"""One stream of one connection: fetch -> map -> resolve -> apply, one transaction per page.

Two stages overlap: the event loop fetches and maps page N+1 (pure work, no database) while
the store's worker thread resolves page N against the mirror and writes it, so Python work on
one side runs while SQLite works on the other. On a long pass, mapping moves to worker
processes (:mod:`salync_core.engine.mapper_pool`): the event loop then only fetches and sends
pages out, several pages may be in mapping at once, and the consumer still applies them in
order. A page, its records, change-log rows,
tombstones, dead letters, request counters and the stream's new cursor are committed together,
so a process killed between pages resumes from the last committed cursor with nothing lost and
nothing logged twice.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from attrs import define, field, frozen

from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver
from salync_core.engine.connections import LiveConnection
from salync_core.engine.mapper_pool import (
    PROBE_PAGES,
    MapperPool,
    MappingSpec,
    MapPolicy,
    MapResult,
    pays,
    records_from,
    shipping_seconds,
    spec_for,
)
from salync_core.engine.mapping import map_items
from salync_core.engine.page_writer import PageWriter, WriteFailed, Written
from salync_core.engine.report import Problem, RunReport
from salync_core.engine.sweep import DeletionGuard, tombstone_unseen
from salync_core.errors import (
    BadResponseError,
    Fatal,
    QuotaExhausted,
    SalyncError,
    TransportError,
    UnreachableError,
)
from salync_core.platform import Page, Record, Stream
from salync_core.store import Store, Transaction, failures
from salync_core.store.id_map import key_for_external_id
from salync_core.store.mirror import ApplyStats, apply_deletions, apply_records
from salync_core.store.operations import add_dead_letters, add_usage, set_cursor

logger = logging.getLogger("salync.engine")


class Progress(Protocol):
    """Receives progress of long work (the CLI draws bars from it)."""

    def page_done(self, connection: str, stream: str, items: int, total: int | None) -> None: ...


@define
class PageWork:
    """Everything one page transaction needs."""

    live: LiveConnection
    stream: Stream
    resolver: Resolver
    policies: PolicySet
    run_id: int
    save_cursor: bool = True
    """Off for pages that are not part of the stream's pass (reconcile fetching missing items)."""
    guard: DeletionGuard = field(factory=DeletionGuard)
    """When a page's :class:`~salync_core.platform.Sweep` may tombstone many records."""
    pool: MapperPool | None = None
    """Worker processes that may map this stream's pages (see :class:`PageMapper`)."""
    map_policy: MapPolicy = field(factory=lambda: MapPolicy(0))
    writer: PageWriter | None = None
    """A process that may write this stream's pages (see :class:`PageApplier`)."""
    write_policy: MapPolicy = field(factory=lambda: MapPolicy(0))

    def target(self) -> PageTarget:
        return PageTarget(
            self.live.name,
            self.stream.name,
            self.run_id,
            self.save_cursor,
            self.guard,
            self.stream.sweeps,
        )


@define
class MappedPage:
    """A page with its items mapped to validated records (or rejected, with the reason)."""

    page: Page
    records: list[Record]
    rejects: list[tuple[Any, str]]
    refused: list[str] = field(factory=list)
    """Why the guard held back the page's sweep, per entity (filled when it is applied)."""


def map_page(work: PageWork, page: Page) -> MappedPage:
    """Map inbound: pure, so it runs outside the page transaction."""
    live = work.live
    records, rejects = map_items(live.platform, live.ctx, work.stream, page.items)
    rejects.extend((r.raw, r.reason) for r in page.rejects)
    return MappedPage(page, records, rejects)


@define
class PendingPage:
    """A page being mapped in a worker process; :meth:`mapped` waits for it."""

    page: Page
    future: asyncio.Future[MapResult]

    async def mapped(self) -> MappedPage:
        rows, rejects = await self.future
        rejects.extend((r.raw, r.reason) for r in self.page.rejects)
        return MappedPage(self.page, records_from(rows), rejects)


@define
class PageMapper:
    """Maps one pass's pages in-process or in the pool.

    Under ``auto`` a pass goes to the pool only when it is long (:class:`MapPolicy`) and
    mapping costs the event loop clearly more than shipping would (measured on the pass's
    first pages once it turns long: :func:`~salync_core.engine.mapper_pool.pays`);
    pages keep mapping in-process until the workers are up, so none waits for a process to
    start. A number set explicitly sends every page to the pool, waiting for it once."""

    work: PageWork
    pages: int = 0
    total: int | None = None
    spec: MappingSpec | None = None
    use_pool: bool | None = None
    """Decided once per pass: ``None`` until the pass is long enough to ask."""
    probe: list[float] = field(factory=lambda: [0.0, 0.0, 0])
    """Mapping and shipping CPU seconds, and pages, measured until ``use_pool`` is decided."""
    pending: list[PendingPage] = field(factory=list)

    async def map(self, page: Page) -> MappedPage | PendingPage:
        self.pages += 1
        if self.total is None:
            self.total = page.total  # later pages may count only what is left
        pool = self._pool()
        if pool is None or self.spec is None:
            return map_page(self.work, page)
        if self.use_pool is None and not self.work.map_policy.wait:
            started = time.thread_time()
            mapped = map_page(self.work, page)
            self.probe[0] += time.thread_time() - started
            self.probe[1] += shipping_seconds(page.items, mapped.records)
            self.probe[2] += 1
            if self.probe[2] >= PROBE_PAGES:
                self.use_pool = pays(self.probe[0], self.probe[1])
            return mapped
        self.use_pool = True
        pool.warm(self.spec)
        if self.work.map_policy.wait and not pool.ready(self.spec):
            await pool.wait_ready(self.spec)
        if not pool.ready(self.spec):
            return map_page(self.work, page)
        pending = PendingPage(page, pool.submit(self.spec, self.work.stream, page.items))
        self.pending = [p for p in self.pending if not p.future.done()] + [pending]
        return pending

    def _pool(self) -> MapperPool | None:
        pool, policy = self.work.pool, self.work.map_policy
        if pool is None or self.use_pool is False:
            return None
        if not policy.wants_pool(self.pages, self.total):
            return None
        if self.spec is None:
            self.spec = spec_for(self.work.live)
        if self.spec is None or pool.unavailable(self.spec):
            return None
        return pool

    def cancel(self) -> None:
        """Drop what is still being mapped (the pass stopped)."""
        for pending in self.pending:
            if pending.future.done() and not pending.future.cancelled():
                pending.future.exception()  # seen: no "never retrieved" warning
            pending.future.cancel()
        self.pending.clear()


@frozen
class PageTarget:
    """Where and how a page is written: what a page transaction needs besides the resolver
    (small and picklable, so a writer process gets it with each page)."""

    origin: str
    stream: str
    run_id: int
    save_cursor: bool
    guard: DeletionGuard
    sweeps: bool = True
    """The stream's passes may end in a sweep: every record delivered is stamped seen."""


def apply_page(
    store: Store, work: PageWork, mapped: MappedPage, usage: dict[str, Any]
) -> tuple[ApplyStats, int, int]:
    """Resolve and write one mapped page in one transaction; returns (stats, rejected, deleted)."""
    return write_page(store, work.target(), work.resolver, mapped, usage)


def write_page(
    store: Store, target: PageTarget, resolver: Resolver, mapped: MappedPage, usage: dict[str, Any]
) -> tuple[ApplyStats, int, int]:
    """:func:`apply_page` from what travels to a writer process."""
    page, origin, policies = mapped.page, target.origin, resolver.policies
    alive = [r for r in mapped.records if not r.deleted]
    gone = [r for r in mapped.records if r.deleted]
    with store.write() as txn:
        stats = apply_records(txn, origin, alive, resolver, stamp_seen=target.sweeps)
        deleted = _apply_page_deletions(txn, origin, policies, page, gone)
        if page.sweep is not None and not target.sweeps:
            mapped.refused.append(
                f"stream {target.stream} declares no sweeps (Stream.sweeps is False) yet its "
                "pass ended in one; nothing was deleted (a bug in the platform's plugin)"
            )
        elif page.sweep is not None:
            swept, mapped.refused = tombstone_unseen(
                txn, origin, page.sweep, target.guard, policies.accepts_delete
            )
            deleted += swept
        add_dead_letters(txn, origin, target.stream, page.ref, mapped.rejects, target.run_id)
        if target.save_cursor:
            set_cursor(txn, origin, target.stream, page.cursor)
        add_usage(txn, origin, usage)
    return stats, len(mapped.rejects), deleted


def _apply_page_deletions(
    txn: Transaction, origin: str, policies: PolicySet, page: Page, gone: list[Any]
) -> int:
    by_entity: dict[str, list[str]] = {}
    for record in gone:
        by_entity.setdefault(record.entity, []).append(record.key)
    for deletion in page.deletions:
        key = deletion.key or key_for_external_id(
            txn.conn, origin, deletion.entity, deletion.external_id
        )
        if key is not None:
            by_entity.setdefault(deletion.entity, []).append(key)
    return sum(
        apply_deletions(txn, origin, entity, keys, policies.accepts_delete(entity, origin))
        for entity, keys in by_entity.items()
    )


def usage_rows(live: LiveConnection) -> dict[str, dict[str, int]]:
    """Drain the client's request counters into ledger rows by day."""
    return {
        day.isoformat(): {
            "requests": u.requests,
            "throttled": u.throttled,
            "retries": u.retries,
            "bytes_in": u.bytes_in,
            "bytes_out": u.bytes_out,
        }
        for day, u in live.http.take_usage().items()
    }


_End = tuple[str, BaseException | None]
_Item = MappedPage | PendingPage | _End


async def sync_stream(
    store: Store,
    work: PageWork,
    cursor: Any,
    report: RunReport,
    progress: Progress | None = None,
) -> tuple[Any, bool]:
    """Fetch and apply every page of one stream after ``cursor``.

    Returns the last cursor stored and whether a full pass (everything, not only changes) ran
    to its end. Problems are recorded in ``report``; a daily quota stops the stream cleanly at a
    committed page.
    """
    ahead = 1 + (work.pool.processes if work.pool is not None else 0)
    send, receive = anyio.create_memory_object_stream[_Item](max_buffer_size=ahead)
    mapper = PageMapper(work)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_produce, work, mapper, cursor, send)
            async with receive:
                last_cursor, completed, full = await _consume(
                    store, work, receive, report, progress, cursor
                )
                tg.cancel_scope.cancel()  # stop the producer before its stream closes under it
    finally:
        mapper.cancel()
    return last_cursor, completed and full


async def _consume(
    store: Store,
    work: PageWork,
    receive: MemoryObjectReceiveStream[_Item],
    report: RunReport,
    progress: Progress | None,
    cursor: Any,
) -> tuple[Any, bool, bool]:
    """Apply pages in the order they were fetched; returns (last cursor, finished, full)."""
    stream_report = report.stream(work.stream.name)
    tally = _Tally(work, report, progress, cursor)
    applier = PageApplier(store, work)
    try:
        async for received in receive:
            if isinstance(received, tuple):
                if await _settled(store, work, report, tally, applier.drain()):
                    tally.completed = stream_report.finished = received[1] is None
                    await _record_end(store, received[1], work, report)
                break
            try:
                item = await received.mapped() if isinstance(received, PendingPage) else received
            except Exception as exc:  # a mapping hook's bug, or a worker process that died
                logger.exception("%s/%s: mapping a page failed", work.live.name, work.stream.name)
                message = f"mapping a page failed in a worker process: {type(exc).__name__}: {exc}"
                report.problems.append(
                    Problem(work.live.name, work.stream.name, message, received.page.ref, True)
                )
                break
            usage = usage_rows(work.live)
            report.requests += sum(day["requests"] for day in usage.values())
            if not await _settled(store, work, report, tally, applier.apply(item, usage)):
                break
    finally:
        with anyio.CancelScope(shield=True):  # pages queued to the writer end before we do
            await _settled(store, work, report, tally, applier.drain())
    return tally.cursor, tally.completed, tally.full


async def _settled(
    store: Store,
    work: PageWork,
    report: RunReport,
    tally: _Tally,
    applying: Awaitable[list[_Applied]],
) -> bool:
    """Count the pages ``applying`` returns; ``False`` (with the problem reported) when one
    failed, which ends the stream."""
    try:
        applied = await applying
    except PageFailed as failed:
        tally.add(failed.applied)
        message = _apply_failure(store, work, failed.cause)
        report.problems.append(
            Problem(work.live.name, work.stream.name, message, failed.page.page.ref, True)
        )
        return False
    tally.add(applied)
    return True


_Applied = tuple[MappedPage, ApplyStats, int, int]


class PageFailed(Exception):
    """A page that could not be applied, after the pages before it that were."""

    def __init__(self, page: MappedPage, cause: Exception, applied: list[_Applied]) -> None:
        super().__init__(str(cause))
        self.page, self.cause, self.applied = page, cause, applied


@define
class _Tally:
    """A stream's applied pages, counted into its report in order."""

    work: PageWork
    report: RunReport
    progress: Progress | None
    cursor: Any
    completed: bool = False
    full: bool = False

    def add(self, applied: list[_Applied]) -> None:
        work, report = self.work, self.report
        stream_report = report.stream(work.stream.name)
        for item, stats, rejected, deleted in applied:
            self.cursor, self.full = item.page.cursor, item.page.full
            stream_report.pages += 1
            stream_report.applied.add(stats)
            stream_report.rejected += rejected
            stream_report.deleted += deleted
            for refusal in item.refused:
                report.problems.append(
                    Problem(work.live.name, work.stream.name, refusal, item.page.ref)
                )
            if rejected:
                report.problems.append(
                    Problem(
                        work.live.name,
                        work.stream.name,
                        f"{rejected} item(s) rejected to dead letters",
                        item.page.ref,
                    )
                )
            if self.progress is not None:
                self.progress.page_done(
                    work.live.name, work.stream.name, len(item.page.items), item.page.total
                )


WRITE_AHEAD = 3
"""Pages queued to the writer process before the oldest one's result is awaited: the writer
never waits for the event loop to be scheduled between two pages."""


@define
class PageApplier:
    """Writes one pass's pages in order: in the store's worker thread or, once the pass is
    long and the writer process is up, there. The writer takes pages one at a time in the
    order they were queued, up to :data:`WRITE_AHEAD` ahead; it refuses the pass's later pages
    once one failed, and an in-process page is only written when none is queued there, so
    the order and the one transaction per page hold across the handover."""

    store: Store
    work: PageWork
    pages: int = 0
    total: int | None = None
    queued: deque[tuple[MappedPage, asyncio.Future[Written]]] = field(factory=deque)

    async def apply(self, mapped: MappedPage, usage: dict[str, Any]) -> list[_Applied]:
        """Apply a page (or queue it); returns the pages applied meanwhile, in order."""
        self.pages += 1
        if self.total is None:
            self.total = mapped.page.total
        writer, policy = self.work.writer, self.work.write_policy
        if writer is not None and await self._writer_ready(writer, policy):
            future = writer.submit(self.work.target(), mapped, usage, self.store.fence)
            self.queued.append((mapped, future))
            applied: list[_Applied] = []
            while self.queued and (len(self.queued) > WRITE_AHEAD or self.queued[0][1].done()):
                await self._settle_oldest(applied)
            return applied
        applied = await self.drain()
        try:
            stats, rejected, deleted = await self.store.run(
                apply_page, self.store, self.work, mapped, usage
            )
        except Exception as exc:
            raise PageFailed(mapped, exc, applied) from exc
        return [*applied, (mapped, stats, rejected, deleted)]

    async def drain(self) -> list[_Applied]:
        """Wait for every queued page; returns them applied, in order."""
        applied: list[_Applied] = []
        while self.queued:
            await self._settle_oldest(applied)
        return applied

    async def _settle_oldest(self, applied: list[_Applied]) -> None:
        mapped, future = self.queued.popleft()
        try:
            with anyio.CancelScope(shield=True):  # a page being written ends, as in-process
                stats, rejected, deleted, mapped.refused = await future
        except Exception as exc:
            for _, later in self.queued:  # refused by the writer: nothing to report twice
                later.add_done_callback(_seen)
            self.queued.clear()
            raise PageFailed(mapped, exc, applied) from exc
        applied.append((mapped, stats, rejected, deleted))

    async def _writer_ready(self, writer: PageWriter, policy: MapPolicy) -> bool:
        if writer.unavailable is not None or not policy.wants_pool(self.pages, self.total):
            return False
        writer.warm()
        if policy.wait and not writer.ready:
            await writer.wait_ready()
        return writer.ready


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _apply_failure(store: Store, work: PageWork, exc: Exception) -> str:
    """One line for a page that could not be applied (its transaction rolled back)."""
    where = f"{work.live.name}/{work.stream.name}"
    if isinstance(exc, WriteFailed):
        logger.debug("%s: writing a page failed: %s", where, exc.detail or exc)
        return str(exc)
    if isinstance(exc, sqlite3.Error):
        logger.debug("%s: applying a page failed", where, exc_info=True)
        return failures.describe(store.path, exc)
    logger.exception("%s: applying a page failed", where)
    return f"internal error applying a page: {type(exc).__name__}: {exc}"


async def _produce(
    work: PageWork, mapper: PageMapper, cursor: Any, send: MemoryObjectSendStream[_Item]
) -> None:
    """Fetch and map pages; the page being written meanwhile waits in the worker thread."""
    async with send:
        try:
            try:
                async for page in work.live.platform.fetch(work.live.ctx, work.stream, cursor):
                    await send.send(await mapper.map(page))
            except (SalyncError, QuotaExhausted) as exc:
                await send.send(("error", exc))
            else:
                await send.send(("done", None))
        except anyio.BrokenResourceError:
            return  # the consumer stopped (a page failed to apply) and reports why


async def _record_end(
    store: Store, exc: BaseException | None, work: PageWork, report: RunReport
) -> None:
    if exc is None:
        return
    if isinstance(exc, QuotaExhausted):
        report.paused_until = exc.resume_at.isoformat()
        return
    page = exc.url if isinstance(exc, TransportError) else ""
    fatal = isinstance(exc, Fatal | UnreachableError)  # the other streams share the host
    report.problems.append(Problem(work.live.name, work.stream.name, str(exc), page, fatal))
    if isinstance(exc, BadResponseError):
        await store.run(_dead_letter_body, store, work, page, exc)


def _dead_letter_body(store: Store, work: PageWork, page: str, exc: BadResponseError) -> None:
    """A page that never parsed is kept whole, so nothing it held is silently lost."""
    with store.write() as txn:
        add_dead_letters(
            txn, work.live.name, work.stream.name, page, [(exc.body, str(exc))], work.run_id
        )
