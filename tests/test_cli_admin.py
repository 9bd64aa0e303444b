"""Putting things right from the command line: `salync outbox`, `salync dead-letters`, and
`salync sync --no-push / --dry-run`, against a Sales Layer emulator serving in a thread."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from cli_support import invoke, serving
from click.testing import Result
from salync_saleslayer.emulator import SalesLayerEmulator
from salync_saleslayer.platform import SalesLayerPlatform
from support import SL_KEY

from salync_core import Engine
from salync_core.errors import DataError
from salync_core.platform import ConnectionContext, Record, Reject, Stream
from salync_core.testing.config import write_config


@pytest.fixture
def pim() -> Iterator[SalesLayerEmulator]:
    emulator = SalesLayerEmulator(products=30, seed=1, api_key=SL_KEY, rate_limit=False)
    with serving(emulator):
        yield emulator


@pytest.fixture
def config(tmp_path: Path, pim: SalesLayerEmulator) -> Path:
    return write_config(
        tmp_path,
        {
            "pim": {
                "plugin": "saleslayer",
                "base_url": pim.base_url,
                "api_key": SL_KEY,
                "push": ["product"],
            }
        },
    )


def salync(*args: str) -> Result:
    return invoke(args)


def upsert(config: Path, key: str, fields: dict[str, Any]) -> None:
    """An edit from the host app."""

    async def go() -> None:
        async with Engine.open(config) as engine:
            await engine.upsert("product", key, fields)

    anyio.run(go, backend="asyncio")


def product_title(pim: SalesLayerEmulator, ref: str) -> Any:
    product = pim.product_by_ref(ref)
    assert product is not None
    return product["prod_title"]


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def enable_culture(pim: SalesLayerEmulator, culture: str) -> None:
    """The PIM's administrator enables another culture on the account."""
    pim.locales = (*pim.locales, culture)
    pim._cultures[culture] = culture


def test_a_refused_push_is_sent_again_by_outbox_retry_once_the_cause_is_fixed(
    config: Path, pim: SalesLayerEmulator
) -> None:
    assert salync("sync", "--config", str(config), "--no-progress").exit_code == 0
    upsert(config, "PRD-000003", {"title": {"de": "Becher"}})  # the PIM has no German yet

    refused = salync("push", "--config", str(config))
    dead = json_lines(salync("outbox", "list", "--config", str(config), "--json"))
    letters = json_lines(salync("dead-letters", "list", "--config", str(config), "--json"))
    again = salync("push", "--config", str(config), "--dry-run")

    assert refused.exit_code == 1, refused.stdout
    assert [(r["key"], r["status"]) for r in dead] == [("PRD-000003", "dead")]
    assert "Unknown culture de" in dead[0]["last_error"]
    assert [(x["stream"], x["page"]) for x in letters] == [("push:product", "PRD-000003")]
    assert "a push would send 0 write(s)" in again.stdout  # never planned again on its own

    enable_culture(pim, "de")  # the cause is fixed
    retried = salync("outbox", "retry", "--config", str(config))
    pushed = salync("push", "--config", str(config))

    assert retried.exit_code == 0
    assert retried.stdout.startswith("queued 1 push(es) again")
    assert pushed.exit_code == 0, pushed.stdout
    assert product_title(pim, "PRD-000003")["de"] == "Becher"
    assert json_lines(salync("outbox", "list", "--config", str(config), "--json")) == []
    assert json_lines(salync("dead-letters", "list", "--config", str(config), "--json")) == []


def test_dead_letters_retry_queues_a_refused_push_again(
    config: Path, pim: SalesLayerEmulator
) -> None:
    assert salync("sync", "--config", str(config), "--no-progress").exit_code == 0
    upsert(config, "PRD-000004", {"title": {"de": "Teller"}})
    assert salync("push", "--config", str(config)).exit_code == 1
    (letter,) = json_lines(salync("dead-letters", "list", "--config", str(config), "--json"))

    enable_culture(pim, "de")
    retried = salync("dead-letters", "retry", str(letter["id"]), "--config", str(config))
    pushed = salync("push", "--config", str(config))

    assert retried.exit_code == 0, retried.stdout
    assert retried.stdout.startswith("re-applied 0 record(s); queued 1 push(es) again")
    assert pushed.exit_code == 0, pushed.stdout
    assert product_title(pim, "PRD-000004")["de"] == "Teller"


def rejecting(ref: str) -> Any:
    """A plugin bug: the product ``ref`` is rejected though nothing is wrong with it."""
    original = SalesLayerPlatform.map_inbound

    def map_inbound(
        platform: SalesLayerPlatform, ctx: ConnectionContext, stream: Stream, item: Any
    ) -> Iterable[Record | Reject]:
        if isinstance(item, dict) and item.get("prod_ref") == ref:
            raise DataError("a bug in the plugin")
        return original(platform, ctx, stream, item)

    return map_inbound


def test_dead_letters_that_map_now_are_applied_and_the_others_stay(
    config: Path, pim: SalesLayerEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pim.corrupt("Products", 7, "prod_title", "not a map of cultures")
    monkeypatch.setattr(
        SalesLayerPlatform,
        "map_inbound",
        rejecting("PRD-000009"),
    )
    synced = salync("sync", "--config", str(config), "--no-progress")
    letters = json_lines(salync("dead-letters", "list", "--config", str(config), "--json"))
    shown = salync("dead-letters", "show", str(letters[0]["id"]), "--config", str(config))
    monkeypatch.undo()  # the plugin is fixed

    retried = salync("dead-letters", "retry", "--all", "--config", str(config))
    records = json_lines(salync("records", "product", "--config", str(config), "--json"))
    left = json_lines(salync("dead-letters", "list", "--config", str(config), "--json"))

    assert synced.exit_code == 1
    assert len(letters) == 2
    assert '"prod_id": 7' in shown.stdout
    assert retried.exit_code == 1  # one still fails
    assert retried.stdout.splitlines()[0] == "re-applied 1 record(s); queued 0 push(es) again"
    assert retried.stdout.splitlines()[1].startswith(f"still failing #{letters[0]['id']}:")
    assert "PRD-000009" in {r["ref"] for r in records}
    assert [x["id"] for x in left] == [letters[0]["id"]]


def test_no_push_reads_only_and_dry_run_prints_what_would_be_sent(
    config: Path, pim: SalesLayerEmulator
) -> None:
    assert salync("sync", "--config", str(config), "--no-progress").exit_code == 0
    upsert(config, "PRD-000003", {"title": {"en": "Renamed [bold]mug[/]"}})
    title = product_title(pim, "PRD-000003")

    read_only = salync("sync", "--config", str(config), "--no-progress", "--no-push")
    dry = salync("sync", "--config", str(config), "--no-progress", "--dry-run")
    preview = salync("push", "--config", str(config), "--dry-run")

    assert read_only.exit_code == 0
    assert "push" not in [line.split()[3] for line in read_only.stdout.splitlines()[3:4]]
    assert dry.exit_code == 0, dry.output
    assert "dry run: a push would send 1 write(s); nothing was sent" in dry.stdout
    assert "pim: upsert product PRD-000003:" in dry.stdout
    assert "Renamed [bold]mug[/]" in dry.stdout
    assert preview.stdout == dry.stdout[dry.stdout.index("dry run") :]
    assert product_title(pim, "PRD-000003") == title  # nothing sent


def test_sync_help_says_it_writes_to_the_remote_systems() -> None:
    result = salync("sync", "--help")
    assert "WRITE to the remote systems" in " ".join(result.stdout.split())
    assert "--no-push" in result.stdout
    assert "--dry-run" in result.stdout
