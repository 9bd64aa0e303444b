"""``salync dead-letters`` and ``salync outbox``: see what was refused, and retry it once the
cause is fixed."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
import orjson
from rich.table import Table

from salync_core.cli.app import config_option, console, handle_errors, labelled, run
from salync_core.engine import Engine
from salync_core.engine.admin import RetryOutcome, requeue_outbox, retry_dead_letters
from salync_core.store.outbox_admin import dead_letters as read_letters
from salync_core.store.outbox_admin import list_outbox

connection_option = click.option(
    "--connection", "connection", default=None, help="Only this connection's."
)
json_option = click.option("--json", "as_json", is_flag=True, help="JSON lines.")


def write_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, default=str).decode() + "\n")


def _short(text: Any, width: int = 60) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


@click.group("dead-letters")
def dead_letters() -> None:
    """Records a platform sent that could not be mapped, and pushes a platform refused."""


@dead_letters.command("list")
@config_option
@connection_option
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@handle_errors
def list_letters(config_path: str, connection: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, oldest first."""

    async def go() -> list[dict[str, Any]]:
        async with Engine.open(config_path) as engine:
            return read_letters(engine.store.reader, connection, (), limit)

    letters = run(go)
    if as_json:
        for letter in letters:
            write_json({k: v for k, v in letter.items() if k != "raw"})
        return
    table = Table("id", "connection", "stream", "page or key", "reason", "when")
    for letter in letters:
        table.add_row(
            str(letter["id"]),
            letter["connection"],
            letter["stream"],
            _short(letter["page"], 40),
            _short(letter["reason"]),
            letter["created_at"],
        )
    console.print(table)
    if not letters:
        console.print("no dead letters")


@dead_letters.command("show")
@config_option
@click.argument("letter_id", type=int)
@json_option
@handle_errors
def show_letter(config_path: str, letter_id: int, as_json: bool) -> None:
    """One dead letter with its reason and the payload kept whole."""

    async def go() -> list[dict[str, Any]]:
        async with Engine.open(config_path) as engine:
            return read_letters(engine.store.reader, None, [letter_id], 1)

    found = run(go)
    if not found:
        raise click.BadParameter(f"no dead letter #{letter_id}", param_hint="LETTER_ID")
    letter = found[0]
    if as_json:
        write_json(letter)
        return
    for name in ("id", "connection", "stream", "page", "reason", "run_id", "created_at"):
        console.print(f"{name}: {letter[name]}", soft_wrap=True)
    try:
        raw = orjson.dumps(orjson.loads(letter["raw"]), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        raw = letter["raw"]
    console.print("payload:")
    console.print(raw, soft_wrap=True)


@dead_letters.command("retry")
@config_option
@click.argument("letter_ids", type=int, nargs=-1)
@connection_option
@click.option("--all", "every", is_flag=True, help="Every dead letter (of --connection).")
@handle_errors
def retry_letters(
    config_path: str, letter_ids: tuple[int, ...], connection: str | None, every: bool
) -> None:
    """Apply dead letters again whose payload maps now (after a fix to a plugin or the
    configuration); queue refused pushes again for the next push. Give LETTER_IDS or --all."""
    if not letter_ids and not every:
        raise click.UsageError("name the dead letters to retry, or pass --all")

    async def go() -> RetryOutcome:
        async with Engine.open(config_path) as engine:
            return await retry_dead_letters(engine, connection, letter_ids)

    outcome = run(go)
    console.print(
        f"re-applied {outcome.reapplied} record(s); queued {outcome.requeued} push(es) again"
        + (" (sent by the next `salync push` or `salync sync`)" if outcome.requeued else "")
    )
    for letter_id, reason in outcome.still_failing:
        console.print(labelled(f"still failing #{letter_id}:", "yellow", reason), soft_wrap=True)
    if outcome.still_failing:
        sys.exit(1)


@click.group()
def outbox() -> None:
    """Writes waiting to be pushed, and pushes a platform refused ('dead')."""


@outbox.command("list")
@config_option
@connection_option
@click.option(
    "--status",
    "statuses",
    type=click.Choice(["pending", "dead", "acked"]),
    multiple=True,
    help="Only rows with this status (repeatable; default pending and dead).",
)
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@handle_errors
def list_rows(
    config_path: str,
    connection: str | None,
    statuses: Sequence[str],
    limit: int,
    as_json: bool,
) -> None:
    """Outbox rows, oldest first."""

    async def go() -> list[dict[str, Any]]:
        async with Engine.open(config_path) as engine:
            return list_outbox(
                engine.store.reader, connection, statuses or ("pending", "dead"), limit
            )

    rows = run(go)
    if as_json:
        for row in rows:
            write_json({**row, "fields": orjson.loads(row["fields"])})
        return
    table = Table("id", "connection", "op", "entity", "key", "status", "attempts", "last error")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["connection"],
            row["op"],
            row["entity"],
            row["key"],
            row["status"],
            str(row["attempts"]),
            _short(row["last_error"]),
        )
    console.print(table)
    if not rows:
        console.print("the outbox is empty")


@outbox.command("retry")
@config_option
@click.argument("row_ids", type=int, nargs=-1)
@connection_option
@handle_errors
def retry_rows(config_path: str, row_ids: tuple[int, ...], connection: str | None) -> None:
    """Queue dead pushes again (ROW_IDS, or every dead one); the next push sends them."""

    async def go() -> int:
        async with Engine.open(config_path) as engine:
            return await requeue_outbox(engine, connection, row_ids)

    count = run(go)
    console.print(
        f"queued {count} push(es) again; `salync push` or `salync sync` sends them"
        if count
        else "no dead pushes to retry"
    )
