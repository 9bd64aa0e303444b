"""``salync status`` and ``salync records``: reading the mirror, never a platform."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click
import orjson
from rich.table import Table

from salync_core.cli.app import config_option, console, handle_errors, labelled
from salync_core.config import Config, load_config
from salync_core.models import ENTITY_TYPES
from salync_core.store import Store
from salync_core.store.reading import iter_records
from salync_core.store.status import check_integrity
from salync_core.store.status import status as read_status


@contextlib.contextmanager
def open_store(config_path: str) -> Iterator[tuple[Config, Store]]:
    config = load_config(config_path)
    store = Store(config.store_path, create=False)
    try:
        yield config, store
    finally:
        store.close()


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status(config_path: str, as_json: bool) -> None:
    """What the mirror holds and how each connection's last run went (after a quick integrity
    check of the file, which says what to do if it is damaged)."""
    with open_store(config_path) as (config, store):
        check_integrity(store.conn, store.path)
        data = read_status(store.conn, list(config.connections))
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    records = Table("entity", "live", "deleted", title="Mirror")
    for entity, counts in data["records"].items():
        records.add_row(entity, str(counts["live"]), str(counts["deleted"]))
    console.print(records)
    console.print(
        f"change log at seq {data['last_seq']}, {data['tombstones']} tombstone(s), "
        f"{data['open_conflicts']} open conflict(s)"
    )
    table = Table(
        "connection",
        "last run",
        "status",
        "finished",
        "requests today",
        "429s",
        "retries",
        "dead letters",
        "outbox",
        title="Connections",
    )
    for name, info in data["connections"].items():
        last = info["last_run"] or {}
        ledger = info["requests_today"]
        table.add_row(
            name,
            last.get("kind", "never"),
            last.get("status", "-"),
            last.get("finished_at") or "-",
            str(ledger["requests"]),
            str(ledger["throttled"]),
            str(ledger["retries"]),
            str(info["dead_letters"]),
            f"{info['outbox']['pending']} pending / {info['outbox']['dead']} dead",
        )
    console.print(table)
    for name, info in data["connections"].items():
        error = (info["last_run"] or {}).get("error")
        if error:
            console.print(labelled(f"{name}:", "red", error), soft_wrap=True)
        if info.get("needs_reconnect"):
            hint = f"needs reconnecting: run `salync connect {name}`"
            console.print(labelled(f"{name}:", "red", hint), soft_wrap=True)


@click.command()
@config_option
@click.argument("entity", type=click.Choice(sorted(ENTITY_TYPES)))
@click.option("--json", "as_json", is_flag=True, help="JSON lines of canonical records.")
@click.option("--deleted", is_flag=True, help="Include tombstoned records.")
@click.option("--limit", type=int, default=None, help="At most this many records.")
@handle_errors
def records(config_path: str, entity: str, as_json: bool, deleted: bool, limit: int | None) -> None:
    """The canonical records of ENTITY in the mirror."""
    with open_store(config_path) as (_, store):
        rows = iter_records(store.conn, entity, deleted=deleted, limit=limit)
        if as_json:
            for record in rows:
                sys.stdout.write(orjson.dumps(record).decode() + "\n")
            return
        table = Table("ref", "title", "status", "modified", *(["deleted"] if deleted else []))
        for record in rows:
            title = record.get("title") or {}
            name = (
                (title.get("en") or next(iter(title.values()), ""))
                if isinstance(title, dict)
                else ""
            )
            row = [
                record["ref"],
                name,
                str(record.get("status") or ""),
                str(record.get("modified_at") or ""),
            ]
            table.add_row(*row, *(["yes" if record["deleted"] else ""] if deleted else []))
        console.print(table)
