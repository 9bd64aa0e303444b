"""Map inbound pages in worker processes, so mapping runs on another core than the event loop
and the store's writer thread.

A :class:`MapperPool` is started once (by an engine for itself, or by a host or a fleet for many
engines) and maps pages for any number of connections: each job carries a :class:`MappingSpec`
(the plugin's name and the connection's options without secrets), and each worker rebuilds the
platform and a context without an HTTP client once per spec, then maps every page it is given
with the same :func:`~salync_core.engine.mapping.map_items` the in-process path uses, so the
records and rejects are the same.

Shipping costs: the page's items are pickled to the worker and its records pickled back (as
plain tuples, not attrs objects, which pickle several times slower). That costs the event loop
roughly half of what mapping the page itself would, so a pool pays where mapping is heavy, on
long passes, and where the event loop is the bottleneck (a fleet); small passes map in-process
(see :class:`MapPolicy`).

Workers ignore SIGINT (the parent turns Ctrl-C into cancellation and shuts the pool down) and
exit on their own when the parent process is gone, so no worker outlives its parent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import hashlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import orjson
from attrs import define, field, frozen

from salync_core.engine.mapping import map_items
from salync_core.engine.processes import discard_pool, stop_pool
from salync_core.errors import SalyncError
from salync_core.platform import ConnectionContext, Platform, Record, Stream
from salync_core.secrets import Secret

if TYPE_CHECKING:
    from salync_core.engine.connections import LiveConnection

logger = logging.getLogger("salync.engine")
T = TypeVar("T")

MapProcesses = int | Literal["auto"]
"""``[sync] map_processes``: ``0`` maps in the event loop, ``N`` in N worker processes,
``"auto"`` in one fewer than the machine's cores (none on a one-core machine), for long
passes only."""

AUTO_MIN_ITEMS = 30_000
"""Under ``auto``, a pass whose first page announces fewer items than this stays in-process:
starting a worker (importing the engine and the plugins, about a second of the other core)
costs more than it saves on a shorter pass (measured: 10k heavy products 3.7 s in-process,
4.9-5.6 s handing over to a writer; 100k 42 s in-process, 31 s with the writer). A pass that
does not announce a total is handed over after :data:`AUTO_MIN_PAGES`."""
AUTO_MIN_PAGES = 300


class MapperUnavailable(SalyncError):
    """A worker cannot map this connection's items (its platform was registered in-process,
    not installed as a plugin): the engine maps them in-process instead."""


@frozen
class MappingSpec:
    """What a worker needs to map one connection's items: no secret, no HTTP session."""

    plugin: str
    platform_type: str
    """``module:qualname`` of the platform serving the connection, checked by the worker."""
    name: str
    base_url: str
    options: Mapping[str, Any]
    locale: str
    directory: str
    key: str = field(eq=False)
    """A digest of the rest: the worker's cache key."""


def spec_for(live: LiveConnection) -> MappingSpec | None:
    """The spec of a connection, or ``None`` when its options cannot travel to a worker."""
    platform = live.platform
    secret_names = {n for n, option in platform.declared_options().items() if option.secret}
    options = {
        name: value
        for name, value in live.ctx.options.items()
        if name not in secret_names and not isinstance(value, Secret)
    }
    kind = type(platform)
    parts: dict[str, Any] = {
        "plugin": live.config.plugin,
        "platform_type": f"{kind.__module__}:{kind.__qualname__}",
        "name": live.ctx.name,
        "base_url": live.ctx.base_url,
        "options": options,
        "locale": live.ctx.locale,
        "directory": str(live.ctx.directory),
    }
    try:
        digest = hashlib.sha1(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except TypeError:  # an option value JSON cannot carry (a plugin's own object)
        return None
    return MappingSpec(**parts, key=digest)


RecordRow = tuple[str, str, dict[str, Any], str | None, str | None, bool]
"""A :class:`Record` as it travels back from a worker."""
MapResult = tuple[list[RecordRow], list[tuple[Any, str]]]


@define
class MapPolicy:
    """When a stream's pages go to the pool: the ``[sync] map_processes`` setting applied."""

    processes: int
    """Workers in the pool (0: never)."""
    min_items: int = AUTO_MIN_ITEMS
    min_pages: int = AUTO_MIN_PAGES
    wait: bool = False
    """Wait for the workers at a pass's first page (a number set explicitly) rather than map
    in-process until they are up (``auto``: a small pass never waits for a process)."""

    @classmethod
    def from_setting(cls, setting: MapProcesses) -> MapPolicy:
        if setting == "auto":
            return cls(max(0, min((os.cpu_count() or 1) - 1, 4)))
        return cls(int(setting), min_items=0, min_pages=0, wait=True)

    def wants_pool(self, pages: int, total: int | None) -> bool:
        """Whether a pass, ``pages`` pages in, is long enough to hand over to the pool."""
        if self.processes <= 0:
            return False
        if total is not None:
            return total >= self.min_items
        return pages >= self.min_pages


class MapperPool:
    """Worker processes mapping inbound pages; share one among many engines.

    ::

        async with MapperPool(2) as pool:
            async with Engine.open("a/salync.toml", mapper_pool=pool) as a, ...:
                ...

    Start-up is lazy: no process starts until a long pass asks for one (:meth:`warm`).
    """

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a mapper pool needs at least one process")
        self.processes = processes
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._unavailable: dict[str, str] = {}
        self._guard = threading.Lock()
        self.pages = 0
        """Pages mapped by workers so far (for tests and benchmarks)."""
        self._worker_cpu: dict[int, float] = {}

    async def __aenter__(self) -> MapperPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def worker_cpu(self) -> float:
        """CPU seconds the workers spent so far (as they last reported it)."""
        return sum(self._worker_cpu.values())

    def pids(self) -> list[int]:
        """The worker processes alive now."""
        executor = self._executor
        if executor is None:
            return []
        processes = getattr(executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None and p.is_alive()]

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._guard:
            if self._executor is None:
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_init,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def _run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` in a worker; a pool whose worker died is replaced first."""
        loop = asyncio.get_running_loop()
        try:
            return loop.run_in_executor(self._pool(), fn, *args)
        except concurrent.futures.process.BrokenProcessPool:
            self._discard()
            return loop.run_in_executor(self._pool(), fn, *args)

    def _discard(self) -> None:
        """Forget a pool one of whose workers died; its other workers are killed."""
        with self._guard:
            executor, self._executor = self._executor, None
            self._ready.clear()
        if executor is not None:
            discard_pool(executor)

    def unavailable(self, spec: MappingSpec) -> str | None:
        """Why workers cannot map this spec's items (``None``: they can, or nobody tried)."""
        return self._unavailable.get(spec.key)

    def warm(self, spec: MappingSpec) -> None:
        """Start the workers and build the spec's platform there, without waiting."""
        if spec.key in self._ready or spec.key in self._unavailable:
            return
        try:
            futures = [self._run(_prepare, spec) for _ in range(self.processes)]
        except Exception as exc:  # no process can start here (a daemonic Dask worker)
            self._unavailable[spec.key] = f"cannot start a mapping process: {exc}"
            return
        ready = asyncio.ensure_future(asyncio.gather(*futures))
        self._ready[spec.key] = ready  # type: ignore[assignment]
        ready.add_done_callback(lambda done: self._prepared(spec, done))

    def _prepared(self, spec: MappingSpec, done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            self._ready.pop(spec.key, None)
            return
        exc = done.exception()
        if exc is None:
            return
        self._ready.pop(spec.key, None)
        if isinstance(exc, concurrent.futures.process.BrokenProcessPool):
            return  # a worker died: the next page starts a fresh one
        self._unavailable[spec.key] = str(exc)
        if not isinstance(exc, MapperUnavailable):
            logger.warning("%s: mapping workers failed to start: %s", spec.name, exc)

    async def wait_ready(self, spec: MappingSpec) -> bool:
        """Start the workers for ``spec`` and wait until they can map its items; ``False``
        when they cannot (see :meth:`unavailable`)."""
        self.warm(spec)
        ready = self._ready.get(spec.key)
        if ready is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(ready)
        return self.ready(spec)

    def ready(self, spec: MappingSpec) -> bool:
        """Whether workers hold the spec's platform, so a page sent now is mapped at once."""
        ready = self._ready.get(spec.key)
        return ready is not None and ready.done() and not ready.cancelled()

    def submit(
        self, spec: MappingSpec, stream: Stream, items: Sequence[Any]
    ) -> asyncio.Future[MapResult]:
        """Map ``items`` in a worker; the future's result is ``(records, rejects)``."""
        return asyncio.ensure_future(self._map(spec, stream, list(items)))

    async def _map(self, spec: MappingSpec, stream: Stream, items: list[Any]) -> MapResult:
        try:
            result, pid, cpu = await self._run(_map_job, spec, stream, items)
        except concurrent.futures.process.BrokenProcessPool as exc:
            self._discard()  # the next page starts a fresh pool
            raise SalyncError(f"a mapping worker process died: {exc}") from None
        self._worker_cpu[pid] = cpu
        self.pages += 1
        return result

    async def aclose(self) -> None:
        """Stop the workers (waiting for a page being mapped); safe to call twice."""
        with self._guard:
            executor, self._executor = self._executor, None
        self._ready.clear()
        if executor is not None:
            await stop_pool(executor)


PAYS_FACTOR = 1.5
"""Under ``auto``, mapping must cost the event loop this many times what shipping would."""


PROBE_PAGES = 5
"""Pages measured before ``auto`` decides (one page's few milliseconds are too noisy)."""


def shipping_seconds(items: Sequence[Any], records: Sequence[Record]) -> float:
    """What mapping a page in a worker would cost the event loop instead of mapping it:
    pickling the items out and unpickling the records back (CPU of this thread)."""
    rows = pickle.dumps(_rows(records), pickle.HIGHEST_PROTOCOL)  # the worker's part
    started = time.thread_time()
    pickle.dumps(list(items), pickle.HIGHEST_PROTOCOL)
    records_from(pickle.loads(rows))
    return time.thread_time() - started


def pays(map_seconds: float, shipping: float) -> bool:
    """Whether mapping in workers saves the event loop time (both summed over the probe)."""
    logger.debug("mapping %.4f s, shipping %.4f s over the probe", map_seconds, shipping)
    return map_seconds > PAYS_FACTOR * shipping


def _rows(records: Sequence[Record]) -> list[RecordRow]:
    return [(r.entity, r.key, r.fields, r.external_id, r.source_ts, r.deleted) for r in records]


def records_from(rows: Sequence[RecordRow]) -> list[Record]:
    return [Record(*row) for row in rows]


# the worker side --------------------------------------------------------------------------

_CACHE_SIZE = 64
_prepared: OrderedDict[str, tuple[Platform, ConnectionContext]] = OrderedDict()


def _worker_init(parent: int) -> None:
    """Ctrl-C reaches the whole process group: the parent decides what it means, not us. And
    a worker whose parent died (``kill -9``) exits instead of waiting for work forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while True:
        time.sleep(0.5)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # a stranger reused the pid: the parent is gone
            os._exit(0)


class _NoHttp:
    """The worker's stand-in for ``ctx.http``: mapping is pure, it sends no request."""

    def __getattr__(self, name: str) -> NoReturn:
        raise RuntimeError(
            "a platform's map_inbound used ctx.http while mapping in a worker process; "
            "mapping must not send requests (set [sync] map_processes = 0 to map in-process)"
        )


def _context(spec: MappingSpec) -> tuple[Platform, ConnectionContext]:
    found = _prepared.get(spec.key)
    if found is not None:
        _prepared.move_to_end(spec.key)
        return found
    from salync_core import plugins

    try:
        platform = plugins.platform(spec.plugin).for_connection(spec.options)
    except SalyncError as exc:
        raise MapperUnavailable(f"{spec.name}: {exc}") from None
    kind = type(platform)
    if f"{kind.__module__}:{kind.__qualname__}" != spec.platform_type:
        raise MapperUnavailable(
            f"{spec.name}: the worker's {spec.plugin!r} platform is not the engine's "
            f"({spec.platform_type})"
        )
    ctx = ConnectionContext(
        name=spec.name,
        base_url=spec.base_url,
        options=spec.options,
        http=_NoHttp(),  # type: ignore[arg-type]
        locale=spec.locale,
        directory=Path(spec.directory),
    )
    _prepared[spec.key] = platform, ctx
    if len(_prepared) > _CACHE_SIZE:
        _prepared.popitem(last=False)
    return platform, ctx


def _prepare(spec: MappingSpec) -> None:
    _context(spec)


def _map_job(spec: MappingSpec, stream: Stream, items: list[Any]) -> tuple[MapResult, int, float]:
    platform, ctx = _context(spec)
    records, rejects = map_items(platform, ctx, stream, items)
    rows = [(r.entity, r.key, r.fields, r.external_id, r.source_ts, r.deleted) for r in records]
    return (rows, rejects), os.getpid(), time.process_time()
