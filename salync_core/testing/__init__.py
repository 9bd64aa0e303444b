"""The plugin author's kit: the emulator base, fault injection, fixtures, config writing."""

from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import Emulator, Faults, Stats
from salync_core.testing.limiters import DailyQuota, FixedWindow, LeakyBucket, SlidingWindow

__all__ = [
    "DailyQuota",
    "Emulator",
    "Faults",
    "FixedWindow",
    "LeakyBucket",
    "ScaledClock",
    "SlidingWindow",
    "Stats",
]
