"""The plugin author's kit: the emulator base, many accounts per emulator, fault injection,
webhook delivery, fixtures, config writing."""

from salync_core.testing.accounts import AccountAttribute, build_accounts
from salync_core.testing.clock import ScaledClock
from salync_core.testing.emulator import Emulator, Faults, Stats
from salync_core.testing.limiters import DailyQuota, FixedWindow, LeakyBucket, SlidingWindow
from salync_core.testing.webhooks import WebhookSender

__all__ = [
    "AccountAttribute",
    "DailyQuota",
    "Emulator",
    "Faults",
    "FixedWindow",
    "LeakyBucket",
    "ScaledClock",
    "SlidingWindow",
    "Stats",
    "WebhookSender",
    "build_accounts",
]
