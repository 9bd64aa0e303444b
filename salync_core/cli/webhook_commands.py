"""``salync webhooks serve`` and ``salync webhooks subscribe``."""

from __future__ import annotations

import contextlib

import anyio
import click
from aiohttp import web
from rich.markup import escape
from rich.table import Table

from salync_core.cli.app import config_option, console, fail, handle_errors, run
from salync_core.engine import Engine
from salync_core.store.inbox import inbox_path
from salync_core.webhooks.receiver import MAX_BODY, webhook_app


@click.group()
def webhooks() -> None:
    """Receive platforms' webhooks into the mirror, and subscribe to them."""


@webhooks.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8780, show_default=True, type=int, help="The port (0: any free).")
@click.option(
    "--apply/--no-apply",
    default=True,
    help="Apply events as they arrive (--no-apply: only receive; `salync sync` applies them).",
)
@click.option("--max-body", default=MAX_BODY, show_default=True, help="Largest body in bytes.")
@handle_errors
def serve(config_path: str, host: str, port: int, apply: bool, max_body: int) -> None:
    """Receive deliveries at http://HOST:PORT/webhooks/CONNECTION[/...] until interrupted.

    Each event is committed to the inbox beside the mirror before the answer, so a process
    killed after answering loses nothing."""

    async def go() -> None:
        async with Engine.open(config_path) as engine:
            app = webhook_app(engine, apply=apply, max_body=max_body)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, host, port)
                await site.start()
                bound = runner.addresses[0][1] if runner.addresses else port
                console.print(
                    f"receiving webhooks on http://{escape(host)}:{bound}/webhooks/<connection>"
                    f" (inbox {escape(str(inbox_path(engine.store.path)))})",
                    soft_wrap=True,
                )
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):  # finish the drain under way, close runs
                    await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        run(go)


@webhooks.command()
@config_option
@click.argument("connection")
@click.option(
    "--url",
    "public_url",
    required=True,
    help="The public address of `salync webhooks serve` (or the host app's mount point).",
)
@handle_errors
def subscribe(config_path: str, connection: str, public_url: str) -> None:
    """Register CONNECTION's platform to deliver the events the engine uses to
    PUBLIC_URL/webhooks/CONNECTION, signed with the connection's webhook_secret."""

    async def go() -> list[tuple[str, str, str]]:
        async with Engine.open(config_path) as engine:
            live = await engine._connect(connection)
            if not live.platform.webhook_events:
                fail(f"{connection}: {live.platform.name} sends no webhooks")
            url = f"{public_url.rstrip('/')}/webhooks/{connection}"
            made = await live.platform.subscribe_webhooks(live.ctx, url)
            return [(s.event, s.url, s.id or "") for s in made]

    table = Table("event", "url", "id")
    for row in run(go):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
