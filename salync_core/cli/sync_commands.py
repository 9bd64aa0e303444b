"""``salync sync`` and ``salync reconcile``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from rich.table import Table
from rich.text import Text

from salync_core.cli.app import (
    EXIT_FAILED,
    ProgressBars,
    config_option,
    console,
    handle_errors,
    labelled,
    run,
)
from salync_core.engine import Engine, RunReport

STATUS_STYLES = {"ok": "green", "paused": "yellow", "cancelled": "yellow"}


def print_reports(reports: Sequence[RunReport]) -> None:
    """A table of what each run did, then every problem on a line of its own."""
    table = Table(
        "connection",
        "run",
        "status",
        "received",
        "changed",
        "deleted",
        "rejected",
        "pushed",
        "requests",
        "seconds",
    )
    for report in reports:
        totals = report.totals()
        deleted = sum(s.deleted for s in report.streams)
        rejected = sum(s.rejected for s in report.streams)
        status = Text(report.status, STATUS_STYLES.get(report.status, "red"))
        table.add_row(
            report.connection,
            report.kind,
            status,
            str(totals.received),
            str(totals.changed),
            str(deleted),
            str(rejected),
            str(report.pushed),
            str(report.requests),
            f"{report.seconds:.2f}",
        )
    console.print(table)
    for report in reports:
        if report.paused_until:
            console.print(
                f"{report.connection}: daily quota used up; "
                f"run again after {report.paused_until} to continue",
                style="yellow",
            )
        for problem in report.problems:
            console.print(labelled("problem:", "red", str(problem)), soft_wrap=True)


def exit_for(reports: Sequence[RunReport]) -> None:
    if any(not r.ok for r in reports):
        sys.exit(EXIT_FAILED)


@click.command()
@config_option
@click.argument("connections", nargs=-1)
@click.option("--stream", "streams", multiple=True, help="Only these streams (repeatable).")
@click.option("--full", is_flag=True, help="Ignore cursors and read everything again.")
@click.option("--reconcile", is_flag=True, help="Then scan keys and tombstone what disappeared.")
@click.option(
    "--allow-mass-delete", is_flag=True, help="Let reconcile delete beyond the threshold."
)
@click.option("--progress/--no-progress", default=True, help="Draw progress bars.")
@handle_errors
def sync(
    config_path: str,
    connections: tuple[str, ...],
    streams: tuple[str, ...],
    full: bool,
    reconcile: bool,
    allow_mass_delete: bool,
    progress: bool,
) -> None:
    """Sync CONNECTIONS (all by default) into the mirror."""

    async def go() -> list[RunReport]:
        async with Engine.open(config_path) as engine:
            with ProgressBars(progress) as bars:
                return await engine.sync(
                    list(connections) or None,
                    list(streams) or None,
                    full=full,
                    reconcile=reconcile,
                    allow_mass_delete=allow_mass_delete,
                    progress=bars,
                )

    reports = run(go)
    print_reports(reports)
    exit_for(reports)


@click.command()
@config_option
@click.argument("connections", nargs=-1)
@click.option("--allow-mass-delete", is_flag=True, help="Delete beyond the threshold.")
@handle_errors
def reconcile(config_path: str, connections: tuple[str, ...], allow_mass_delete: bool) -> None:
    """Tombstone records that disappeared from platforms that never report deletions."""

    async def go() -> list[RunReport]:
        async with Engine.open(config_path) as engine:
            return await engine.reconcile(
                list(connections) or None, allow_mass_delete=allow_mass_delete
            )

    reports = run(go)
    print_reports(reports)
    exit_for(reports)
