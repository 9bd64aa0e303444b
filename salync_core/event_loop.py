"""The event loop of the processes Salync starts itself: uvloop where it is installed.

The ``salync`` command, the emulators it serves (``salync emulate``) and the benchmarks own
their event loop, so they choose it: uvloop (a dependency everywhere but Windows) spends about
a third less CPU a request than asyncio's own loop on both ends of a connection, which is what
bounds a push of one request per record. The library never chooses: an application embedding
the engine runs it on its own loop, whichever that is. ``SALYNC_UVLOOP=0`` keeps asyncio's
loop (to compare, or to rule the loop out)."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any


def uses_uvloop() -> bool:
    """Whether a loop Salync starts is uvloop's: installed, not on Windows, not turned off."""
    if os.environ.get("SALYNC_UVLOOP", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.platform != "win32" and importlib.util.find_spec("uvloop") is not None


def backend_options() -> dict[str, Any]:
    """``anyio.run(..., backend="asyncio", backend_options=backend_options())``."""
    return {"use_uvloop": uses_uvloop()}
