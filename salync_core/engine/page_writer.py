"""Resolve and write a long pass's pages in a second process, so the event loop (fetch, parse,
map) and the page transactions (resolve, SQL) each get a core of their own.

Both halves of a sync are Python: in one process they take turns under the GIL, however the
work is split between threads. Mapping in worker processes does not help on its own: a page's
records must come back to the process that resolves them, and unpickling them costs about what
mapping them did. Sending the *mapped* records one way, to the process that resolves and
writes them, costs one pickle per page and leaves both sides busy.

:class:`PageWriter` is that process for one mirror: it opens its own connection to the mirror
file, rebuilds the resolver from the configuration's policies and the installed plugins (a
policy or ``decide_field`` hook registered in-process cannot travel: then pages are written
in-process), and applies each page with the same :func:`~salync_core.engine.pipeline.write_page`
the in-process path uses, one transaction per page, in the order the pages were fetched. It
checks the run's writer lease (fence) in each transaction like the engine's own connection.
The engine still holds the mirror's lock; the writer is its agent and stops with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import sqlite3
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import evolve, frozen

from salync_core.engine.mapper_pool import RecordRow, _exit_with, records_from
from salync_core.engine.processes import discard_pool, stop_pool
from salync_core.errors import SalyncError
from salync_core.platform import Page

if TYPE_CHECKING:
    from salync_core.conflicts.resolver import Resolver
    from salync_core.engine.pipeline import MappedPage, PageTarget
    from salync_core.store.mirror import ApplyStats

logger = logging.getLogger("salync.engine")


@frozen
class ResolverSpec:
    """What a writer process needs to rebuild the engine's resolver."""

    policies: Mapping[str, Any]
    connections: tuple[str, ...]
    platform_of: Mapping[str, str]
    """Each connection's plugin (the ``decide_field`` hook is told the platform)."""
    plugins: tuple[str, ...]
    """The plugins registered in the engine's process: the writer must have the same ones."""


def resolver_spec(policies: Mapping[str, Any], platform_of: Mapping[str, str]) -> ResolverSpec:
    from salync_core import plugins

    plugins.load_plugins()
    return ResolverSpec(
        policies=policies,
        connections=tuple(platform_of),
        platform_of=platform_of,
        plugins=tuple(sorted(name for name, _ in plugins.pm.list_name_plugin())),
    )


Written = tuple["ApplyStats", int, int, list[str]]
"""(stats, rejected, deleted, refusals) of one page."""


class WriteFailed(SalyncError):
    """A page could not be written in the writer process (its transaction rolled back); the
    message says why in one line, ``detail`` holds the traceback of a bug."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return WriteFailed, (str(self), self.detail)


class PageWriter:
    """One process writing one mirror's pages; start it with :meth:`warm`, stop it with
    :meth:`aclose` (the engine does both)."""

    def __init__(self, mirror: Path, spec: ResolverSpec) -> None:
        self.mirror = str(mirror)
        self.spec = spec
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._ready: asyncio.Future[Any] | None = None
        self.unavailable: str | None = None
        """Why pages cannot be written here (then they are written in-process)."""
        self._failed: set[tuple[int, str]] = set()
        """(run, stream) passes with a page that failed: the rest of the pass is refused."""
        self.pages = 0
        self.cpu = 0.0
        self.peak_rss_mb = 0.0
        """The writer process's peak resident memory, as it last reported it."""
        """CPU seconds the writer process spent, as it last reported them."""

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_writer_init,
                initargs=(os.getpid(),),
            )
        return self._executor

    def _alive(self) -> bool:
        processes = getattr(self._executor, "_processes", None) or {}
        broken = getattr(self._executor, "_broken", False)
        return not broken and all(p.is_alive() for p in processes.values())

    def pids(self) -> list[int]:
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None and p.is_alive()]

    def warm(self) -> None:
        """Start the process and open the mirror there, without waiting. A process that died
        since (killed between two passes, out of memory) is replaced, so only a pass whose
        own pages it held fails."""
        if self._ready is not None and self._executor is not None and not self._alive():
            self._discard()
        if self._ready is not None or self.unavailable is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            try:
                ready = loop.run_in_executor(self._pool(), _prepare, self.mirror, self.spec)
            except concurrent.futures.process.BrokenProcessPool:  # it died between two passes
                self._discard()
                ready = loop.run_in_executor(self._pool(), _prepare, self.mirror, self.spec)
        except Exception as exc:  # no process can start here (a daemonic Dask worker)
            self.unavailable = f"cannot start a writer process: {exc}"
            logger.debug("pages are written in-process: %s", self.unavailable)
            return
        self._ready = ready
        self._ready.add_done_callback(self._prepared)

    def _prepared(self, done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            self._ready = None
            return
        exc = done.exception()
        if exc is not None:
            self.unavailable = str(exc)
            logger.debug("pages are written in-process: %s", exc)

    @property
    def ready(self) -> bool:
        ready = self._ready
        return (
            ready is not None and ready.done() and not ready.cancelled() and not ready.exception()
        )

    async def wait_ready(self) -> bool:
        self.warm()
        if self._ready is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._ready)
        return self.ready

    def submit(
        self, target: PageTarget, mapped: MappedPage, usage: dict[str, Any], fence: Any
    ) -> asyncio.Future[Written]:
        """Queue one page; pages are written one at a time in the order they were queued. A
        page that fails makes the writer refuse the rest of the pass (nothing after a page
        that rolled back may commit)."""
        page = evolve(mapped.page, items=())  # the raw items stay here: only records travel
        rows = [
            (r.entity, r.key, r.fields, r.external_id, r.source_ts, r.deleted)
            for r in mapped.records
        ]
        job = (self.mirror, fence, self.spec, target, page, rows, mapped.rejects, usage)
        return asyncio.ensure_future(self._write((target.run_id, target.stream), job))

    async def _write(self, key: tuple[int, str], job: tuple[Any, ...]) -> Written:
        if key in self._failed:  # a fresh process knows nothing of the page that failed
            raise WriteFailed("not written: an earlier page of this pass failed")
        loop = asyncio.get_running_loop()
        try:
            written, (cpu, rss) = await loop.run_in_executor(self._pool(), _write_job, job)
        except concurrent.futures.process.BrokenProcessPool as exc:
            self._failed.add(key)
            self._discard()
            raise WriteFailed(f"the writer process died: {exc}") from None
        except BaseException:
            self._failed.add(key)
            raise
        self.pages += 1
        self.cpu, self.peak_rss_mb = cpu, rss
        return written

    def _discard(self) -> None:
        """Forget a pool whose process died (the next pass starts a fresh one)."""
        executor, self._executor, self._ready = self._executor, None, None
        if executor is not None:
            discard_pool(executor)

    async def aclose(self) -> None:
        executor, self._executor, self._ready = self._executor, None, None
        if executor is not None:
            await stop_pool(executor)


# the writer process ---------------------------------------------------------------------------

_state: dict[str, Any] = {}
_failed: set[tuple[int, str]] = set()
"""(run, stream) passes whose page failed here: their later pages are refused."""


def _writer_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides what Ctrl-C means
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _prepare(mirror: str, spec: ResolverSpec) -> None:
    _opened(mirror, spec)


def _opened(mirror: str, spec: ResolverSpec) -> tuple[Any, Resolver]:
    from salync_core import plugins
    from salync_core.conflicts.policy_set import PolicySet
    from salync_core.conflicts.resolver import Resolver
    from salync_core.store import Store

    if _state.get("key") != (mirror, spec):
        plugins.load_plugins()
        mine = tuple(sorted(name for name, _ in plugins.pm.list_name_plugin()))
        if mine != spec.plugins:
            missing = sorted(set(spec.plugins) - set(mine))
            raise SalyncError(f"plugins registered in-process only: {', '.join(missing)}")
        policies = PolicySet.from_config(
            spec.policies, spec.connections, plugins.policy_factories()
        )
        if "store" in _state:
            _state["store"].close()
        _state.update(
            key=(mirror, spec),
            store=Store(mirror, create=False),
            resolver=Resolver(policies, plugins.decide_hook(spec.platform_of)),
        )
    return _state["store"], _state["resolver"]


def _write_page(
    job: tuple[str, Any, ResolverSpec, PageTarget, Page, Sequence[RecordRow], Any, Any],
) -> tuple[Written, tuple[float, float]]:
    from salync_core.engine.pipeline import MappedPage, write_page

    mirror, fence, spec, target, page, rows, rejects, usage = job
    if (target.run_id, target.stream) in _failed:
        raise WriteFailed("not written: an earlier page of this pass failed")
    try:
        store, resolver = _opened(mirror, spec)
        store.fence = fence
        mapped = MappedPage(page, records_from(rows), rejects)
        stats, rejected, deleted = write_page(store, target, resolver, mapped, usage)
    except BaseException:
        _failed.add((target.run_id, target.stream))
        raise
    usage_now = resource.getrusage(resource.RUSAGE_SELF)
    return (stats, rejected, deleted, mapped.refused), (
        time.process_time(),
        usage_now.ru_maxrss / 1024,
    )


def _write_job(
    job: tuple[str, Any, ResolverSpec, PageTarget, Page, Sequence[RecordRow], Any, Any],
) -> tuple[Written, tuple[float, float]]:
    from salync_core.store import failures

    try:
        return _write_page(job)
    except WriteFailed:
        raise
    except sqlite3.Error as exc:
        raise WriteFailed(failures.describe(Path(job[0]), exc)) from None
    except SalyncError as exc:  # a fenced run: the lease was taken over
        raise WriteFailed(str(exc)) from None
    except Exception as exc:
        detail = "".join(traceback.format_exception(exc))
        message = f"internal error applying a page: {type(exc).__name__}: {exc}"
        raise WriteFailed(message, detail) from None
