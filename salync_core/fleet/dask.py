"""The fleet on a Dask cluster: each account's round is a Dask task that Dask places and, when a
worker dies, runs again elsewhere.

::

    with local_cluster(workers=2) as client:            # or Client("tcp://scheduler:8786")
        outcomes = anyio.run(DaskFleet(Path("accounts"), client, concurrency=8).run_due)

:class:`DaskFleet` is the local :class:`~salync_core.fleet.fleet.Fleet` with one difference:
where the local fleet runs an account's round on its own event loop, this one submits
:func:`run_account_task` to Dask and waits for its result. Everything else is the same code:
which accounts are due, longest-waiting first, at most ``concurrency`` rounds in flight (so at
most that many tasks are on the cluster at once, and a big account never starves small ones),
busy, paused and parked accounts handled alike.

Why tasks and not actors: a round is a short, self-contained function of files on disk (open,
sync, push, close), which is what Dask retries and reschedules. An actor lives on one worker and
dies with it (Dask does not move or restart actors), which is the failure we must survive.

Every attempt holds the mirror's writer lease (:mod:`salync_core.store.lease`) under a holder id
of its own, so when Dask runs a task again while the first attempt is still alive on a worker it
believes lost, the first attempt's next write transaction is fenced and rolls back. A killed
attempt's lease is waited out (its TTL) by the next attempt, which then resumes from the last
committed page.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from salync_core.errors import ConfigError
from salync_core.fleet.account import Account, AccountOutcome, run_account
from salync_core.fleet.due import iso
from salync_core.fleet.fleet import Fleet
from salync_core.store.lease import DEFAULT_TTL, WriterLease

logger = logging.getLogger("salync.fleet")

LOOPBACK = "127.0.0.1"

Placement = Callable[[Account], Sequence[str] | None]
"""The workers (addresses or host names) an account must run on, or ``None`` for any: how a
host pins an account to the node whose disk holds its mirror (see ``docs/scaling.md``)."""


def attempt_holder() -> str:
    """A writer-lease holder id unique to this attempt: the worker, its pid and a random part
    (a retried task must not share its first attempt's id, or it would share its lease)."""
    try:
        from distributed import get_worker

        where = get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker
        where = "local"
    return f"dask {where} pid {os.getpid()} {uuid.uuid4().hex[:8]}"


def run_account_task(directory: str, lease_ttl: float = DEFAULT_TTL) -> AccountOutcome:
    """One round of the account in ``directory``, holding its writer lease: the function a Dask
    task runs on a worker (in a worker thread, with an event loop of its own)."""
    path = Path(directory)
    lease = WriterLease(attempt_holder(), ttl=lease_ttl)

    async def round_() -> AccountOutcome:
        outcome = await run_account(Account(path.name, path), lease=lease)
        if lease.lost is not None:  # taken over mid-round: nothing it wrote after that stayed
            outcome.status = "fenced"
            outcome.problems.append(lease.lost)
        return outcome

    return anyio.run(round_)


class DaskFleet(Fleet):
    """A :class:`Fleet` whose accounts run as tasks on the Dask cluster ``client`` talks to.

    ``concurrency`` bounds the tasks in flight (give it the cluster's worker threads, or more
    to keep them busy while a round waits on a platform); ``lease_ttl`` is how long a killed
    attempt's lease keeps its account waiting; ``placement`` pins accounts to workers.
    """

    def __init__(
        self,
        accounts: Path | str | Sequence[Account],
        client: Any,
        *,
        concurrency: int = 4,
        lease_ttl: float = DEFAULT_TTL,
        placement: Placement | None = None,
        **options: Any,
    ) -> None:
        super().__init__(accounts, concurrency=concurrency, **options)
        self.client = client
        self.lease_ttl = lease_ttl
        self.placement = placement
        self._waiting = anyio.CapacityLimiter(concurrency)
        """A thread per round in flight waits for its task's result."""

    async def run_account(self, account: Account) -> AccountOutcome:
        """Submit the account's round and wait for it (in a thread, so the event loop and the
        other rounds go on). A task Dask gives up on (its workers died more often than
        ``distributed.scheduler.allowed-failures``) is a failed round, not a failed fleet."""
        workers = self.placement(account) if self.placement is not None else None
        future = self.client.submit(
            run_account_task,
            str(account.directory),
            self.lease_ttl,
            key=f"salync-account-{account.name}-{uuid.uuid4().hex[:12]}",
            pure=False,
            workers=list(workers) if workers else None,
            allow_other_workers=False,
        )
        try:
            outcome: AccountOutcome = await anyio.to_thread.run_sync(
                future.result, abandon_on_cancel=True, limiter=self._waiting
            )
            return outcome
        except anyio.get_cancelled_exc_class():
            future.cancel()
            raise
        except Exception as exc:
            now = iso(self.clock()) or ""
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            return AccountOutcome(account.name, "failed", now, now, problems=[reason])


@contextlib.contextmanager
def local_cluster(workers: int = 2, threads: int = 1) -> Iterator[Any]:
    """A ``LocalCluster`` of worker processes on this machine and a client to it. Every socket
    (scheduler, nannies, workers) listens on 127.0.0.1 only and no dashboard is served."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        host=LOOPBACK,
        # The scheduler always serves HTTP (health, metrics): on loopback, on a free port.
        dashboard_address=f"{LOOPBACK}:0",
        worker_dashboard_address=None,  # a worker's HTTP server then binds its own host
    )
    try:
        with Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
    finally:
        cluster.close()


@contextlib.contextmanager
def dask_client(address: str | None, *, workers: int = 2, threads: int = 1) -> Iterator[Any]:
    """A client to the scheduler at ``address``, or to a new :func:`local_cluster`."""
    if address is None:
        with local_cluster(workers, threads) as client:
            yield client
        return
    from distributed import Client

    with Client(address) as client:  # type: ignore[no-untyped-call]
        yield client


@contextlib.contextmanager
def open_dask_fleet(
    accounts: Path, address: str | None, concurrency: int, **options: Any
) -> Iterator[DaskFleet]:
    """A :class:`DaskFleet` on the scheduler at ``address`` or (``None``) on a local cluster
    of as many single-threaded worker processes as there are cores, at most ``concurrency``
    (``salync fleet run --dask``)."""
    try:
        import distributed  # noqa: F401 - only to say what is missing
    except ImportError:
        raise ConfigError("--dask needs Dask: pip install 'salync-core[dask]'") from None
    workers = max(1, min(concurrency, os.cpu_count() or 1))
    with dask_client(address, workers=workers) as client:
        yield DaskFleet(accounts, client, concurrency=concurrency, **options)
