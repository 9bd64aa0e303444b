"""Salync Core: an embedded, local-first sync engine for commerce data.

A host app opens an :class:`Engine` on a ``salync.toml``; platform plugins registered through
the ``salync`` entry-point group implement the hooks in :mod:`salync_core.hookspecs`.
"""

from salync_core.engine import Engine, Problem, RunReport, StreamReport
from salync_core.errors import QuotaExhausted, SalyncError
from salync_core.hookspecs import hookimpl
from salync_core.platform import (
    ConnectionContext,
    Credentials,
    Deletion,
    KeyPage,
    Limits,
    Option,
    Outbound,
    Page,
    Platform,
    PushResult,
    Record,
    Reject,
    Stream,
    Window,
)
from salync_core.webhooks import WebhookEvent, WebhookRejected, WebhookSubscription
from salync_core.webhooks.receiver import webhook_app

__all__ = [
    "ConnectionContext",
    "Credentials",
    "Deletion",
    "Engine",
    "KeyPage",
    "Limits",
    "Option",
    "Outbound",
    "Page",
    "Platform",
    "Problem",
    "PushResult",
    "QuotaExhausted",
    "Record",
    "Reject",
    "RunReport",
    "SalyncError",
    "Stream",
    "StreamReport",
    "WebhookEvent",
    "WebhookRejected",
    "WebhookSubscription",
    "Window",
    "hookimpl",
    "webhook_app",
]
