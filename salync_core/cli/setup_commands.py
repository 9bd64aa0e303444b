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
# Salync Core configuration. See the README for every key.
[store]
path = "salync.db"

[sync]
mass_delete_threshold = 0.10   # reconcile refuses to delete more than this share of a stream

# [connections.pim]
# plugin = "saleslayer"
# base_url = "https://api2.saleslayer.com/rest/Catalog"
# api_key = "env:SL_API_KEY"      # or leave out and run `salync secrets set pim api_key`
# locale = "en"
# attributes = ["prod_brand"]     # catalog fields to keep in `attributes`; "*" for all

# [policies]
# default = "last_writer_wins"
# [policies.product]
# default = { owner = "pim" }
"""


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Where to write salync.toml.",
)
@handle_errors
def init(directory: Path) -> None:
    """Write a starter salync.toml (never overwriting one)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "salync.toml"
    if config.exists():
        fail(f"{config} already exists; not overwriting it", EXIT_CONFIG)
    config.write_text(TEMPLATE, encoding="utf-8")
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
@click.option("--products", type=int, default=None, help="Catalog size.")
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
    emulator = cls(**_constructor_args(cls, {k: v for k, v in options.items() if v is not None}))
    emulator.serve_forever(host, port, announce=lambda url: console.print(url, soft_wrap=True))


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
