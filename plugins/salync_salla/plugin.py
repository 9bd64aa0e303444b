"""The entry point registered under the ``salync`` group: Salla's platform and emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from salync_core import hookimpl
from salync_salla.platform import SallaPlatform


@hookimpl
def register_platforms(register: Callable[[Any], None]) -> None:
    register(SallaPlatform())


@hookimpl
def register_emulators(register: Callable[[str, type[Any]], None]) -> None:
    from salync_salla.emulator import SallaEmulator

    register("salla", SallaEmulator)
