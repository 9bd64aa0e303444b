"""``salync init`` and ``salync emulate``."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import click

from salync_core import plugins
from salync_core.cli.app import EXIT_CONFIG, console, fail, handle_errors
from salync_core.config import KEY_FILE
from salync_core.secrets import KEY_ENV, create_key_file

TEMPLATE = """\
# Salync Core configuration: a starter that syncs against the built-in emulators. Start them
# first, each in a terminal of its own (each prints its URL, the API key it accepts and its
# plan):
#
#   salync emulate saleslayer --port {pim_port}
#   salync emulate salync --port {inventory_port}
#
# then run `salync sync`, `salync status` and `salync records product`. For the real systems,
# change each base_url and give the real key as "env:VARIABLE" or with
# `salync secrets set CONNECTION` (never as a literal in a file you share).
# The README describes every key; a mistyped key is refused with a hint.
[store]
path = "salync.db"

[sync]
mass_delete_threshold = 0.10   # a reconcile refuses to delete more than this share of a stream

[connections.pim]
plugin = "saleslayer"
# real: base_url = "https://api2.saleslayer.com/rest/Catalog", api_key = "env:SL_API_KEY"
base_url = "http://127.0.0.1:{pim_port}/rest/Catalog"
api_key = "{pim_key}"  # the emulator's key
locale = "en"
attributes = ["prod_brand"]    # catalog fields to keep in `attributes`; "*" for all
# push = ["product"]           # write product changes back to the PIM

[connections.inventory]
plugin = "salync"
# real: base_url = "https://api.salync.com/v1", api_key = "env:SALYNC_API_KEY"
base_url = "http://127.0.0.1:{inventory_port}/v1"
api_key = "{inventory_key}"  # the emulator's key
plan = "{inventory_plan}"  # the default, as `salync emulate salync` serves
# push = ["product", "stock_adjustment", "stock_level"]

[policies]
default = "last_writer_wins"

[policies.product]
title = {{ owner = "pim" }}
description = {{ owner = "pim" }}
cost_price = {{ owner = "inventory" }}
"""

EMULATOR_DEFAULTS = {
    "pim_key": "sl-test-key",
    "inventory_key": "sk_test_1",
    "inventory_plan": "growth",
}
"""What the emulators accept when started without options (checked by the tests)."""


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Where to write salync.toml.",
)
@click.option("--pim-port", type=int, default=8701, show_default=True, help="Sales Layer emulator.")
@click.option(
    "--inventory-port", type=int, default=8702, show_default=True, help="Salync emulator."
)
@handle_errors
def init(directory: Path, pim_port: int, inventory_port: int) -> None:
    """Write a starter salync.toml (never overwriting one) that syncs against the emulators
    (its comments say how to start them), and a key file that encrypts stored secrets."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "salync.toml"
    if config.exists():
        fail(f"{config} already exists; not overwriting it", EXIT_CONFIG)
    text = TEMPLATE.format(pim_port=pim_port, inventory_port=inventory_port, **EMULATOR_DEFAULTS)
    config.write_text(text, encoding="utf-8")
    console.print(f"wrote {config}")
    key = directory / KEY_FILE
    if key.exists() or os.environ.get(KEY_ENV):
        console.print(f"secret key: {'$' + KEY_ENV if os.environ.get(KEY_ENV) else key} (kept)")
    else:
        create_key_file(key)
        console.print(
            f"wrote {key} (mode 0600): it encrypts stored secrets; back it up, never commit it"
        )


@click.command()
@click.argument("platform")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="0 picks a free port.")
@click.option("--products", type=int, default=None, help="Catalog size (of each account).")
@click.option(
    "--accounts",
    type=click.IntRange(min=1),
    default=None,
    help="Accounts to serve, each with its own credentials, data and limits.",
)
@click.option("--profile", default=None, help="Catalog shape where supported (heavy).")
@click.option("--seed", type=int, default=None, help="Seed of the generated catalog.")
@click.option("--api-key", default=None, help="The key the emulator accepts.")
@click.option("--api", default=None, help="The API version, for a platform with several (1.18).")
@click.option("--client-id", default=None, help="The OAuth client id it accepts (OAuth platforms).")
@click.option("--client-secret", default=None, help="The OAuth client secret it accepts.")
@click.option("--plan", default=None, help="Plan whose limits apply (platforms with plans).")
@click.option("--time-scale", type=float, default=None, help="Run platform time this much faster.")
@click.option("--rate-limit/--no-rate-limit", default=None, help="Enforce the platform's limits.")
@click.option(
    "--tls", is_flag=True, default=None, help="Serve HTTPS (self-signed) where supported."
)
@handle_errors
def emulate(platform: str, host: str, port: int, **options: Any) -> None:
    """Run PLATFORM's emulator on loopback until stopped (Ctrl-C)."""
    emulators = plugins.emulators()
    api = options.pop("api")
    platform = f"{platform}-{api}" if api else platform
    if platform not in emulators:
        fail(
            f"no emulator for {platform!r} (installed: {', '.join(sorted(emulators)) or 'none'})",
            EXIT_CONFIG,
        )
    cls = emulators[platform]
    chosen = _constructor_args(cls, {k: v for k, v in options.items() if v is not None})
    emulator = cls(**chosen)
    facts = _facts(cls, chosen)

    def announce(url: str) -> None:
        console.print(url, soft_wrap=True)  # the first line: scripts and tests read it
        for line in facts:
            console.print(line, soft_wrap=True)

    emulator.serve_forever(host, port, announce=announce)


def _facts(cls: type[Any], chosen: dict[str, Any]) -> list[str]:
    """What a client needs besides the URL: the key(s) or OAuth client it accepts, the secret
    its webhooks are signed with, and the plan it serves (all test values of the emulator)."""
    parameters = inspect.signature(cls).parameters

    def value(name: str) -> Any:
        if name in chosen:
            return chosen[name]
        parameter = parameters.get(name)
        return None if parameter is None else parameter.default

    facts = []
    keys = value("api_keys") or ([value("api_key")] if value("api_key") else [])
    if keys:
        facts.append(f"accepts api_key: {', '.join(keys)}")
    if value("client_id"):
        facts.append(
            f"accepts client_id: {value('client_id')}, client_secret: {value('client_secret')}"
        )
    for code, secret in (("connector_code", "secret_key"), ("import_code", "import_secret")):
        if value(code):
            facts.append(f"accepts {code}: {value(code)}, {secret}: {value(secret)}")
    if value("webhook_secret"):
        facts.append(f"signs webhooks with: {value('webhook_secret')}")
    if value("plan"):
        facts.append(f"plan: {value('plan')}")
    if value("rate_limit") is False:
        facts.append("rate limits: off")
    if (value("accounts") or 1) > 1:
        facts.append(
            f"accounts: {value('accounts')}; GET /_emulator/account?account=N gives account N's"
            " connection options"
        )
    facts.append("stop with Ctrl-C")
    return facts


def _constructor_args(cls: type[Any], options: dict[str, Any]) -> dict[str, Any]:
    """Pass each option the emulator understands; refuse the ones it does not."""
    accepted = inspect.signature(cls).parameters
    if "api_key" in options and "api_key" not in accepted and "api_keys" in accepted:
        options["api_keys"] = [options.pop("api_key")]
    unknown = [name for name in options if name not in accepted]
    if unknown:
        flags = ", ".join("--" + n.replace("_", "-") for n in unknown)
        fail(f"the {cls.name} emulator does not take {flags}", EXIT_CONFIG)
    return options
