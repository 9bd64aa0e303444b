"""The emulator kit's accounts: credentials that name an account, and `salync emulate --accounts`.

Each built-in emulator's own tests show its accounts kept apart (data, limits, admin routes);
these cover what they all share.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import aiohttp
import anyio
import orjson
import pytest
from salync_saleslayer.emulator import SalesLayerEmulator

from salync_core.testing import Faults
from salync_core.testing.accounts import account_credential, account_seed, credential_account


def test_a_credential_names_its_account_and_nothing_else_does() -> None:
    assert [account_credential("key", i) for i in (0, 1, 12)] == ["key", "key-acct1", "key-acct12"]
    assert [credential_account("key", c, 13) for c in ("key", "key-acct1", "key-acct12")] == [
        0,
        1,
        12,
    ]
    for stranger in ("key-acct13", "key-acct0", "key-acct01", "kez-acct1", "key-acct-1", ""):
        assert credential_account("key", stranger, 13) is None, stranger


def test_each_account_has_a_reproducible_seed_of_its_own() -> None:
    assert account_seed(7, 0) == 7
    assert account_seed(7, 1) == account_seed(7, 1)
    assert len({account_seed(seed, i) for seed in (0, 1) for i in range(1, 100)}) == 198


@pytest.mark.anyio
async def test_an_admin_route_refuses_an_account_the_emulator_does_not_serve() -> None:
    emulator = SalesLayerEmulator(products=3, accounts=2)
    async with emulator.running(), aiohttp.ClientSession() as http:
        for account in ("2", "-1", "x"):
            url = f"{emulator.root_url}/_emulator/stats?account={account}"
            async with http.get(url) as response:
                assert response.status == 400
                assert "account must be 0 to 1" in (await response.json())["message"]


def test_salync_emulate_serves_accounts_and_says_where_their_options_are() -> None:
    command = [sys.executable, "-m", "salync_core", "emulate", "salla", "--accounts", "3"]
    with subprocess.Popen([*command, "--products", "3"], stdout=subprocess.PIPE, text=True) as run:
        assert run.stdout is not None
        lines = [run.stdout.readline().rstrip("\n")]
        while lines[-1] != "stop with Ctrl-C" and lines[-1:] != [""]:
            lines.append(run.stdout.readline().rstrip("\n"))
        url = lines[0].removesuffix("/admin/v2") + "/_emulator/account?account=2"
        with urllib.request.urlopen(url) as answer:
            options = orjson.loads(answer.read())["options"]
        token = options["access_token"]
        request = urllib.request.Request(
            lines[0] + "/products", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request) as answer:
            products = orjson.loads(answer.read())["data"]
        run.terminate()

    expected = "accounts: 3; GET /_emulator/account?account=N gives account N's connection options"
    assert expected in lines
    assert options["plugin"] == "salla"
    assert len(products) == 3


@pytest.mark.anyio
async def test_requests_answered_at_once_each_keep_their_own_account() -> None:
    """Account 1's request waits inside the emulator (a slow answer armed for it alone) while
    account 2's arrives and waits longer; each still gets its own account's catalog."""
    emulator = SalesLayerEmulator(products=3, accounts=3, rate_limit=False)
    emulator.account_faults[1] = Faults(slow_seconds=0.2)
    emulator.account_faults[2] = Faults(slow_seconds=0.4)
    titles: dict[int, str] = {}

    async def title(account: int) -> None:
        headers = {"X-API-KEY": emulator.account_options(account)["api_key"]}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.get(emulator.base_url + "/Products(1)?$select=prod_title") as response,
        ):
            titles[account] = (await response.json())["prod_title"]["en"]

    async with emulator.running():
        async with anyio.create_task_group() as group:
            group.start_soon(title, 1)
            # until account 1's request is being answered (the emulator has no event for it)
            while 1 not in emulator.account_stats:  # noqa: ASYNC110
                await anyio.sleep(0.005)
            group.start_soon(title, 2)
        for account in (1, 2):
            with emulator.as_account(account):
                expected = emulator.product_by_ref("PRD-000001")
            assert expected is not None
            assert titles[account] == expected["prod_title"]["en"]
    assert emulator.stats.max_in_flight == 2
