"""The checks every platform's webhooks share, so a plugin only names its header and secret.

* **signature**: the header holds the hex HMAC-SHA256 of the raw body (or of a platform's
  signed string, such as ``timestamp + "." + body``) under the connection's
  ``webhook_secret``, optionally prefixed ``sha256=``; compared in constant time over the raw
  bytes, never over re-serialised JSON (Salla's PHP encoder escapes ``/``).
* **token**: the header holds the secret itself (Salla's token strategy), compared in
  constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from salync_core.platform import ConnectionContext, Option
from salync_core.secrets import Secret
from salync_core.webhooks.events import WebhookRejected

WEBHOOK_SECRET = Option(
    "webhook_secret",
    secret=True,
    help="The secret the platform signs webhook deliveries with (salync webhooks subscribe).",
)
"""The option a platform that receives webhooks declares in its ``options``."""


def webhook_secret(ctx: ConnectionContext) -> str:
    """The connection's ``webhook_secret``; a connection without one accepts no delivery."""
    value = ctx.options.get("webhook_secret")
    if isinstance(value, Secret):
        value = value.reveal()
    if not isinstance(value, str) or not value:
        raise WebhookRejected(403, f"connection {ctx.name} has no webhook_secret configured")
    return value


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever its case (aiohttp's headers ignore case; a dict does not)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_signature(given: str | None, secret: str, message: bytes, name: str) -> None:
    """Refuse unless ``given`` (header ``name``) is the HMAC of ``message``; an optional
    ``sha256=`` prefix and the hex digits' case are accepted."""
    if not given:
        raise WebhookRejected(401, f"unsigned delivery (no {name} header)")
    value = given.strip()
    if value[:7].lower() == "sha256=":
        value = value[7:]
    expected = hmac_sha256_hex(secret, message)
    if not hmac.compare_digest(value.lower().encode(), expected.encode()):
        raise WebhookRejected(401, f"{name} does not match the body")


def check_token(given: str | None, secret: str, name: str) -> None:
    """Refuse unless header ``name`` holds the secret itself."""
    if not given:
        raise WebhookRejected(401, f"unsigned delivery (no {name} header)")
    if not hmac.compare_digest(given.strip().encode(), secret.encode()):
        raise WebhookRejected(401, f"{name} does not hold the webhook secret")


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying why not (without echoing the body)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookRejected(400, f"the body is not JSON ({exc.msg} at byte {exc.pos})") from None
    if not isinstance(value, dict):
        raise WebhookRejected(400, f"the body is JSON {type(value).__name__}, not an object")
    return value
