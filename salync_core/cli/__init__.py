"""The ``salync`` command line: a thin layer over the same API a host app embeds."""

from __future__ import annotations

import click

from salync_core.cli.admin_commands import dead_letters, outbox
from salync_core.cli.app import configure_logging
from salync_core.cli.conflict_commands import conflicts, explain, push
from salync_core.cli.connect_command import connect
from salync_core.cli.demo_command import demo
from salync_core.cli.fleet_commands import fleet
from salync_core.cli.read_commands import records, status
from salync_core.cli.secret_commands import secrets
from salync_core.cli.setup_commands import emulate, init
from salync_core.cli.sync_commands import reconcile, sync
from salync_core.cli.webhook_commands import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="salync-core")
@click.option("-v", "--verbose", count=True, help="Log more: -v for info, -vv for debug.")
def main(verbose: int) -> None:
    """Salync Core: keep commerce data in step across platforms, through a local SQLite mirror."""
    configure_logging(verbose)


for command in (
    init,
    sync,
    reconcile,
    push,
    status,
    records,
    explain,
    conflicts,
    dead_letters,
    outbox,
    secrets,
    connect,
    emulate,
    demo,
    webhooks,
    fleet,
):
    main.add_command(command)
