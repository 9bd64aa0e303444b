"""A fleet: many accounts kept in step by one process on one event loop.

::

    fleet = Fleet(Path("accounts"), concurrency=8)
    outcomes = await fleet.run_due()      # every due account once (``salync fleet run --once``)
    await fleet.run()                     # forever, until cancelled

Each account's connections are synced on the account's ``[sync] interval``, sooner when webhook
events or local edits wait (seen by a cheap ``stat`` of the mirror's and inbox's files, then
confirmed read-only); pushes follow syncs. At most ``concurrency`` accounts run at once, each
with one slot at most, the longest-waiting due account first. An account that fails, is paused
by a daily quota (not retried before its resume time), needs a reconnect (parked, not retried)
or is busy in another process (skipped) never holds up the others. Clients made inside the fleet
share one pacer per (platform, base URL, credential fingerprint), so accounts that share an API
key or a store's bucket respect its limits together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from salync_core.config import load_config
from salync_core.engine.mapper_pool import MapperPool, MapPolicy, MapProcesses
from salync_core.errors import SalyncError
from salync_core.fleet.account import (
    Account,
    AccountOutcome,
    account_due,
    discover_accounts,
    run_account,
)
from salync_core.fleet.due import next_due, parse_time
from salync_core.fleet.schedule import NEVER, Entry, next_up, write_stamp
from salync_core.http.pacing import SHARED_PACERS, PacerRegistry

logger = logging.getLogger("salync.fleet")

OutcomeHook = Callable[[AccountOutcome], None]


class Fleet:
    """Accounts (a directory of account directories, or a list the host supplies) and their
    schedule."""

    def __init__(
        self,
        accounts: Path | str | Sequence[Account],
        *,
        concurrency: int = 4,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 5.0,
        busy_retry_seconds: float = 30.0,
        mapper_pool: MapperPool | None = None,
        map_processes: MapProcesses = "auto",
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        found = (
            discover_accounts(Path(accounts))
            if isinstance(accounts, str | Path)
            else list(accounts)
        )
        self.entries = [Entry(account) for account in found]
        self.concurrency = concurrency
        self.clock = clock
        self.poll_seconds = poll_seconds
        """Real seconds between looks for waiting work while nothing is due."""
        self.busy_retry_seconds = busy_retry_seconds
        self.mapper_pool = mapper_pool
        """The worker processes every account's engine maps long passes in: the host's, else
        one the fleet starts for a run (``map_processes``; no process starts until a long pass
        asks for one) and closes after it."""
        self.map_processes: MapProcesses = map_processes
        self.on_outcome = on_outcome
        self.pacers = PacerRegistry()
        self._loaded = False
        self._running = 0
        self._wake: anyio.Event | None = None

    # the schedule ---------------------------------------------------------------------

    def load(self) -> None:
        """Read each account's configuration and mirror once (read-only) for its due time."""
        if self._loaded:
            return
        now = self.clock()
        for entry in self.entries:
            self._look(entry, now)
        self._loaded = True

    def _look(self, entry: Entry, now: float) -> None:
        """Learn an account's due time from its files (nothing is kept open)."""
        entry.stamp = write_stamp(entry.account, entry.mirror)
        try:
            config = load_config(entry.account.config_path)
            due = account_due(config, now)
        except SalyncError as exc:
            entry.status, entry.problems = "failed", (" ".join(str(exc).split()),)
            entry.due_at = NEVER  # until its configuration changes
            return
        except Exception as exc:  # an unreadable mirror: say so, keep going
            entry.status, entry.problems = "failed", (f"cannot read: {type(exc).__name__}",)
            entry.due_at = NEVER
            return
        entry.mirror = config.store_path
        entry.stamp = write_stamp(entry.account, entry.mirror)
        soonest = next_due(due)
        entry.due_at = NEVER if soonest is None else soonest
        parked = [d.name for d in due if d.due_at is None]
        if parked and entry.status == "new":
            entry.status = "needs_reconnect"
            entry.problems = tuple(f"{n}: needs a reconnect" for n in parked)

    def _notice_waiting_work(self, now: float) -> None:
        """Accounts whose files changed while they waited are looked at again: a webhook
        event or a local edit makes them due now, a fixed configuration un-parks them."""
        for entry in self.entries:
            if entry.running or entry.due_at <= now:
                continue
            if write_stamp(entry.account, entry.mirror) != entry.stamp:
                self._look(entry, now)

    def _record(self, entry: Entry, outcome: AccountOutcome) -> None:
        now = self.clock()
        entry.last_run, entry.runs = now, entry.runs + 1
        if outcome.status != "not_due":
            entry.status = outcome.status
            entry.problems = tuple(outcome.problems)
        if outcome.status == "busy":
            entry.due_at = now + self.busy_retry_seconds
        else:
            due = parse_time(outcome.next_due)
            # an account due again at once waits from now, behind every account already
            # waiting: one that ran longer than its interval never jumps the queue
            entry.due_at = NEVER if due is None else max(due, now)
        entry.stamp = write_stamp(entry.account, entry.mirror)
        self.pacers.prune()
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    # running --------------------------------------------------------------------------

    async def run_due(self) -> list[AccountOutcome]:
        """Run every account due now once (longest-waiting first, ``concurrency`` at a time)
        and return their outcomes in the order they finished."""
        return await self._drive(once=True)

    async def run(self) -> None:
        """Keep every account in step until cancelled (SIGINT/SIGTERM in the CLI): no new
        account starts, and the running ones stop at a committed page."""
        await self._drive(once=False)

    async def _drive(self, once: bool) -> list[AccountOutcome]:
        self.load()
        outcomes: list[AccountOutcome] = []
        own_pool = None
        if self.mapper_pool is None:
            processes = MapPolicy.from_setting(self.map_processes).processes
            own_pool = self.mapper_pool = MapperPool(processes) if processes > 0 else None
        token = SHARED_PACERS.set(self.pacers)
        try:
            async with anyio.create_task_group() as tg:
                await self._schedule(tg, outcomes, once)
        finally:
            SHARED_PACERS.reset(token)
            if own_pool is not None:
                self.mapper_pool = None
                with anyio.CancelScope(shield=True):
                    await own_pool.aclose()
        return outcomes

    async def _schedule(
        self, tg: anyio.abc.TaskGroup, outcomes: list[AccountOutcome], once: bool
    ) -> None:
        this_round: set[int] | None = None
        started: set[int] = set()
        while True:
            now = self.clock()
            self._notice_waiting_work(now)
            candidates = self.entries
            if once:
                if this_round is None:
                    this_round = {id(e) for e in self.entries if e.due_at <= now}
                candidates = [
                    e for e in self.entries if id(e) in this_round and id(e) not in started
                ]
            self._wake = anyio.Event()
            for entry in next_up(candidates, now, self.concurrency - self._running):
                started.add(id(entry))
                entry.running = True
                self._running += 1
                tg.start_soon(self._run_one, entry, outcomes)
            if once and self._running == 0 and not any(e.due_at <= now for e in candidates):
                return
            await self._sleep(once, now)

    async def _sleep(self, once: bool, now: float) -> None:
        """Until an account finishes, the next one is due, or it is time to look for work."""
        assert self._wake is not None
        wait = None if once else self.poll_seconds
        if not once:
            # With every slot taken, an account already due waits for one to free up (the wake
            # event), not for its due time: that is past, and waiting for it would spin the loop
            # the running accounts need.
            free = self._running < self.concurrency
            waiting = (e.due_at for e in self.entries if not e.running)
            soonest = min(waiting, default=NEVER) if free else NEVER
            wait = min(self.poll_seconds, max(0.0, soonest - now))
        with anyio.move_on_after(wait):
            await self._wake.wait()

    async def run_account(self, account: Account) -> AccountOutcome:
        """One round of one account, here; ``fleet/dask.py`` runs it on a Dask cluster."""
        return await run_account(account, mapper_pool=self.mapper_pool, clock=self.clock)

    async def _run_one(self, entry: Entry, outcomes: list[AccountOutcome]) -> None:
        try:
            outcome = await self.run_account(entry.account)
        finally:
            entry.running = False
            self._running -= 1
            if self._wake is not None:
                self._wake.set()
        outcomes.append(outcome)
        self._record(entry, outcome)
