"""``salync demo``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
from rich.table import Table

from salync_core.cli.app import EXIT_FAILED, ProgressBars, console, handle_errors, run
from salync_core.demo import DemoResult, run_demo


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write salync.toml and the mirror (a new temporary folder by default).",
)
@click.option("--products", type=int, default=500, show_default=True, help="Catalog size.")
@click.option("--progress/--no-progress", default=True, help="Draw progress bars.")
@handle_errors
def demo(directory: Path | None, products: int, progress: bool) -> None:
    """Sync a built-in Sales Layer emulator into a local mirror, edit, sync again, reconcile."""
    if products < 20:
        raise click.BadParameter("the demo needs at least 20 products", param_hint="--products")
    target = directory or Path(tempfile.mkdtemp(prefix="salync-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    with ProgressBars(progress) as bars:
        result = run(run_demo, target, products, bars)
    print_summary(result)
    if any(not report.ok for _, report in result.phases):
        sys.exit(EXIT_FAILED)


def print_summary(result: DemoResult) -> None:
    table = Table(
        "phase",
        "received",
        "changed",
        "deleted",
        "requests",
        "seconds",
        "status",
        title="salync demo",
    )
    for phase, report in result.phases:
        totals = report.totals()
        deleted = sum(s.deleted for s in report.streams)
        table.add_row(
            phase,
            str(totals.received),
            str(totals.changed),
            str(deleted),
            str(report.requests),
            f"{report.seconds:.2f}",
            report.status,
        )
    console.print(table)
    for _, report in result.phases:
        for problem in report.problems:
            console.print(f"[red]problem:[/] {problem}", soft_wrap=True)
    mirror = ", ".join(f"{n} {e}" for e, n in sorted(result.records.items()))
    console.print(f"mirror: {mirror}; {result.tombstones} tombstone(s)")
    console.print(f"edited in the PIM: {', '.join(result.edited)}")
    console.print(f"deleted in the PIM: {', '.join(result.deleted)}")
    console.print(f"files: {result.directory / 'salync.toml'}, {result.directory / 'salync.db'}")
    console.print(
        f"try: salync --help, or salync status --config {result.directory / 'salync.toml'}"
    )
