"""One Sales Layer 1.18 emulator serving many accounts: each account's connectors, signed
with its own secrets, export and import its own catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from salync_saleslayer.emulator118 import BOM, SalesLayer118Emulator, signature

from salync_core import Engine
from salync_core.testing.accounts import build_accounts
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

MEMORY_PER_ACCOUNT = 300 * 1024
"""Resident bytes one account of 10 products may add (measured: about 60 KiB)."""


@pytest.fixture
async def pim() -> AsyncIterator[SalesLayer118Emulator]:
    emulator = SalesLayer118Emulator(products=8, seed=5, accounts=3)
    async with emulator.running():
        yield emulator


async def export(pim: SalesLayer118Emulator, code: str, secret: str) -> dict[str, Any]:
    """A signed refresh of one export connector, every item on one page."""
    now, unique = str(int(datetime.now(UTC).timestamp())), "41"
    params = {
        "code": code,
        "time": now,
        "unique": unique,
        "key256": signature(code, secret, now, unique),
        "ver": "1.18",
        "group_category_id": "1",
    }
    async with aiohttp.ClientSession() as http, http.get(pim.root_url, params=params) as answer:
        data: dict[str, Any] = orjson.loads((await answer.read()).removeprefix(BOM))
        return data


def names(answer: dict[str, Any]) -> dict[str, str]:
    """Each exported product's English name by reference."""
    schema = answer["data_schema"]["products"]
    columns = [next(iter(c)) if isinstance(c, dict) else c for c in schema]
    at = columns.index("product_name_en")
    return {row[2]: row[at] for row in answer["data"]["products"]}


async def test_each_accounts_connector_exports_its_own_catalog(pim: SalesLayer118Emulator) -> None:
    answers = []
    for account in range(3):
        options = pim.account_options(account)
        answers.append(await export(pim, options["connector_code"], options["secret_key"]))

    assert pim.account_options(0)["connector_code"] == "CN118EXPORT"
    assert all("error" not in answer for answer in answers)
    assert set(names(answers[0])) == pim.live_refs("products")
    assert names(answers[0]) != names(answers[1])
    assert names(answers[1]) != names(answers[2])


async def test_an_accounts_code_signed_with_another_accounts_secret_is_refused(
    pim: SalesLayer118Emulator,
) -> None:
    theirs, mine = pim.account_options(0), pim.account_options(1)

    assert (await export(pim, mine["connector_code"], theirs["secret_key"]))["error"] == 9
    beyond = theirs["connector_code"] + "-acct3"  # accounts are 0, 1 and 2
    assert (await export(pim, beyond, theirs["secret_key"]))["error"] == 2


async def test_injected_errors_reach_only_the_account_they_name(
    pim: SalesLayer118Emulator,
) -> None:
    url = f"{pim.root_url}/_emulator/errors?account=2"
    async with aiohttp.ClientSession() as http, http.post(url, json={"codes": [14]}) as answer:
        assert answer.status == 200

    options = [pim.account_options(account) for account in range(3)]
    assert "error" not in await export(pim, options[0]["connector_code"], options[0]["secret_key"])
    assert (await export(pim, options[2]["connector_code"], options[2]["secret_key"]))[
        "error"
    ] == 14
    assert set(pim.stats_json()["accounts"]) == {"0", "2"}


async def test_two_accounts_sync_into_two_mirrors(
    pim: SalesLayer118Emulator, tmp_path: Path
) -> None:
    for account in (0, 1):
        directory = tmp_path / f"account-{account}"
        directory.mkdir()
        connection = {**pim.account_options(account), "import_poll_seconds": 0.0}
        config = write_config(directory, {"pim": connection})
        async with Engine.open(config) as engine:
            (report,) = await engine.sync()
            assert report.ok, report.problems
            with pim.as_account(account):
                assert {r["ref"] for r in engine.records("product")} == pim.live_refs("products")
                expected = pim.item("products", "PRD-000001")
            assert expected is not None
            mirrored = engine.get("product", "PRD-000001")
            assert mirrored.title == expected["product_name"]


def test_two_hundred_accounts_fit_in_a_small_memory_budget() -> None:
    emulator = SalesLayer118Emulator(products=10, accounts=201)

    grown = build_accounts(emulator, range(1, 201))

    assert emulator.created_accounts == list(range(201))
    assert grown < 200 * MEMORY_PER_ACCOUNT
