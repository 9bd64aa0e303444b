"""``salync sync`` and ``salync reconcile``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
import orjson
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
from salync_core.engine.admin import preview_push

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
@click.option(
    "--push/--no-push",
    default=True,
    help="Push what the connections lack afterwards (default), or only read.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read into the mirror, then print what a push would send instead of sending it.",
)
@handle_errors
def sync(
    config_path: str,
    connections: tuple[str, ...],
    streams: tuple[str, ...],
    full: bool,
    reconcile: bool,
    allow_mass_delete: bool,
    progress: bool,
    push: bool,
    dry_run: bool,
) -> None:
    """Sync CONNECTIONS (all by default): read each into the mirror, then WRITE to the remote
    systems: every connection with `push` configured is sent the changes it lacks (creates,
    updates and deletions). Use --no-push to only read, or --dry-run to see what would be sent.
    """

    async def go() -> tuple[list[RunReport], list[dict[str, Any]] | None]:
        async with Engine.open(config_path) as engine:
            with ProgressBars(progress) as bars:
                reports = await engine.sync(
                    list(connections) or None,
                    list(streams) or None,
                    full=full,
                    reconcile=reconcile,
                    allow_mass_delete=allow_mass_delete,
                    progress=bars,
                    push=push and not dry_run,
                )
            if not dry_run:
                return reports, None
            return reports, await preview_push(engine, list(connections) or None)

    reports, writes = run(go)
    print_reports(reports)
    if writes is not None:
        print_preview(writes)
    exit_for(reports)


def print_preview(writes: Sequence[dict[str, Any]]) -> None:
    """What a push would send: one line per write, with the platform's payload."""
    console.print(f"dry run: a push would send {len(writes)} write(s); nothing was sent")
    for write in writes:
        payload = write.get("payload", write["fields"])
        line = (
            f"{write['connection']}: {write['op']} {write['entity']} {write['key']}: "
            + orjson.dumps(payload, default=str).decode()
        )
        if "rejected" in write:
            line += f" (would be rejected: {write['rejected']})"
        console.print(line, soft_wrap=True)


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
