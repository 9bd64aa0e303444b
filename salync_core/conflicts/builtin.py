"""The built-in policies, registered through the same hook a third-party policy would use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from salync_core.conflicts.policies import LastWriterWins, Manual, Owner, Policy, Priority
from salync_core.errors import PolicyError
from salync_core.hookspecs import hookimpl


def _owner(owner: Any = None) -> Policy:
    if not isinstance(owner, str) or not owner:
        raise PolicyError(f"owner takes exactly one connection name, got {owner!r}")
    return Owner(owner)


def _priority(priority: Any = None) -> Policy:
    if not (isinstance(priority, list) and priority and all(isinstance(p, str) for p in priority)):
        raise PolicyError(f"priority takes a list of connection names, got {priority!r}")
    if len(set(priority)) != len(priority):
        raise PolicyError(f"priority names a connection twice: {priority!r}")
    return Priority(tuple(priority))


@hookimpl(trylast=True)
def register_policies(register: Callable[[str, Callable[..., Policy]], None]) -> None:
    register("owner", _owner)
    register("priority", _priority)
    register("last_writer_wins", LastWriterWins)
    register("manual", Manual)
