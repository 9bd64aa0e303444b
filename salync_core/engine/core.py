"""The engine: what a host app embeds and what the CLI wraps.

::

    async with Engine.open("salync.toml") as engine:
        reports = await engine.sync()
        await engine.upsert("product", "SKU-1", {"title": {"en": "Mug"}})
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from salync_core import plugins
from salync_core.config import Config, load_config
from salync_core.conflicts.policies import MISSING
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver
from salync_core.converters import from_fields
from salync_core.engine import conflicts as conflict_ops
from salync_core.engine import local
from salync_core.engine.connections import (
    LiveConnection,
    check_secret_names,
    open_connection,
    today,
)
from salync_core.engine.mapper_pool import MapperPool, MapPolicy
from salync_core.engine.page_writer import PageWriter, resolver_spec
from salync_core.engine.pipeline import PageWork, Progress, sync_stream, usage_rows
from salync_core.engine.push import push_connection
from salync_core.engine.reconcile import reconcile_stream
from salync_core.engine.report import Problem, RunReport
from salync_core.engine.sweep import DeletionGuard
from salync_core.engine.writers import Writers
from salync_core.errors import Fatal, Fenced, SalyncError
from salync_core.platform import Stream
from salync_core.secrets import Secret, SecretBox
from salync_core.store import Store, credentials, failures
from salync_core.store.credentials import StoredTokens
from salync_core.store.operations import (
    add_usage,
    finish_run,
    get_cursor,
    requests_on,
    set_cursor,
    start_run,
)
from salync_core.store.reading import get_fields, iter_records
from salync_core.webhooks.applier import drain_beside_mirror

logger = logging.getLogger("salync.engine")


class Engine:
    """A configuration, its mirror, and the operations on both."""

    def __init__(
        self, config: Config, store: Store, *, mapper_pool: MapperPool | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.map_policy = MapPolicy.from_setting(config.map_processes)
        self._shared_pool = mapper_pool
        """A pool the host shares among engines (a fleet): used, never closed, here."""
        self._own_pool: MapperPool | None = None
        setting = config.write_process
        self.write_policy = MapPolicy.from_setting(setting if setting == "auto" else int(setting))
        self._writer: PageWriter | None = None
        self.policies = PolicySet.from_config(
            config.policies, config.connections, plugins.policy_factories()
        )
        self.resolver = Resolver(
            self.policies,
            plugins.decide_hook({n: c.plugin for n, c in config.connections.items()}),
        )
        self._box: SecretBox | None = None
        self._live: dict[str, LiveConnection] = {}
        self.writers = Writers(store.path)
        self.lock_wait: float | None = 300.0
        """Seconds a sync or push waits for another one on the same mirror before raising
        :class:`MirrorBusy` (``None``: as long as it takes; ``0``: not at all)."""

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        config: Config | str | Path = "salync.toml",
        *,
        mapper_pool: MapperPool | None = None,
    ) -> AsyncIterator[Engine]:
        """Open the configuration and its mirror; closes the mirror on exit. A host running
        many engines passes one ``mapper_pool`` to all of them (see :class:`MapperPool`)."""
        loaded = config if isinstance(config, Config) else load_config(config)
        store = Store(loaded.store_path)
        engine = None
        try:
            engine = cls(loaded, store, mapper_pool=mapper_pool)
            yield engine
        finally:
            if engine is not None:
                with anyio.CancelScope(shield=True):  # cancelled or not, close the clients
                    await engine.aclose()
            store.close()

    async def aclose(self) -> None:
        """Close every connection's HTTP client (``Engine.open`` does it on exit)."""
        live, self._live = self._live, {}
        for connection in live.values():
            await connection.close()
        pool, self._own_pool = self._own_pool, None
        if pool is not None:
            await pool.aclose()
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.aclose()

    @property
    def mapper_pool(self) -> MapperPool | None:
        """The worker processes that map long passes: the shared pool, else the engine's
        own (created on first use, no process started until a pass asks for one)."""
        if self._shared_pool is not None:
            return self._shared_pool
        if self._own_pool is None and self.map_policy.processes > 0:
            self._own_pool = MapperPool(self.map_policy.processes)
        return self._own_pool

    @property
    def page_writer(self) -> PageWriter | None:
        """The process that writes long passes' pages (created on first use, started only
        when a pass asks for it), or ``None`` when ``[sync] write_process`` is off."""
        if self._writer is None and self.write_policy.processes > 0:
            platform_of = {name: c.plugin for name, c in self.config.connections.items()}
            spec = resolver_spec(self.config.policies, platform_of)
            self._writer = PageWriter(self.store.path, spec)
        return self._writer

    # sync -------------------------------------------------------------------------------

    async def sync(
        self,
        connections: str | Sequence[str] | None = None,
        streams: Sequence[str] | None = None,
        *,
        full: bool = False,
        reconcile: bool = False,
        allow_mass_delete: bool = False,
        progress: Progress | None = None,
        push: bool = True,
    ) -> list[RunReport]:
        """Sync connections (all by default): fetch, map, resolve and apply page by page from
        each; then (unless ``push=False``) push to each connection that takes pushes what it
        lacks."""
        names = self._names(connections)
        async with self.writers.mirror_lock(self.lock_wait):
            return await self._sync(
                names, streams, full, reconcile, allow_mass_delete, progress, push
            )

    async def _sync(
        self,
        names: list[str],
        streams: Sequence[str] | None,
        full: bool,
        reconcile: bool,
        allow_mass_delete: bool,
        progress: Progress | None,
        push: bool = True,
    ) -> list[RunReport]:
        await drain_beside_mirror(self, names)  # webhook events received since the last run
        reports = [
            await self._run(
                name,
                "sync",
                streams,
                full=full,
                reconcile=reconcile,
                allow_mass_delete=allow_mass_delete,
                progress=progress,
            )
            for name in names
        ]
        return reports + (await self.push(names) if push else [])

    async def push(self, connections: str | Sequence[str] | None = None) -> list[RunReport]:
        """Deliver the changes each connection lacks (those with ``push`` configured).

        Pushes take turns: one per mirror across processes, one per connection here; a
        push that waited finds only what is still left to send."""
        names = [n for n in self._names(connections) if self.config.connection(n).push]
        async with self.writers.mirror_lock(self.lock_wait):
            return [await self._run(name, "push", None, fetch=False, push=True) for name in names]

    async def reconcile(
        self,
        connections: str | Sequence[str] | None = None,
        streams: Sequence[str] | None = None,
        *,
        allow_mass_delete: bool = False,
    ) -> list[RunReport]:
        """Scan keys on platforms that never report deletions and tombstone what disappeared."""
        async with self.writers.mirror_lock(self.lock_wait):
            return await self._reconcile(self._names(connections), streams, allow_mass_delete)

    async def _reconcile(
        self, names: list[str], streams: Sequence[str] | None, allow_mass_delete: bool
    ) -> list[RunReport]:
        return [
            await self._run(
                name,
                "reconcile",
                streams,
                reconcile=True,
                fetch=False,
                allow_mass_delete=allow_mass_delete,
            )
            for name in names
        ]

    def _names(self, connections: str | Sequence[str] | None) -> list[str]:
        if connections is None:
            return list(self.config.connections)
        names = [connections] if isinstance(connections, str) else list(connections)
        for name in names:
            self.config.connection(name)
        return names

    async def _run(
        self,
        name: str,
        kind: str,
        streams: Sequence[str] | None,
        *,
        full: bool = False,
        reconcile: bool = False,
        fetch: bool = True,
        push: bool = False,
        allow_mass_delete: bool = False,
        progress: Progress | None = None,
    ) -> RunReport:
        report = RunReport(name, kind)
        started = time.monotonic()
        run_id = await self.store.run(self._start, name, kind)
        live: LiveConnection | None = None
        try:
            live = await self._connect(name)
            chosen = self._streams(live, streams) if fetch or reconcile else []
            if fetch:
                guard = DeletionGuard(
                    self.config.mass_delete_threshold,
                    self.config.mass_delete_min,
                    allow_mass_delete,
                )
                await self._fetch_streams(live, chosen, report, run_id, full, progress, guard)
            if reconcile and report.ok and not report.paused_until:
                listed: set[str] = set()  # entities an earlier stream's scan listed whole
                for stream in chosen:
                    if stream.entity in listed:
                        report.stream(stream.name).skipped = "keys listed with another stream"
                    elif not stream.reports_deletions:
                        work = self._work(live, stream, run_id)
                        listed |= await reconcile_stream(
                            self.store,
                            work,
                            report,
                            self.config.mass_delete_threshold,
                            allow_mass_delete,
                            self.config.mass_delete_min,
                        )
            if push:
                async with self.writers.connection(name):
                    await push_connection(self.store, live, self.policies, report)
        except SalyncError as exc:
            report.problems.append(Problem(name, "", str(exc), fatal=isinstance(exc, Fatal)))
        except sqlite3.Error as exc:  # the mirror itself failed: say what to do
            logger.debug("%s: %s run failed", name, kind, exc_info=True)
            message = failures.describe(self.store.path, exc)
            report.problems.append(Problem(name, "", message, fatal=True))
        except anyio.get_cancelled_exc_class():
            report.cancelled = True  # Ctrl-C, SIGTERM or a host's cancel scope
            raise
        except Exception as exc:  # a bug: report it plainly, keep the traceback in the log
            logger.exception("%s: %s run failed", name, kind)
            message = f"internal error: {type(exc).__name__}: {exc}"
            report.problems.append(Problem(name, "", message, fatal=True))
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled run is still recorded
                await self._close_run(run_id, report, live, started)
        return report

    async def _close_run(
        self, run_id: int, report: RunReport, live: LiveConnection | None, started: float
    ) -> None:
        report.seconds = time.monotonic() - started
        error = "; ".join(str(p) for p in report.problems) or None
        try:
            if live is not None:
                report.requests += await self._flush_usage(live)
            await self.store.run(self._finish, run_id, report, error)
        except (sqlite3.Error, Fenced):  # already reported, or shown as interrupted
            logger.debug("%s: recording the run failed", report.connection, exc_info=True)

    def _start(self, name: str, kind: str) -> int:
        with self.store.write() as txn:  # a write transaction, so a writer lease fences it
            return start_run(txn.conn, name, kind)

    def _finish(self, run_id: int, report: RunReport, error: str | None) -> None:
        with self.store.write() as txn:
            finish_run(txn.conn, run_id, report.status, report.as_json(), error)

    async def _flush_usage(self, live: LiveConnection) -> int:
        """Write request counters not yet committed with a page; returns their requests."""
        rows = usage_rows(live)
        if rows:

            def write() -> None:
                with self.store.write() as txn:
                    add_usage(txn, live.name, rows)

            await self.store.run(write)
        return sum(day["requests"] for day in rows.values())

    async def _connect(self, name: str) -> LiveConnection:
        """The connection's platform and HTTP client, opened once per engine so the client's
        pacing remembers the requests of earlier runs (a fetch then a push, sync after sync)."""
        async with self.writers.opening:  # two tasks must not each open (and leak) one
            if name not in self._live:
                self._live[name] = await self._open_connection(name)
        return self._live[name]

    async def _open_connection(self, name: str) -> LiveConnection:
        config = self.config.connection(name)
        stored = await self.store.run(self._stored_secrets, name)
        used = await self.store.run(requests_on, self.store.conn, name, today())

        def token_store() -> StoredTokens:
            return StoredTokens(self.store, self.secret_box(), name, config.plugin)

        return open_connection(config, stored, used, token_store)

    def secret_box(self) -> SecretBox:
        """The key that encrypts stored secrets (``SALYNC_SECRET_KEY``, else the key file)."""
        if self._box is None:
            self._box = SecretBox.load(self.config.key_file)
        return self._box

    def _stored_secrets(self, name: str) -> Mapping[str, Secret]:
        if not credentials.stored_names(self.store.conn, name):
            return {}
        return credentials.load_secrets(self.store.conn, self.secret_box(), name)

    async def set_secrets(self, connection: str, values: Mapping[str, Secret | None]) -> None:
        """Store (or, with ``None``, remove) secrets of a connection, encrypted at rest."""
        config = self.config.connection(connection)
        check_secret_names(config, [name for name, value in values.items() if value is not None])
        await self.store.run(
            credentials.save_secrets,
            self.store,
            self.secret_box(),
            connection,
            config.plugin,
            values,
        )

    def secret_names(self, connection: str) -> list[str]:
        """Names of the secrets stored for a connection."""
        return credentials.stored_names(self.store.reader, connection)

    def _streams(self, live: LiveConnection, names: Sequence[str] | None) -> list[Stream]:
        wanted = names or live.config.streams
        if not wanted:
            return list(live.platform.streams)
        known = {s.name for s in live.platform.streams}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SalyncError(
                f"{live.name}: {live.platform.name} has no stream(s) {', '.join(unknown)} "
                f"(streams: {', '.join(sorted(known))})"
            )
        return [s for s in live.platform.streams if s.name in wanted]

    def _work(
        self, live: LiveConnection, stream: Stream, run_id: int, guard: DeletionGuard | None = None
    ) -> PageWork:
        work = PageWork(live, stream, self.resolver, self.policies, run_id)
        work.pool, work.map_policy = self.mapper_pool, self.map_policy
        work.writer, work.write_policy = self.page_writer, self.write_policy
        if guard is not None:
            work.guard = guard
        return work

    async def _fetch_streams(
        self,
        live: LiveConnection,
        streams: Iterable[Stream],
        report: RunReport,
        run_id: int,
        full: bool,
        progress: Progress | None,
        guard: DeletionGuard | None = None,
    ) -> None:
        fresh_passes: dict[str, Any] = {}
        for stream in streams:
            stored = await self.store.run(get_cursor, self.store.conn, live.name, stream.name)
            cursor = None if full else stored
            if cursor is None and stream.covered_by in fresh_passes:
                await self.store.run(
                    self._copy_cursor, live.name, stream.name, fresh_passes[stream.covered_by]
                )
                report.stream(stream.name).skipped = f"read with {stream.covered_by}"
                continue
            if cursor is None and _unfinished(report, stream.covered_by):
                # its own full pass would cost as much again; the next run reads it
                why = f"not read: {stream.covered_by}, which delivers it, did not finish"
                report.stream(stream.name).skipped = why
                continue
            problems = len(report.problems)
            last, completed_full_pass = await sync_stream(
                self.store, self._work(live, stream, run_id, guard), cursor, report, progress
            )
            if completed_full_pass:
                fresh_passes[stream.name] = last
            if report.paused_until or _fatal(report, problems):
                break

    def _copy_cursor(self, connection: str, stream: str, cursor: Any) -> None:
        with self.store.write() as txn:
            set_cursor(txn, connection, stream, cursor)

    # local edits and the change feed ------------------------------------------------

    async def upsert(self, entity: str, key: str, fields: Mapping[str, Any]) -> int | None:
        """Record an edit from the host app (origin ``local``); it flows out on the next push.

        Returns the change's seq, or ``None`` if the mirror already held these values. Raises
        :class:`PolicyError` (nothing applied) if a policy gives a field to another system.
        """
        return await self.store.run(local.upsert, self.store, self.resolver, entity, key, fields)

    async def delete(self, entity: str, key: str) -> bool:
        """Delete a record from the host app; returns whether it was live."""
        return await self.store.run(local.delete, self.store, self.policies, entity, key)

    async def upsert_many(
        self, entity: str, records: Mapping[str, Mapping[str, Any]]
    ) -> local.BatchResult:
        """Record many host-app edits (``{key: fields}``) in one transaction, each exactly as
        :meth:`upsert` would; far faster than one call per record.

        A record that cannot be applied (a value that does not validate, a field a policy
        gives to another system) is not applied and is listed in the result's ``refused``
        with the reason; the rest of the batch is applied all the same (nothing is raised).
        """
        return await self.store.run(
            local.upsert_many, self.store, self.resolver, entity, dict(records)
        )

    async def delete_many(self, entity: str, keys: Iterable[str]) -> int:
        """Delete many records from the host app in one transaction; returns how many were
        live. Raises :class:`PolicyError` (nothing deleted) if local may not delete them."""
        return await self.store.run(
            local.delete_many, self.store, self.policies, entity, list(keys)
        )

    async def changes(
        self,
        since: int = 0,
        *,
        entity: str | None = None,
        follow: bool = False,
        poll_interval: float = 0.5,
        batch: int = 500,
    ) -> AsyncIterator[local.Change]:
        """The change log after ``since``, oldest first; with ``follow``, wait for more forever."""
        position = since
        while True:
            rows = await self.store.run_read(local.read_changes, position, batch, entity)
            for change in rows:
                yield change
            if rows:
                position = rows[-1].seq
            elif not follow:
                return
            else:
                await anyio.sleep(poll_interval)

    async def register_consumer(self, name: str, since: int | None = None) -> int:
        """Register a change-feed consumer: tombstones are kept until it has passed them."""
        return await self.store.run(local.register_consumer, self.store, name, since)

    async def acknowledge(self, name: str, seq: int) -> None:
        """Tell the engine consumer ``name`` has handled every change up to ``seq``."""
        await self.store.run(local.acknowledge, self.store, name, seq)

    async def purge_tombstones(self) -> int:
        """Forget deleted records that every pushing connection and consumer has passed."""
        pushing = [n for n, c in self.config.connections.items() if c.push]
        return await self.store.run(local.purge_tombstones, self.store, pushing)

    # conflicts and provenance ---------------------------------------------------------

    def conflicts(self, status: str | None = "open") -> list[conflict_ops.Conflict]:
        """Conflicts (open ones by default), oldest first."""
        return conflict_ops.list_conflicts(self.store.reader, status)

    def conflict(self, conflict_id: int) -> conflict_ops.Conflict:
        return conflict_ops.get_conflict(self.store.reader, conflict_id)

    async def resolve_conflict(
        self, conflict_id: int, *, take: str | None = None, value: Any = MISSING
    ) -> conflict_ops.Conflict:
        """Settle a conflict with a candidate's value or a value of your own; the chosen value
        then flows to every system that lacks it."""
        return await self.store.run(conflict_ops.resolve, self.store, conflict_id, take, value)

    def explain(self, entity: str, key: str) -> dict[str, Any]:
        """Field by field: value, origin, source time, the rule that decided, who holds what."""
        return conflict_ops.explain(self.store.reader, self.policies, entity, key)

    # reading the mirror ---------------------------------------------------------------

    def records(self, entity: str, *, deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every record of ``entity`` as ``{"ref": key, **fields}`` (tombstoned ones on request)."""
        return iter_records(self.store.reader, entity, deleted=deleted)

    def get(self, entity: str, key: str) -> Any | None:
        """The canonical model of one live record, or ``None``."""
        fields = get_fields(self.store.reader, entity, key)
        return None if fields is None else from_fields(entity, key, fields)


def _unfinished(report: RunReport, stream: str | None) -> bool:
    """Whether ``stream`` was read in this run and stopped before the end of its pass."""
    return any(r.stream == stream and not r.finished and not r.skipped for r in report.streams)


def _fatal(report: RunReport, since: int) -> bool:
    """Whether a problem recorded after index ``since`` means the connection cannot go on."""
    return any(p.fatal for p in report.problems[since:])
