"""A configured connection brought to life: its platform, its HTTP client, its context."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import define

from salync_core import plugins
from salync_core.config import ConnectionConfig
from salync_core.errors import ConfigError
from salync_core.hints import did_you_mean
from salync_core.http import HttpClient, RetryPolicy, TokenStore
from salync_core.platform import ConnectionContext, Platform
from salync_core.secrets import Secret


@define
class LiveConnection:
    """Everything the engine needs to talk to one connection."""

    config: ConnectionConfig
    platform: Platform
    http: HttpClient
    ctx: ConnectionContext

    @property
    def name(self) -> str:
        return self.config.name

    async def close(self) -> None:
        await self.http.close()


ROTATING = frozenset({"access_token", "refresh_token", "expires_at"})
"""Secrets a platform replaces over time: the stored (newest) value wins over the file's."""


def resolve_options(
    config: ConnectionConfig, platform: Platform, stored: Mapping[str, Secret]
) -> dict[str, Any]:
    """Plugin options with secrets filled in: from the file or environment, else the store
    (the store first for tokens a platform rotates)."""
    options: dict[str, Any] = dict(config.options)
    declared = {n for n, option in platform.declared_options().items() if option.secret}
    for name in {*declared, *config.secrets, *stored}:
        ref = config.secrets.get(name)
        if name in ROTATING and name in stored:
            options[name] = stored[name]
            continue
        secret = ref.resolve(f"[connections.{config.name}] {name}") if ref else None
        secret = secret or stored.get(name)
        if secret is not None:
            options[name] = secret
    return options


def open_connection(
    config: ConnectionConfig,
    stored: Mapping[str, Secret],
    requests_today: int,
    token_store: Callable[[], TokenStore],
) -> LiveConnection:
    """Build the platform, client and context of a connection (no request is sent yet)."""
    options = resolve_options(config, plugins.platform(config.plugin), stored)
    platform = plugins.platform(config.plugin).for_connection(options)
    credentials = platform.credentials(options)
    if credentials.scheme != "none" and credentials.secret is None:
        raise ConfigError(_no_credentials(config.name, platform))
    http = HttpClient(
        connection=config.name,
        base_url=config.base_url,
        credentials=credentials,
        limits=config.rate_limits or platform.limits(options),
        time_scale=config.time_scale,
        requests_today=requests_today,
        retry=RetryPolicy(attempts=config.retry_attempts),
        ca_file=config.ca_file,
        token_store=token_store() if credentials.scheme == "oauth2" else None,
        platform=config.plugin,
    )
    ctx = ConnectionContext(
        name=config.name,
        base_url=config.base_url,
        options=options,
        http=http,
        locale=config.locale,
        directory=config.directory,
    )
    return LiveConnection(config, platform, http, ctx)


def check_secret_names(config: ConnectionConfig, names: Iterable[str]) -> None:
    """Refuse to store a secret the connection's platform would never read (a typo)."""
    declared = plugins.platform(config.plugin).declared_options()
    known = {name for name, option in declared.items() if option.secret} | ROTATING
    for name in names:
        if name not in known:
            raise ConfigError(
                f"[connections.{config.name}]: {config.plugin} takes no secret {name!r}"
                f"{did_you_mean(name, known)} (its secrets: {', '.join(sorted(known))})"
            )


def _no_credentials(connection: str, platform: Platform) -> str:
    """Which key to set, by the name the platform declares (``api_key`` unless it says)."""
    declared = platform.declared_options()
    key = next((name for name, option in declared.items() if option.secret), "api_key")
    command = f"salync secrets set {connection}" + ("" if key == "api_key" else f" {key}")
    return (
        f"[connections.{connection}]: no credentials; set {key} in salync.toml "
        f'(a literal or "env:VARIABLE") or store one with `{command}`'
    )


def today() -> str:
    return datetime.now(UTC).date().isoformat()
