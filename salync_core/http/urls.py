"""Where the client may send a request: HTTPS (or loopback) and only to its own origin.

Credentials travel with every request, so a URL is checked before anything is sent: plain
``http://`` is allowed only to loopback (emulators), and a URL taken from a response (an
``@nextLink``) must stay on the base URL's origin, or a hostile page could collect our key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from yarl import URL

from salync_core.errors import InsecureURLError


def is_loopback(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url_security(url: str | URL, *, connection: str = "") -> URL:
    """``url`` parsed; :class:`InsecureURLError` unless https, or http to a loopback host."""
    parsed = URL(url)
    if not parsed.is_absolute() or parsed.scheme not in ("http", "https"):
        raise InsecureURLError(
            f"{parsed.human_repr()!r} is not an absolute http(s) URL", connection=connection
        )
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        raise InsecureURLError(
            f"plain http:// to {parsed.host} is refused; use https:// (http is only for loopback)",
            connection=connection,
        )
    return parsed


def origin(url: URL) -> tuple[str, str, int | None]:
    """Scheme, lower-case host and port (the default one if none is written)."""
    return url.scheme, (url.host or "").lower(), url.port


def resolve(
    base: URL, url: str, params: Mapping[str, str] | None = None, *, connection: str = ""
) -> URL:
    """``url`` made absolute against ``base`` with ``params`` added to its query.

    A relative URL is appended to the base path (``products`` and ``/products`` both under
    ``https://host/v1`` give ``https://host/v1/products``, as httpx does); an absolute one must
    have the base URL's origin.
    """
    target = URL(url)
    if target.is_absolute():
        target = base.join(target)  # gives a scheme-relative //host/path the base's scheme
        if origin(target) != origin(base):
            raise InsecureURLError(
                f"refusing to send credentials to {target.origin()}: not {base.origin()}",
                connection=connection,
            )
    else:
        joined = base.path.rstrip("/") + "/" + target.path.lstrip("/")
        target = base.with_path(joined).with_query(target.query).with_fragment(None)
    return target.extend_query(params) if params else target
