"""Writing a ``salync.toml`` from Python, for tests and for plugin authors' fixtures."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson


def toml_value(value: Any) -> str:
    """One TOML value: strings, numbers, booleans, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else orjson.dumps(key).decode()


def _table(name: str, values: Mapping[str, Any]) -> str:
    lines = [f"[{name}]"] + [f"{_key(k)} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_config(
    directory: Path,
    connections: Mapping[str, Mapping[str, Any]],
    *,
    policies: Mapping[str, Any] | None = None,
    store: Mapping[str, Any] | None = None,
    sync: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``directory/salync.toml`` and return its path. ``policies`` maps ``"default"`` to
    a policy and each entity to a table of field policies."""
    parts = [_table("store", {"path": "salync.db", **(store or {})})]
    if sync:
        parts.append(_table("sync", sync))
    for name, settings in connections.items():
        parts.append(_table(f"connections.{name}", settings))
    if policies:
        top = {k: v for k, v in policies.items() if not isinstance(v, Mapping) or k == "default"}
        parts.append(_table("policies", top))
        for entity, table in policies.items():
            if entity != "default" and isinstance(table, Mapping):
                parts.append(_table(f"policies.{entity}", table))
    path = directory / "salync.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
