"""``salync connect``: authorize a connection's OAuth app (:mod:`salync_core.oauth_connect`)."""

from __future__ import annotations

import click

from salync_core.cli.app import config_option, console, handle_errors, run
from salync_core.engine import Engine


@click.command()
@config_option
@click.argument("connection")
@click.option("--no-browser", is_flag=True, help="Only print the URL to open.")
@click.option("--port", type=int, default=0, help="Loopback port of the redirect (0: any free).")
@handle_errors
def connect(config_path: str, connection: str, no_browser: bool, port: int) -> None:
    """Connect CONNECTION's OAuth app: open the authorize URL, store both tokens encrypted."""
    from salync_core.oauth_connect import connect as dance

    def announce(url: str) -> None:
        console.print("Open this URL to authorize the app:", soft_wrap=True)
        console.print(url, soft_wrap=True, markup=False, highlight=False)

    async def go() -> str:
        async with Engine.open(config_path) as engine:
            return await dance(
                engine, connection, port=port, announce=announce, open_browser=not no_browser
            )

    whom = run(go)
    console.print(f"connected {connection}: {whom}", markup=False, highlight=False)
