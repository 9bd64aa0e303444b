"""The entry point registered under the ``salync`` group: the ``csv`` platform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from salync_core import hookimpl
from salync_csv.platform import CsvPlatform


@hookimpl
def register_platforms(register: Callable[[Any], None]) -> None:
    register(CsvPlatform())
