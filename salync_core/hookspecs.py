"""The plugin surface of Salync Core: every hook a plugin may implement.

pluggy calls hooks synchronously, so async work is not done in hooks: a plugin *registers
objects* (platforms, emulators, policies) whose async methods the engine drives. A plugin module
is a set of ``@hookimpl`` functions::

    from salync_core import hookimpl

    @hookimpl
    def register_platforms(register):
        register(MyPlatform())

and is found through the ``salync`` entry-point group (``[project.entry-points.salync]`` in its
``pyproject.toml``). See ``docs/plugins.md`` for a worked example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    from salync_core.conflicts.policies import FieldDecision, Policy
    from salync_core.platform import Platform
    from salync_core.testing.emulator import Emulator

hookspec = HookspecMarker("salync")
hookimpl = HookimplMarker("salync")


@hookspec
def register_platforms(register: Callable[[Platform], None]) -> None:
    """Register platforms: call ``register(platform)`` once for each :class:`Platform`."""


@hookspec
def register_emulators(register: Callable[[str, type[Emulator]], None]) -> None:
    """Register emulators for ``salync emulate NAME``: ``register(name, EmulatorClass)``."""


@hookspec
def register_policies(register: Callable[[str, Callable[..., Policy]], None]) -> None:
    """Register conflict policies by their name in ``salync.toml``: ``register(name, factory)``."""


@hookspec(firstresult=True)
def decide_field(
    entity: str, field: str, origin: str, platform: str, current: Any, incoming: Any
) -> FieldDecision | None:
    """Decide one field that a platform knows better than any policy; ``None`` defers to the policy.

    Called only for a field that connection ``origin`` (of platform ``platform``) changed since
    it last saw it. Return :class:`FieldDecision` ``ACCEPT``, ``REJECT`` or ``CONFLICT``.
    """
