"""Webhook deliveries: verified by the platform, committed to a durable inbox before the 2xx
answer, then applied through the same resolve/apply path as polled pages.

* :mod:`~salync_core.webhooks.events`: what a platform's ``parse_webhook`` returns or raises;
* :mod:`~salync_core.webhooks.verify`: the signature and token checks plugins share;
* :mod:`~salync_core.webhooks.receiver`: the aiohttp application (``/webhooks/<connection>``);
* :mod:`~salync_core.webhooks.applier`: the inbox drained into the mirror, each event once.
"""

from salync_core.webhooks.events import WebhookEvent, WebhookRejected, WebhookSubscription

__all__ = ["WebhookEvent", "WebhookRejected", "WebhookSubscription"]
