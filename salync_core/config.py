"""``salync.toml``: where the mirror lives, which connections to sync, and the field policies.

::

    [store]
    path = "salync.db"              # relative to this file

    [connections.pim]
    plugin = "saleslayer"
    base_url = "https://api2.saleslayer.com/rest/Catalog"
    api_key = "env:SL_API_KEY"      # a literal, "env:VAR", or left out to use the encrypted store
    locale = "en"
    attributes = ["prod_brand"]     # anything else is an option the platform declares

A mistake names the file, the key and what was expected; a key nobody declares is refused with
the nearest known one ("did you mean 'push'?"), in every table. A connection's own keys are the
core's (:data:`CONNECTION_KEYS`) plus the options its platform declares
(:meth:`Platform.declared_options <salync_core.platform.Platform.declared_options>`), so the
plugins are loaded to read the file. Secrets are resolved only when a connection is used, so
``salync status`` works without them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from attrs import Factory, field, frozen

from salync_core import plugins
from salync_core.errors import ConfigError, PolicyError
from salync_core.hints import unknown
from salync_core.http.urls import check_url_security
from salync_core.models import ENTITY_TYPES
from salync_core.platform import Limits, Option, Platform, Window
from salync_core.secrets import Secret

CONFIG_FILE = "salync.toml"
KEY_FILE = "salync.key"
CONNECTION_KEYS = frozenset(
    {
        "plugin",
        "base_url",
        "locale",
        "time_scale",
        "ca_file",
        "streams",
        "push",
        "rate_limits",
        "retry_attempts",
    }
)
"""The keys of every ``[connections.NAME]`` table, whatever its platform."""
TABLES = {
    "store": frozenset({"path", "key_file"}),
    "sync": frozenset(
        {"mass_delete_threshold", "mass_delete_min", "interval", "map_processes", "write_process"}
    ),
    "connections": frozenset(),
    "policies": frozenset(),
}
"""The top-level tables and the keys of the fixed ones (connections and policies are checked
against the platforms and the policies)."""


@frozen
class SecretRef:
    """Where a secret comes from: a literal in the file, an environment variable, or the store."""

    source: str
    name: str = ""
    literal: Secret | None = field(default=None, repr=False)

    def resolve(self, where: str) -> Secret | None:
        """The secret, or ``None`` when it is to be read from the encrypted store."""
        if self.source == "env":
            value = os.environ.get(self.name)
            if not value:
                raise ConfigError(f"{where}: environment variable {self.name} is not set")
            return Secret(value)
        return self.literal


@frozen
class ConnectionConfig:
    """One ``[connections.NAME]`` table."""

    name: str
    plugin: str
    base_url: str
    locale: str = "en"
    time_scale: float = 1.0
    ca_file: str | None = None
    streams: tuple[str, ...] | None = None
    push: tuple[str, ...] = ()
    """Entities the engine writes to this connection (none: the connection is read-only)."""
    rate_limits: Limits | None = None
    """Overrides the platform's declared limits (a custom plan, or none for an emulator)."""
    retry_attempts: int = 5
    """How many times one request is tried before its error is reported."""
    secrets: dict[str, SecretRef] = Factory(dict)
    options: dict[str, Any] = Factory(dict)
    directory: Path = Path()
    """The configuration file's directory: relative paths in options are read from it."""


@frozen
class Config:
    """The whole of ``salync.toml``."""

    path: Path | None
    store_path: Path
    connections: dict[str, ConnectionConfig]
    mass_delete_threshold: float = 0.10
    mass_delete_min: int = 10
    """Reconcile refuses a deletion only above the threshold share AND above this many records."""
    policies: dict[str, Any] = Factory(dict)
    key_file: Path = Path("salync.key")
    """The Fernet key for secrets stored in the mirror (``SALYNC_SECRET_KEY`` overrides it)."""
    sync_interval: float = 900.0
    """Seconds between a fleet's syncs of each connection (``[sync] interval``); sooner when
    webhook events or local edits are waiting."""
    map_processes: int | Literal["auto"] = "auto"
    """``[sync] map_processes``: worker processes that map long passes (0: map in-process;
    ``"auto"``: one fewer than the cores, for passes of 30,000 items or more)."""
    write_process: bool | Literal["auto"] = "auto"
    """``[sync] write_process``: resolve and write a pass's pages in a second process, so
    fetching and mapping get a core of their own (``"auto"``: on a machine with two cores or
    more, for passes of 30,000 items or more)."""

    def connection(self, name: str) -> ConnectionConfig:
        """The connection called ``name``, or a clear error listing the configured ones."""
        if name not in self.connections:
            known = ", ".join(sorted(self.connections)) or "none"
            raise ConfigError(f"{self.path}: no connection named {name!r} (configured: {known})")
        return self.connections[name]


def load_config(path: str | Path = CONFIG_FILE) -> Config:
    """Read and check ``salync.toml``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (create one with `salync init`)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)


def parse_config(
    data: Mapping[str, Any],
    path: Path | None = None,
    *,
    platforms: Mapping[str, Platform] | None = None,
) -> Config:
    """Check parsed TOML and build a :class:`Config`: every table, every key, every value.

    ``platforms`` are the installed platforms by name (by default the plugin registry's); a
    connection naming none of them, or a key its platform does not declare, is refused."""
    where = str(path or "<config>")
    base_dir = path.parent if path else Path.cwd()
    for table in data:
        if table not in TABLES:
            raise ConfigError(f"{where}: {unknown('table', table, TABLES)}")
    store = _table(data, "store", where)
    _known_keys(store, TABLES["store"], f"{where}: [store]")
    store_path = base_dir / _string(store, "path", f"{where}: [store]", default="salync.db")
    sync = _table(data, "sync", where)
    _known_keys(sync, TABLES["sync"], f"{where}: [sync]")
    threshold = sync.get("mass_delete_threshold", 0.10)
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise ConfigError(
            f"{where}: [sync] mass_delete_threshold: expected a share between 0 and 1"
        )
    mass_delete_min = sync.get("mass_delete_min", 10)
    if type(mass_delete_min) is not int or mass_delete_min < 0:
        raise ConfigError(f"{where}: [sync] mass_delete_min: expected a whole number, 0 or more")
    interval = _interval(sync.get("interval", DEFAULT_INTERVAL), f"{where}: [sync] interval")
    map_processes = sync.get("map_processes", "auto")
    if map_processes != "auto" and (type(map_processes) is not int or map_processes < 0):
        raise ConfigError(
            f'{where}: [sync] map_processes: expected "auto" or a whole number, 0 or more'
        )
    write_process = sync.get("write_process", "auto")
    if write_process != "auto" and not isinstance(write_process, bool):
        raise ConfigError(f'{where}: [sync] write_process: expected "auto", true or false')
    installed = plugins.platforms() if platforms is None else platforms
    connections = {
        name: _connection(name, table, f"{where}: [connections.{name}]", installed, base_dir)
        for name, table in _table(data, "connections", where).items()
    }
    policies = _table(data, "policies", where)
    _check_policies(policies, connections, where)
    return Config(
        path=path,
        store_path=store_path,
        connections=connections,
        mass_delete_threshold=float(threshold),
        mass_delete_min=mass_delete_min,
        policies=policies,
        key_file=base_dir / _string(store, "key_file", f"{where}: [store]", default=KEY_FILE),
        sync_interval=interval,
        map_processes=map_processes,
        write_process=write_process,
    )


DEFAULT_INTERVAL = "15m"
INTERVAL_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _interval(value: Any, where: str) -> float:
    """Seconds from a positive number of seconds or a string like ``"90s"``, ``"15m"``,
    ``"2h"``, ``"1d"``."""
    hint = 'expected seconds (a positive number) or a duration like "30s", "15m", "2h", "1d"'
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value[-1:] in INTERVAL_UNITS:
        try:
            seconds = float(value[:-1]) * INTERVAL_UNITS[value[-1]]
        except ValueError:
            raise ConfigError(f"{where}: {value!r}: {hint}") from None
    else:
        raise ConfigError(f"{where}: {value!r}: {hint}")
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{where}: {value!r}: {hint}")
    return seconds


def _known_keys(table: Mapping[str, Any], known: Collection[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: {unknown('key', key, known)}")


def _check_policies(policies: dict[str, Any], connections: Collection[str], where: str) -> None:
    """Build the policies once so a mistake in them stops the load, before any mirror opens."""
    from salync_core.conflicts.policy_set import PolicySet

    try:
        PolicySet.from_config(policies, connections, plugins.policy_factories())
    except PolicyError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _platform(table: Mapping[str, Any], where: str, installed: Mapping[str, Platform]) -> Platform:
    plugin = _string(table, "plugin", where)
    if plugin not in installed:
        raise ConfigError(f"{where} plugin: {plugins.not_installed(plugin, installed)}")
    return installed[plugin]


def _connection(
    name: str,
    table: Any,
    where: str,
    installed: Mapping[str, Platform],
    directory: Path = Path(),
) -> ConnectionConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of connection settings")
    if name in {"local", "host"}:
        raise ConfigError(f"{where}: {name!r} is reserved for edits made by the host app")
    plugin = _string(table, "plugin", where)
    platform = _platform(table, where, installed)
    declared = platform.declared_options()
    _known_keys(table, CONNECTION_KEYS | declared.keys(), where)
    base_url = _string(table, "base_url", where, default=platform.default_base_url(table))
    try:
        check_url_security(base_url)
    except Exception as exc:
        raise ConfigError(f"{where} base_url: {exc}") from None
    time_scale = table.get("time_scale", 1.0)
    if not isinstance(time_scale, int | float) or time_scale <= 0:
        raise ConfigError(f"{where} time_scale: expected a positive number")
    streams = table.get("streams")
    if streams is not None and not (
        isinstance(streams, list) and all(isinstance(s, str) for s in streams)
    ):
        raise ConfigError(f"{where} streams: expected a list of stream names")
    push = table.get("push", [])
    if not (isinstance(push, list) and all(isinstance(e, str) for e in push)):
        raise ConfigError(f"{where} push: expected a list of entity names")
    unknown = sorted(set(push) - set(ENTITY_TYPES))
    if unknown:
        raise ConfigError(f"{where} push: unknown entities {', '.join(unknown)}")
    rate_limits = (
        _limits(table["rate_limits"], f"{where} rate_limits") if "rate_limits" in table else None
    )
    attempts = table.get("retry_attempts", 5)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 20:
        raise ConfigError(f"{where} retry_attempts: expected a whole number from 1 to 20")
    options, secrets = _options(table, declared, where)
    return ConnectionConfig(
        name=name,
        plugin=plugin,
        base_url=base_url.rstrip("/"),
        locale=_string(table, "locale", where, default="en"),
        time_scale=float(time_scale),
        ca_file=_string(table, "ca_file", where) if "ca_file" in table else None,
        streams=tuple(streams) if streams is not None else None,
        push=tuple(push),
        rate_limits=rate_limits,
        retry_attempts=attempts,
        secrets=secrets,
        options=options,
        directory=directory,
    )


def _options(
    table: Mapping[str, Any], declared: Mapping[str, Option], where: str
) -> tuple[dict[str, Any], dict[str, SecretRef]]:
    """The platform's options of one connection, checked, and its secrets (to resolve later)."""
    options: dict[str, Any] = {}
    secrets: dict[str, SecretRef] = {}
    for name, option in declared.items():
        if name in CONNECTION_KEYS:
            continue
        if name not in table:
            if option.required and not option.secret:
                raise ConfigError(f"{where}: missing required key {name!r} ({option.help})")
            if option.default is not None and not option.secret:
                options[name] = option.default
            continue
        value = table[name]
        problem = option.problem(value)
        if problem is not None:
            raise ConfigError(f"{where} {name}: {problem}")
        if option.secret:
            secrets[name] = _secret_ref(value, f"{where} {name}")
        else:
            options[name] = value
    return options, secrets


def _limits(value: Any, where: str) -> Limits:
    """``"none"``, or ``{ windows = [[requests, seconds], ...], daily = N }``."""
    if value == "none":
        return Limits()
    expected = 'expected "none" or a table like { windows = [[20, 60]], daily = 500 }'
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {expected}")
    _known_keys(value, {"windows", "daily"}, where)
    try:
        windows = tuple(Window(int(n), float(s)) for n, s in value.get("windows", []))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {expected}") from None
    daily = value.get("daily")
    if daily is not None and (not isinstance(daily, int) or daily <= 0):
        raise ConfigError(f"{where} daily: expected a positive whole number")
    if any(w.requests <= 0 or w.seconds <= 0 for w in windows):
        raise ConfigError(f"{where} windows: requests and seconds must be positive")
    return Limits(windows=windows, daily=daily)


def _secret_ref(value: Any, where: str) -> SecretRef:
    if not isinstance(value, str) or not value:
        raise ConfigError(f'{where}: expected a string (a literal or "env:VARIABLE")')
    if value.startswith("env:"):
        return SecretRef("env", name=value.removeprefix("env:"))
    return SecretRef("literal", literal=Secret(value))


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table, got {type(value).__name__}")
    return value


def _string(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{where}: missing required key {key!r}")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} {key}: expected a non-empty string, got {value!r}")
    return value
