"""Where the client may send a request: HTTPS (or loopback) and only to its own origin.

Credentials travel with every request, so a URL is checked before anything is sent: plain
``http://`` is allowed only to loopback (emulators), and a URL taken from a response (an
``@nextLink``) must stay on the base URL's origin, or a hostile page could collect our key.

Paths are built from platform ids (``products/{id}``), and an id is data from a page: every
plugin passes ids through :func:`path_segment`, which escapes ``/``, ``?``, ``#``, ``%`` and the
rest and refuses an id that is, or decodes to, a dot segment (``..``, ``%2e%2e``,
``..%2Fadmin``). :func:`resolve` refuses any relative path with a dot segment as a last line
of defence, so a request can never leave the base path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import quote, unquote

from yarl import URL

from salync_core.errors import DataError, InsecureURLError

_DOT_SEGMENTS = (".", "..")


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
        if _has_dot_segment(target.raw_path):
            raise InsecureURLError(
                f"refusing the path {url!r}: it would leave {base.path} (a '.' or '..' segment)",
                connection=connection,
            )
        joined = base.raw_path.rstrip("/") + "/" + target.raw_path.lstrip("/")
        target = base.with_path(joined, encoded=True).with_query(target.query)
    return target.extend_query(params) if params else target


def path_segment(value: object, *, what: str = "id") -> str:
    """A platform's id (or SKU, or any value) as text safe to put in a URL path: it stays one
    segment (or one OData key, ``Products(<here>)``) and cannot reach outside the path.

    Every character but letters, digits and ``-._~`` is percent-encoded. Raises
    :class:`~salync_core.errors.DataError` (one record is unusable, the rest go on) for an
    empty value, a value that is not text or an integer, and one that is a dot segment or
    decodes to one (``..``, ``%2e%2e``, ``..%2F..``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{what} {value!r} cannot be used in a URL path")
    if _has_dot_segment(value):
        raise DataError(f"{what} {value!r} cannot be used in a URL path: it is a '..' path")
    return quote(value, safe="")


def _has_dot_segment(path: str) -> bool:
    """Whether ``path`` holds a ``.`` or ``..`` segment, also once percent-decoded (repeatedly,
    as a server or proxy might) and with ``\\`` read as ``/``."""
    if "." not in path and "%" not in path:
        return False  # the common case, cheaply: no dot, written or percent-encoded
    seen = {path}
    text = path
    while (decoded := unquote(text)) not in seen:
        seen.add(decoded)
        text = decoded
    return any(
        segment.strip() in _DOT_SEGMENTS
        for form in seen
        for segment in form.replace("\\", "/").split("/")
    )
