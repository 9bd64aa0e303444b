"""``salync secrets``: credentials kept encrypted in the mirror instead of in salync.toml."""

from __future__ import annotations

import os

import click

from salync_core.cli.app import config_option, console, handle_errors, run
from salync_core.engine import Engine
from salync_core.secrets import Secret


@click.group()
def secrets() -> None:
    """Store connection secrets encrypted at rest (key: SALYNC_SECRET_KEY or the key file)."""


@secrets.command("set")
@config_option
@click.argument("connection")
@click.argument("name", default="api_key")
@click.option("--from-env", "variable", default=None, help="Read the value from this variable.")
@handle_errors
def set_command(config_path: str, connection: str, name: str, variable: str | None) -> None:
    """Store secret NAME (default api_key) of CONNECTION; the value is asked for, never echoed."""
    if variable is not None:
        value = os.environ.get(variable, "")
        if not value:
            raise click.UsageError(f"environment variable {variable} is not set")
    else:
        value = click.prompt(f"{connection} {name}", hide_input=True, err=True)

    async def go() -> None:
        async with Engine.open(config_path) as engine:
            await engine.set_secrets(connection, {name: Secret(value)})

    run(go)
    console.print(f"stored {connection} {name} (encrypted)")


@secrets.command("remove")
@config_option
@click.argument("connection")
@click.argument("name")
@handle_errors
def remove_command(config_path: str, connection: str, name: str) -> None:
    """Forget secret NAME of CONNECTION."""

    async def go() -> None:
        async with Engine.open(config_path) as engine:
            await engine.set_secrets(connection, {name: None})

    run(go)
    console.print(f"removed {connection} {name}")


@secrets.command("list")
@config_option
@handle_errors
def list_command(config_path: str) -> None:
    """The names of the stored secrets of every connection (never their values)."""

    async def go() -> dict[str, list[str]]:
        async with Engine.open(config_path) as engine:
            return {name: engine.secret_names(name) for name in engine.config.connections}

    for connection, names in run(go).items():
        console.print(f"{connection}: {', '.join(names) or '(none stored)'}")
