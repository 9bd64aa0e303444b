"""The entry point registered under the ``salync`` group: Sales Layer's platform and emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from salync_core import hookimpl
from salync_saleslayer.platform import SalesLayerPlatform


@hookimpl
def register_platforms(register: Callable[[Any], None]) -> None:
    register(SalesLayerPlatform())


@hookimpl
def register_emulators(register: Callable[[str, type[Any]], None]) -> None:
    from salync_saleslayer.emulator import SalesLayerEmulator

    register("saleslayer", SalesLayerEmulator)

    from salync_saleslayer.emulator118 import SalesLayer118Emulator

    register("saleslayer-1.18", SalesLayer118Emulator)
