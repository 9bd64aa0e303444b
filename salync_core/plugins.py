"""Loading plugins: built-ins and third parties go through the same ``salync`` entry-point group.

Set ``SALYNC_LOAD_PLUGINS`` to a comma-separated list of entry-point names to load only those
(an empty string loads none): useful in tests and when a broken plugin must be ruled out.

Names are unique: two entry points of one name, or two plugins registering one platform,
emulator or policy name, are a :class:`PluginError` naming both packages. A third-party plugin
can never silently replace a built-in platform (and so receive its connections' credentials).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from salync_core import hookspecs
from salync_core.errors import PluginError
from salync_core.hints import did_you_mean

if TYPE_CHECKING:
    from salync_core.conflicts.policies import FieldDecision, Policy
    from salync_core.conflicts.resolver import DecideHook
    from salync_core.platform import Platform
    from salync_core.testing.emulator import Emulator

ENTRY_POINT_GROUP = "salync"

pm = pluggy.PluginManager("salync")
pm.add_hookspecs(hookspecs)
_loaded = False
_BUILTIN = "salync_core.conflicts.builtin"
_origins: dict[str, str] = {}
"""Where each registered plugin came from (its distribution and entry point), for messages."""


def load_plugins(*, refresh: bool = False) -> pluggy.PluginManager:
    """Load the built-in policies and every installed plugin; later calls do nothing unless
    ``refresh`` asks to look for newly installed entry points. A plugin that fails to load
    fails every call, not only the first (which would leave the others half loaded)."""
    global _loaded
    if _loaded and not refresh:
        return pm
    _loaded = False
    if pm.get_plugin(_BUILTIN) is None:
        from salync_core.conflicts import builtin

        pm.register(builtin, name=_BUILTIN)
        _origins[_BUILTIN] = "salync-core (built-in policies)"
    wanted = os.environ.get("SALYNC_LOAD_PLUGINS")
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        origin = f"{ep.dist.name if ep.dist else ep.value} (entry point {ep.name})"
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            if _origins.get(ep.name, origin) != origin:
                raise PluginError(
                    f"entry point {ep.name!r} is installed twice: by {_origins[ep.name]} and "
                    f"by {origin}; uninstall one of them{_LEAVE_OUT}"
                )
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}) failed to load: {exc} "
                "(leave it out with SALYNC_LOAD_PLUGINS)"
            ) from exc
        pm.register(module, name=ep.name)
        _origins[ep.name] = origin
    pm.check_pending()
    _loaded = True
    return pm


_LEAVE_OUT = " (or leave one out with SALYNC_LOAD_PLUGINS)"


def _origin(plugin_name: str) -> str:
    return _origins.get(plugin_name, f"the plugin registered as {plugin_name!r}")


def _appending_to(items: list[tuple[Any, ...]]) -> Callable[..., None]:
    return lambda *item: items.append(item)


def _collect(hook: pluggy.HookCaller, kind: str) -> dict[str, tuple[Any, ...]]:
    """What every plugin registers through ``hook``, by name; one name registered twice (a
    third party claiming a built-in's name) is an error naming both packages."""
    found: dict[str, tuple[Any, ...]] = {}
    owners: dict[str, str] = {}
    for impl in hook.get_hookimpls():
        items: list[tuple[Any, ...]] = []
        impl.function(register=_appending_to(items))
        for item in items:
            name = item[0].name if kind == "platform" else item[0]
            if name in owners:
                raise PluginError(
                    f"{kind} {name!r} is registered twice: by {_origin(owners[name])} and by "
                    f"{_origin(impl.plugin_name)}; uninstall one of them{_LEAVE_OUT}"
                )
            owners[name] = impl.plugin_name
            found[name] = item
    return found


def platforms() -> dict[str, Platform]:
    """Every registered platform by name."""
    load_plugins()
    return {name: p for name, (p,) in _collect(pm.hook.register_platforms, "platform").items()}


def platform(name: str) -> Platform:
    """The platform called ``name``, or a :class:`PluginError` listing what is installed."""
    found = platforms()
    if name not in found:
        raise PluginError(not_installed(name, found))
    return found[name]


def not_installed(name: str, installed: Collection[str]) -> str:
    """Why ``name`` names no platform: the nearest installed name, and every one."""
    listing = ", ".join(sorted(installed)) or "none"
    return (
        f"no platform plugin named {name!r} is installed{did_you_mean(name, installed)} "
        f"(installed: {listing})"
    )


def emulators() -> dict[str, type[Emulator]]:
    """Every registered emulator class by platform name."""
    load_plugins()
    found = _collect(pm.hook.register_emulators, "emulator")
    return {name: cls for name, (_, cls) in found.items()}


def policy_factories() -> dict[str, Callable[..., Policy]]:
    """Every registered conflict policy factory by name."""
    load_plugins()
    found = _collect(pm.hook.register_policies, "policy")
    return {name: factory for name, (_, factory) in found.items()}


def register_module(module: ModuleType | object, name: str) -> None:
    """Register a plugin object by name (tests unregister it with :func:`unregister`)."""
    load_plugins()
    pm.register(module, name=name)
    _origins.pop(name, None)


def unregister(name: str) -> None:
    """Remove a plugin registered by name."""
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    _origins.pop(name, None)


def decide_hook(platform_of: Mapping[str, str]) -> DecideHook | None:
    """The plugins' ``decide_field`` hook as the resolver calls it, for connections whose
    platforms ``platform_of`` names (``None``: no plugin implements it)."""
    hook = pm.hook.decide_field
    if not hook.get_hookimpls():
        return None

    def decide(
        entity: str, field: str, origin: str, current: Any, incoming: Any
    ) -> FieldDecision | None:
        result: FieldDecision | None = hook(
            entity=entity,
            field=field,
            origin=origin,
            platform=platform_of.get(origin, origin),
            current=current,
            incoming=incoming,
        )
        return result

    return decide
