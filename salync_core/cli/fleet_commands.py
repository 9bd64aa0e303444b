"""``salync fleet run`` and ``salync fleet status``: many accounts, one process."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from rich.table import Table
from rich.text import Text

from salync_core.cli.app import EXIT_FAILED, console, handle_errors, labelled, run
from salync_core.fleet import AccountOutcome, Fleet, discover_accounts
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
@handle_errors
def run_fleet(accounts_dir: Path, concurrency: int, once: bool, dask_address: str | None) -> None:
    """Keep every account in ACCOUNTS in step: each connection synced on its [sync] interval
    (sooner when webhook events or local edits wait), then pushed. Stops at Ctrl-C or SIGTERM:
    no new account starts and the running ones stop at a committed page."""
    if dask_address is not None:
        from salync_core.fleet.dask import open_dask_fleet

        address = None if dask_address == "local" else dask_address
        with open_dask_fleet(accounts_dir, address, concurrency, on_outcome=say) as on_dask:
            drive(on_dask, accounts_dir, once)
        return
    drive(Fleet(accounts_dir, concurrency=concurrency, on_outcome=say), accounts_dir, once)


def drive(fleet: Fleet, accounts_dir: Path, once: bool) -> None:
    """Run ``fleet`` until stopped, or its due accounts once (exit status 1 if one failed)."""
    if not fleet.entries:
        console.print(f"no accounts in {accounts_dir} (a directory per account, with salync.toml)")
        return
    if not once:
        run(fleet.run)
        return
    outcomes = run(fleet.run_due)
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
