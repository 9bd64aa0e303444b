"""What a platform makes of a webhook delivery: events to keep, or a reason to refuse it."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from salync_core.errors import SalyncError


@frozen
class WebhookEvent:
    """One event of a verified delivery."""

    type: str
    """The platform's event name, such as ``product.deleted``."""
    data: Any
    """The event's JSON payload, as the platform sent it (kept in the inbox until applied)."""
    id: str | None = None
    """The platform's id for the event. ``None`` (Salla sends none): the SHA-256 of the raw
    body stands in, so a redelivered body is recognised as the same event."""


@frozen
class WebhookSubscription:
    """One subscription a platform registered for a connection."""

    event: str
    url: str
    id: str | None = None


class WebhookRejected(SalyncError):
    """A delivery the receiver refuses: unsigned, forged, malformed or for no known connection.

    ``reason`` is logged and sent back, so it never holds a secret or the body itself."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
