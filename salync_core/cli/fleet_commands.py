"""``salync fleet run`` and ``salync fleet status``: many accounts, one process (or one per
core with ``--processes``)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import orjson
from rich.table import Table
from rich.text import Text

from salync_core.cli.app import EXIT_FAILED, console, handle_errors, labelled, run
from salync_core.fleet import AccountOutcome, Fleet, discover_accounts
from salync_core.fleet.shards import in_shard, parse_shard
from salync_core.fleet.status import fleet_status

FAILED = frozenset({"failed", "needs_reconnect", "fenced"})
"""Outcomes that make ``fleet run --once`` exit non-zero (busy, paused and not due do not)."""
STYLES = {"ok": "green", "not_due": "green", "busy": "yellow", "paused": "yellow"}

accounts_option = click.option(
    "--accounts",
    "accounts_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory holding one directory per account, each with its salync.toml.",
)


@click.group()
def fleet() -> None:
    """Many accounts on one machine: each a directory with a salync.toml and its mirror."""


def say(outcome: AccountOutcome) -> None:
    """One line per account as it finishes: its status, then its first problem or its
    requests (problems never hold secrets: the engine masks them)."""
    if outcome.problems:
        more = len(outcome.problems) - 1
        detail = outcome.problems[0] + (f" (+{more} more)" if more else "")
    elif outcome.status == "not_due":
        detail = "another process synced it this round"
    else:
        detail = f"{outcome.requests} requests"
    label = f"{outcome.account}: {outcome.status}"
    console.print(labelled(label, STYLES.get(outcome.status, "red"), detail), soft_wrap=True)


@fleet.command("run")
@accounts_option
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most this many accounts run at once.",
)
@click.option("--once", is_flag=True, help="Run every due account once, then exit.")
@click.option(
    "--dask",
    "dask_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[SCHEDULER_ADDRESS]",
    help="Run each account's round as a task on a Dask cluster: the scheduler at "
    "SCHEDULER_ADDRESS, or without one a local cluster on 127.0.0.1 (the dask extra).",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Split the accounts among this many processes, each with its own event loop, so the "
    "fleet uses that many cores (--concurrency applies to each).",
)
@click.option("--shard", hidden=True, help="K/N: only shard K of N (what --processes starts).")
@handle_errors
def run_fleet(
    accounts_dir: Path,
    concurrency: int,
    once: bool,
    dask_address: str | None,
    processes: int,
    shard: str | None,
) -> None:
    """Keep every account in ACCOUNTS in step: each connection synced on its [sync] interval
    (sooner when webhook events or local edits wait), then pushed. Stops at Ctrl-C or SIGTERM:
    no new account starts and the running ones stop at a committed page."""
    if shard is not None or (processes > 1 and dask_address is None):
        try:
            index, shards = parse_shard(shard) if shard is not None else (0, processes)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--shard") from None
        everyone = discover_accounts(accounts_dir)
        if not everyone:
            console.print(
                f"no accounts in {accounts_dir} (a directory per account, with salync.toml)"
            )
            return
        fleet_here = Fleet(
            in_shard(everyone, index, shards), concurrency=concurrency, on_outcome=say
        )
        if shard is not None:
            drive(fleet_here, accounts_dir, once, sharded=True)
            return
        with other_shards(accounts_dir, shards, concurrency, once) as children:
            code = _exit_code(lambda: drive(fleet_here, accounts_dir, once, sharded=True))
            children.stopping = code != 0  # stopped (130) or failed: the others stop too
        sys.exit(max([code, *children.codes]))
    if dask_address is not None:
        from salync_core.fleet.dask import open_dask_fleet

        address = None if dask_address == "local" else dask_address
        with open_dask_fleet(accounts_dir, address, concurrency, on_outcome=say) as on_dask:
            drive(on_dask, accounts_dir, once)
        return
    drive(Fleet(accounts_dir, concurrency=concurrency, on_outcome=say), accounts_dir, once)


class _Children:
    def __init__(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes
        self.stopping = False
        """Stop them (SIGTERM: each stops at a committed page) rather than wait for them."""
        self.codes: list[int] = []


@contextlib.contextmanager
def other_shards(
    accounts_dir: Path, shards: int, concurrency: int, once: bool
) -> Iterator[_Children]:
    """Shards 1 to ``shards - 1`` in child processes (this process runs shard 0); on leaving,
    wait for them (or stop them, when this one was stopped) and collect their exit codes."""
    command = [sys.executable, "-m", "salync_core", "fleet", "run", "--accounts", str(accounts_dir)]
    command += ["--concurrency", str(concurrency), *(["--once"] if once else [])]
    children = _Children(
        [subprocess.Popen([*command, "--shard", f"{k}/{shards}"]) for k in range(1, shards)]
    )
    try:
        yield children
    except BaseException:
        children.stopping = True
        raise
    finally:
        for process in children.processes:
            if children.stopping and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        children.codes = [process.wait() for process in children.processes]


def _exit_code(action: Callable[[], None]) -> int:
    """Run ``action`` and return the exit code it asked for (0 when it returned)."""
    try:
        action()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def drive(fleet: Fleet, accounts_dir: Path, once: bool, *, sharded: bool = False) -> None:
    """Run ``fleet`` until stopped, or its due accounts once (exit status 1 if one failed).
    A shard with no accounts still runs (it idles until stopped, like the others)."""
    if not fleet.entries and not sharded:
        console.print(f"no accounts in {accounts_dir} (a directory per account, with salync.toml)")
        return
    if not once:
        run(fleet.run)
        return
    outcomes = run(fleet.run_due)
    ran = {outcome.account for outcome in outcomes}
    for entry in fleet.entries:  # parked by a configuration that does not load: say so
        if entry.status == "failed" and entry.account.name not in ran:
            unread = AccountOutcome(
                entry.account.name, "failed", "", "", problems=[*entry.problems]
            )
            say(unread)
            outcomes.append(unread)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    console.print(f"{len(outcomes)} of {len(fleet.entries)} accounts ran: {summary or 'none due'}")
    if any(o.status in FAILED for o in outcomes):
        sys.exit(EXIT_FAILED)


@fleet.command("status")
@accounts_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def status(accounts_dir: Path, as_json: bool) -> None:
    """Each account's last run, next due time and problems (read-only: creates nothing)."""
    rows = fleet_status(discover_accounts(accounts_dir))
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table("account", "last run", "status", "next due", "paused until", "reconnect")
    for row in rows:
        table.add_row(
            row["account"],
            row["last_run"] or "never",
            Text(row["last_status"], STYLES.get(row["last_status"], "red")),
            row["next_due"] or "parked",
            row["paused_until"] or "",
            ", ".join(row["needs_reconnect"]),
        )
    console.print(table)
    for row in rows:
        for problem in row["problems"]:
            console.print(labelled(f"{row['account']}:", "red", problem), soft_wrap=True)
