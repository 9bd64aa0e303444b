"""Loading plugins: built-ins and third parties go through the same ``salync`` entry-point group.

Set ``SALYNC_LOAD_PLUGINS`` to a comma-separated list of entry-point names to load only those
(an empty string loads none): useful in tests and when a broken plugin must be ruled out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from salync_core import hookspecs
from salync_core.errors import PluginError

if TYPE_CHECKING:
    from salync_core.conflicts.policies import Policy
    from salync_core.platform import Platform
    from salync_core.testing.emulator import Emulator

ENTRY_POINT_GROUP = "salync"

pm = pluggy.PluginManager("salync")
pm.add_hookspecs(hookspecs)
_loaded = False


def load_plugins(*, refresh: bool = False) -> pluggy.PluginManager:
    """Load the built-in policies and every installed plugin; later calls do nothing unless
    ``refresh`` asks to look for newly installed entry points."""
    global _loaded
    if _loaded and not refresh:
        return pm
    if not _loaded:
        from salync_core.conflicts import builtin

        pm.register(builtin, name="salync_core.conflicts.builtin")
    _loaded = True
    wanted = os.environ.get("SALYNC_LOAD_PLUGINS")
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        pm.register(module, name=ep.name)
    pm.check_pending()
    return pm


def _collect(hook: Callable[..., Any]) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    hook(register=lambda *item: found.append(item))
    return found


def platforms() -> dict[str, Platform]:
    """Every registered platform by name."""
    load_plugins()
    return {p.name: p for (p,) in _collect(pm.hook.register_platforms)}


def platform(name: str) -> Platform:
    """The platform called ``name``, or a :class:`PluginError` listing what is installed."""
    found = platforms()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise PluginError(f"no platform plugin named {name!r} is installed (installed: {known})")
    return found[name]


def emulators() -> dict[str, type[Emulator]]:
    """Every registered emulator class by platform name."""
    load_plugins()
    return dict(_collect(pm.hook.register_emulators))


def policy_factories() -> dict[str, Callable[..., Policy]]:
    """Every registered conflict policy factory by name."""
    load_plugins()
    return dict(_collect(pm.hook.register_policies))


def register_module(module: ModuleType | object, name: str) -> None:
    """Register a plugin object by name (tests unregister it with :func:`unregister`)."""
    load_plugins()
    pm.register(module, name=name)


def unregister(name: str) -> None:
    """Remove a plugin registered by name."""
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
