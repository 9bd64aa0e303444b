"""One account of a fleet: a directory holding a ``salync.toml`` and (as it says) a mirror.

:func:`run_account` is everything one round of one account does: open the configuration and
the mirror, take the mirror's lock without waiting (another process holding it means "busy",
not an error), decide under that lock which connections are still due (so two fleet processes
never both sync one account in one round), sync them (webhook events first, as ``salync sync``
does), push what local edits wait for, and close everything. Nothing stays open afterwards: an
idle account is a directory and a schedule entry. It never raises for an account-level failure;
it returns an :class:`AccountOutcome`, plain data a Dask task can return too.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from attrs import Factory, define, frozen

from salync_core.config import CONFIG_FILE, Config, load_config
from salync_core.engine import Engine, RunReport
from salync_core.engine.mapper_pool import MapperPool
from salync_core.engine.writers import Writers
from salync_core.errors import MirrorBusy, SalyncError
from salync_core.fleet.due import ConnectionDue, connections_due, iso, next_due
from salync_core.store import Store
from salync_core.store.lease import WriterLease
from salync_core.store.schedule import inbox_waiting, mirror_schedule
from salync_core.webhooks.applier import DrainReport, drain_beside_mirror

logger = logging.getLogger("salync.fleet")

STATUSES = ("ok", "failed", "paused", "needs_reconnect", "busy", "fenced", "not_due", "cancelled")
"""What an account's round can come to. ``not_due``: another process synced it first this
round; ``cancelled``: stopped from outside (Ctrl-C, SIGTERM) at a committed page."""


@frozen
class Account:
    """An account: its name (the directory's) and the directory holding its ``salync.toml``;
    the mirror is where that file says, relative paths resolved against the directory."""

    name: str
    directory: Path

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_FILE


def discover_accounts(root: Path) -> list[Account]:
    """Every subdirectory of ``root`` with a ``salync.toml``, by name."""
    return [
        Account(child.name, child)
        for child in sorted(Path(root).iterdir())
        if child.is_dir() and (child / CONFIG_FILE).is_file()
    ]


@define
class AccountOutcome:
    """What one round of one account came to (plain data: picklable)."""

    account: str
    status: str
    started_at: str
    finished_at: str
    requests: int = 0
    problems: list[str] = Factory(list)
    next_due: str | None = None
    """ISO time the account next wants a run (interval, a quota's resume time, waiting work)."""
    synced: list[str] = Factory(list)
    """Connections synced (or pushed) in this round."""

    @property
    def ok(self) -> bool:
        return self.status in {"ok", "not_due"}


async def run_account(
    account: Account,
    connections: Sequence[str] | None = None,
    *,
    lease: Any | None = None,
    mapper_pool: MapperPool | None = None,
    clock: Callable[[], float] = time.time,
) -> AccountOutcome:
    """One round of ``account``: its due connections (or exactly ``connections``) synced and
    pushed, then everything closed. Never raises for an account's failure (it is in the
    outcome); only cancellation propagates, after the page in flight commits or rolls back.

    ``lease`` is the writer lease the Dask fleet holds (see ``fleet-interface``); ``mapper_pool``
    the worker processes shared by every account of a fleet (long passes map there)."""
    started = clock()
    outcome = AccountOutcome(account.name, "ok", iso(started) or "", "")
    try:
        config = load_config(account.config_path)
    except SalyncError as exc:
        return _finish(outcome, "failed", clock, problems=[_one_line(exc)], due=None)
    try:
        await _run(account, config, connections, outcome, clock, mapper_pool, lease)
    except MirrorBusy as exc:
        outcome.status = "busy"
        outcome.problems = [f"busy: {exc.holder} holds the mirror"]
        outcome.next_due = iso(clock())
    except SalyncError as exc:  # opening the mirror failed (damaged, unwritable, ...)
        outcome.status = "failed"
        outcome.problems.append(_one_line(exc))
    except sqlite3.Error as exc:
        outcome.status = "failed"
        outcome.problems.append(f"the mirror failed: {exc}")
    except anyio.get_cancelled_exc_class():
        outcome.status = "cancelled"
        raise
    except Exception as exc:  # a bug: this account's round ends, the fleet goes on
        logger.exception("%s: the round failed", account.name)
        outcome.status = "failed"
        outcome.problems.append(f"internal error: {type(exc).__name__}")
    outcome.finished_at = iso(clock()) or ""
    return outcome


async def _run(
    account: Account,
    config: Config,
    wanted: Sequence[str] | None,
    outcome: AccountOutcome,
    clock: Callable[[], float],
    mapper_pool: MapperPool | None,
    lease: Any | None = None,
) -> None:
    async with _engine(config, mapper_pool) as engine:
        held = lease.hold(engine.store) if lease is not None else contextlib.nullcontext()
        async with engine.writers.mirror_lock(0), held:  # the lease: see store/lease.py
            due = account_due(config, clock())  # under the lock: fresh, not what we saw before
            now = clock()
            to_drain: list[str] = []
            if wanted is not None:
                to_sync, to_push = list(wanted), []
            else:
                ready = [d for d in due if d.due_at is not None and d.due_at <= now]
                to_sync = [d.name for d in ready if d.why in _FULL_ROUND]
                to_drain = [d.name for d in ready if d.why == "webhook events"]
                to_push = [d.name for d in ready if d.why == "local edits"]
            if not (to_sync or to_drain or to_push):
                outcome.status = "not_due"
            reports: list[RunReport] = []
            if to_sync:
                reports += await engine.sync(to_sync)
            if to_drain:
                _drained(outcome, await drain_beside_mirror(engine, to_drain))
                to_push += _pushes_waiting(config, clock(), set(to_sync) | set(to_push))
            if to_push:
                reports += await engine.push(to_push)
            outcome.synced = to_sync + [n for n in to_drain if n not in to_push] + to_push
        after = account_due(config, clock())
    _judge(outcome, reports, after, clock())
    lost = getattr(lease, "lost", None)
    if lost:  # another holder took the mirror over: its writes were refused from then on
        outcome.status = "fenced"
        outcome.problems.append(_line(str(lost)))


_FULL_ROUND = frozenset({"never synced", "interval"})
"""Why a connection gets a whole round; the others get a short one (events applied, a push)."""


def _pushes_waiting(config: Config, now: float, done: set[str]) -> list[str]:
    """Connections that events just applied left something to push to (not pushed yet)."""
    due = account_due(config, now)
    return [d.name for d in due if d.why == "local edits" and d.name not in done]


def _drained(outcome: AccountOutcome, report: DrainReport | None) -> None:
    if report is None:
        return
    outcome.problems += [_line(error) for error in report.errors]
    if report.failed:
        outcome.status = "failed"


@contextlib.asynccontextmanager
async def _engine(config: Config, mapper_pool: MapperPool | None) -> AsyncIterator[Engine]:
    """``Engine.open``, but the mirror's lock is taken first (without waiting: another holder
    raises :class:`MirrorBusy`) and held until the mirror is closed, so two processes never
    both create (migrate) or write one mirror; the mirror is opened and closed on a worker
    thread, so the event loop keeps serving the other accounts meanwhile."""
    writers = Writers(config.store_path)
    async with writers.mirror_lock(0):
        store = await anyio.to_thread.run_sync(Store, config.store_path)
        try:
            engine = Engine(config, store, mapper_pool=mapper_pool)
            engine.writers = writers  # already holding the lock (it is re-entrant)
            engine.lock_wait = 0
            try:
                yield engine
            finally:
                with anyio.CancelScope(shield=True):
                    await engine.aclose()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(store.close)


def account_due(config: Config, now: float) -> list[ConnectionDue]:
    """Each connection's due time, read from the mirror and its inbox (read-only)."""
    names = list(config.connections)
    pushing = [n for n, c in config.connections.items() if c.push]
    schedule = mirror_schedule(config.store_path, names, pushing)
    inbox = inbox_waiting(config.store_path)
    return connections_due(names, schedule, inbox, config.sync_interval, now)


def _judge(
    outcome: AccountOutcome,
    reports: Sequence[RunReport],
    due: Sequence[ConnectionDue],
    now: float,
) -> None:
    outcome.requests = sum(r.requests for r in reports)
    for report in reports:
        outcome.problems += [_line(str(p)) for p in report.problems]
        if report.paused_until:
            outcome.problems.append(
                f"{report.connection}: daily quota used up; resumes at {report.paused_until}"
            )
    parked = [d.name for d in due if d.due_at is None]
    outcome.problems += [f"{name}: needs a reconnect (`salync connect {name}`)" for name in parked]
    if any(r.cancelled for r in reports):
        outcome.status = "cancelled"
    elif parked:
        outcome.status = "needs_reconnect"
    elif any(r.problems for r in reports):
        outcome.status = "failed"
    elif any(r.paused_until for r in reports):
        outcome.status = "paused"
    soonest = next_due(due)
    outcome.next_due = iso(soonest)


def _finish(
    outcome: AccountOutcome,
    status: str,
    clock: Callable[[], float],
    *,
    problems: list[str],
    due: float | None,
) -> AccountOutcome:
    outcome.status = status
    outcome.problems = problems
    outcome.next_due = iso(due)
    outcome.finished_at = iso(clock()) or ""
    return outcome


def _one_line(exc: BaseException) -> str:
    return _line(str(exc))


def _line(text: str) -> str:
    return " ".join(text.split())


def run_account_blocking(
    directory: str, connections: list[str] | None = None, lease_holder: str | None = None
) -> AccountOutcome:
    """:func:`run_account` in an event loop of its own: what a Dask task calls on a worker."""
    path = Path(directory)
    account = Account(path.name, path)

    lease = WriterLease(lease_holder) if lease_holder is not None else None

    async def go() -> AccountOutcome:
        return await run_account(account, connections, lease=lease)

    return anyio.run(go)
