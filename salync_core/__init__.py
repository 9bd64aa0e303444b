"""Salync Core: an embedded, local-first sync engine for commerce data.

A host app opens an :class:`Engine` on a ``salync.toml``; platform plugins registered through
the ``salync`` entry-point group implement the hooks in :mod:`salync_core.hookspecs`.
"""

from salync_core.engine import Engine, Problem, RunReport, StreamReport
from salync_core.engine.local import BatchResult
from salync_core.errors import (
    AuthError,
    BadResponseError,
    ConfigError,
    DataError,
    MirrorBusy,
    NeedsReconnect,
    NotFoundError,
    PolicyError,
    QuotaExhausted,
    RejectedError,
    SalyncError,
    StoreError,
)
from salync_core.fleet import Account, AccountOutcome, Fleet
from salync_core.hookspecs import hookimpl
from salync_core.http import HttpClient, OAuth2Credentials, Response, path_segment
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
    Sweep,
    Window,
)
from salync_core.secrets import Secret
from salync_core.state.cursors import WatermarkCursor
from salync_core.webhooks import WebhookEvent, WebhookRejected, WebhookSubscription
from salync_core.webhooks.receiver import webhook_app

__all__ = [
    "Account",
    "AccountOutcome",
    "AuthError",
    "BadResponseError",
    "BatchResult",
    "ConfigError",
    "ConnectionContext",
    "Credentials",
    "DataError",
    "Deletion",
    "Engine",
    "Fleet",
    "HttpClient",
    "KeyPage",
    "Limits",
    "MirrorBusy",
    "NeedsReconnect",
    "NotFoundError",
    "OAuth2Credentials",
    "Option",
    "Outbound",
    "Page",
    "Platform",
    "PolicyError",
    "Problem",
    "PushResult",
    "QuotaExhausted",
    "Record",
    "Reject",
    "RejectedError",
    "Response",
    "RunReport",
    "SalyncError",
    "Secret",
    "StoreError",
    "Stream",
    "StreamReport",
    "Sweep",
    "WatermarkCursor",
    "WebhookEvent",
    "WebhookRejected",
    "WebhookSubscription",
    "Window",
    "hookimpl",
    "path_segment",
    "webhook_app",
]
