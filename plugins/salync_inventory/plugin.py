"""The entry point registered under the ``salync`` group: Salync's platform and emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from salync_core import hookimpl
from salync_inventory.platform import SalyncPlatform


@hookimpl
def register_platforms(register: Callable[[Any], None]) -> None:
    register(SalyncPlatform())


@hookimpl
def register_emulators(register: Callable[[str, type[Any]], None]) -> None:
    from salync_inventory.emulator import SalyncEmulator

    register("salync", SalyncEmulator)
