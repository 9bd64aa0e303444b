"""``salync demo``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
from rich.table import Table

from salync_core.cli.app import (
    EXIT_FAILED,
    ProgressBars,
    console,
    handle_errors,
    labelled,
    run,
)
from salync_core.cli.conflict_commands import print_explanation
from salync_core.demo import DemoResult, run_demo


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write salync.toml and the mirror (a new temporary folder by default).",
)
@click.option("--products", type=int, default=300, show_default=True, help="PIM catalog size.")
@click.option("--progress/--no-progress", default=True, help="Draw progress bars.")
@handle_errors
def demo(directory: Path | None, products: int, progress: bool) -> None:
    """Sync a Sales Layer PIM and a Salync workspace (both emulated) through a local mirror,
    with per-field ownership, edits on every side, and a reconcile."""
    if products < 20:
        raise click.BadParameter("the demo needs at least 20 products", param_hint="--products")
    target = directory or Path(tempfile.mkdtemp(prefix="salync-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    with ProgressBars(progress) as bars:
        result = run(run_demo, target, products, bars)
    print_summary(result)
    if any(not report.ok for _, reports in result.phases for report in reports):
        sys.exit(EXIT_FAILED)


def print_summary(result: DemoResult) -> None:
    table = Table(
        "phase",
        "connection",
        "run",
        "received",
        "changed",
        "deleted",
        "pushed",
        "requests",
        "seconds",
        "status",
        title="salync demo",
    )
    for phase, reports in result.phases:
        for report in reports:
            totals = report.totals()
            deleted = sum(s.deleted for s in report.streams)
            table.add_row(
                phase,
                report.connection,
                report.kind,
                str(totals.received),
                str(totals.changed),
                str(deleted),
                str(report.pushed),
                str(report.requests),
                f"{report.seconds:.2f}",
                report.status,
            )
    console.print(table)
    for _, reports in result.phases:
        for report in reports:
            for problem in report.problems:
                console.print(labelled("problem:", "red", str(problem)), soft_wrap=True)
    for line in result.story:
        console.print(f"- {line}", soft_wrap=True)
    mirror = ", ".join(f"{n} {e}" for e, n in sorted(result.records.items()))
    console.print(f"mirror: {mirror}; {result.tombstones} tombstone(s)")
    console.print("\nwhere one product's fields came from (salync explain):")
    print_explanation(result.explained, compact=True)
    config = result.directory / "salync.toml"
    console.print(f"\nfiles: {config}, {result.directory / 'salync.db'} (keys encrypted at rest)")
    console.print(f"try: salync status --config {config}", soft_wrap=True)
