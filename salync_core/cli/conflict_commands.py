"""``salync conflicts``, ``salync explain`` and ``salync push``."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson
from attrs import asdict
from rich.table import Table
from rich.text import Text

from salync_core.cli.app import config_option, console, handle_errors, run
from salync_core.cli.sync_commands import exit_for, print_preview, print_reports
from salync_core.conflicts.policies import MISSING
from salync_core.engine import Engine, RunReport
from salync_core.engine.admin import preview_push
from salync_core.engine.conflicts import Conflict
from salync_core.errors import ConflictError
from salync_core.models import ENTITY_TYPES


def _json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _show(conflict: Conflict) -> None:
    console.print(
        Text.assemble(
            f"conflict #{conflict.id}: {conflict.entity} {conflict.key!r} field ",
            (conflict.field, "bold"),
            f" ({conflict.status}, opened {conflict.created_at})",
        )
    )
    for origin, value in sorted(conflict.candidates.items()):
        console.print(f"  {origin}: {orjson.dumps(value).decode()}", soft_wrap=True)
    if conflict.resolution:
        console.print(f"  resolution: {orjson.dumps(conflict.resolution).decode()}")


@click.group()
def conflicts() -> None:
    """List, show and resolve conflicts opened by `manual` field policies."""


@conflicts.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Resolved ones too.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def list_command(config_path: str, show_all: bool, as_json: bool) -> None:
    """Open conflicts, oldest first."""

    async def go() -> list[Conflict]:
        async with Engine.open(config_path) as engine:
            return engine.conflicts(None if show_all else "open")

    found = run(go)
    if as_json:
        _json([_as_dict(c) for c in found])
        return
    table = Table("id", "entity", "key", "field", "candidates", "status")
    for c in found:
        table.add_row(
            str(c.id), c.entity, c.key, c.field, ", ".join(sorted(c.candidates)), c.status
        )
    console.print(table)


def _as_dict(conflict: Conflict) -> dict[str, Any]:
    return asdict(conflict)


@conflicts.command("show")
@config_option
@click.argument("conflict_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def show_command(config_path: str, conflict_id: int, as_json: bool) -> None:
    """One conflict with every candidate value."""

    async def go() -> Conflict:
        async with Engine.open(config_path) as engine:
            return engine.conflict(conflict_id)

    conflict = run(go)
    if as_json:
        _json(_as_dict(conflict))
    else:
        _show(conflict)


@conflicts.command("resolve")
@config_option
@click.argument("conflict_id", type=int)
@click.option("--take", default=None, help="Keep this connection's value.")
@click.option("--value", "value_json", default=None, help="Set this value (JSON).")
@handle_errors
def resolve_command(
    config_path: str, conflict_id: int, take: str | None, value_json: str | None
) -> None:
    """Settle a conflict; the chosen value flows to every system on the next push."""
    value: Any = MISSING
    if value_json is not None:
        try:
            value = orjson.loads(value_json)
        except orjson.JSONDecodeError as exc:
            raise ConflictError(f"--value is not JSON: {exc}") from None

    async def go() -> Conflict:
        async with Engine.open(config_path) as engine:
            return await engine.resolve_conflict(conflict_id, take=take, value=value)

    _show(run(go))


@click.command()
@config_option
@click.argument("entity", type=click.Choice(sorted(ENTITY_TYPES)))
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def explain(config_path: str, entity: str, key: str, as_json: bool) -> None:
    """Field by field: the value of ENTITY KEY, where it came from and the rule that decided."""

    async def go() -> dict[str, Any]:
        async with Engine.open(config_path) as engine:
            return engine.explain(entity, key)

    data = run(go)
    if as_json:
        _json(data)
    else:
        print_explanation(data)


def print_explanation(data: dict[str, Any], *, compact: bool = False) -> None:
    """``explain`` as a table: each field's value, origin, the rule that decided, who holds it
    (``compact``: value, origin and rule only)."""
    state = "deleted" if data["deleted"] else "live"
    console.print(f"{data['entity']} {data['key']!r} ({state}, last change seq {data['seq']})")
    if compact:
        table = Table("field", "value", "set by", "decided by")
        for f in data["fields"]:
            value = orjson.dumps(f["value"]).decode()
            table.add_row(f["field"], value[:48], f["origin"] or "-", f["decided_by"] or "-")
        console.print(table)
        return
    table = Table("field", "value", "origin", "source time", "decided by", "policy now", "held by")
    for f in data["fields"]:
        value = orjson.dumps(f["value"]).decode()
        held = ", ".join(
            f"{c}{'' if v == f['value'] else ' (differs)'}" for c, v in sorted(f["held_by"].items())
        )
        table.add_row(
            f["field"],
            value[:60],
            f["origin"] or "-",
            f["source_time"] or "-",
            f["decided_by"] or "-",
            f"{f['policy']} ({f['configured_in']})",
            held,
        )
    console.print(table)
    if data["open_conflicts"]:
        console.print(f"open conflicts: {', '.join(f'#{i}' for i in data['open_conflicts'])}")


@click.command()
@config_option
@click.argument("connections", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
@handle_errors
def push(config_path: str, connections: tuple[str, ...], dry_run: bool) -> None:
    """WRITE to the remote systems: send CONNECTIONS (every one with `push` configured by
    default) the changes they lack."""

    async def go() -> list[RunReport]:
        async with Engine.open(config_path) as engine:
            return await engine.push(list(connections) or None)

    async def preview() -> list[dict[str, Any]]:
        async with Engine.open(config_path) as engine:
            return await preview_push(engine, list(connections) or None)

    if dry_run:
        print_preview(run(preview))
        return
    reports = run(go)
    print_reports(reports)
    exit_for(reports)
