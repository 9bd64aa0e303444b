"""One HTTP exchange over aiohttp, and nothing else: no pacing, no retries, no auth policy.

This is the boundary where aiohttp's exceptions become :mod:`salync_core.errors`: a network
failure comes back as an :class:`UnreachableError` value (the client decides whether to retry),
a TLS failure is raised as :class:`InsecureURLError` (retrying will not help).
"""

from __future__ import annotations

import io
import ssl
from collections.abc import Mapping
from urllib.parse import urlencode

import aiohttp
from attrs import frozen
from yarl import URL

from salync_core.errors import InsecureURLError, UnreachableError
from salync_core.http.response import Response
from salync_core.secrets import redactor


@frozen
class Timeouts:
    """Real seconds to establish a connection, and to wait for each read on it."""

    connect: float = 10.0
    read: float = 60.0


@frozen
class Outgoing:
    """A request ready to send (the URL already checked, the body already encoded)."""

    method: str
    url: URL
    body: bytes | None
    headers: Mapping[str, str]


class Transport:
    """One ``aiohttp.ClientSession`` for one connection, made lazily inside the running loop."""

    def __init__(
        self, connection: str, timeouts: Timeouts, ca_file: str | None, user_agent: str
    ) -> None:
        self.connection, self.timeouts = connection, timeouts
        self.ca_file, self.user_agent = ca_file, user_agent
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: Outgoing, auth: Mapping[str, str]) -> Response | UnreachableError:
        """Send ``request`` with the ``auth`` headers and read the whole answer. Redirects are
        not followed: a custom auth header would follow a redirect to another host."""
        headers = {**request.headers, **auth}
        try:
            async with self._open().request(
                request.method,
                request.url,
                data=_payload(request.body),
                headers=headers,
                allow_redirects=False,
            ) as raw:
                body = await raw.read()
        except aiohttp.ClientSSLError as exc:
            raise InsecureURLError(
                f"{describe(request)}: TLS failed ({exc.__class__.__name__}); "
                "set ca_file to trust a self-signed certificate",
                connection=self.connection,
                url=safe_url(request),
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._unreachable(request, exc)
        return Response(raw.status, raw.headers, body, str(raw.url), self.connection)

    async def post_form(self, url: str, form: Mapping[str, str]) -> Response:
        """POST a form (an OAuth token request); a network failure is raised."""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        request = Outgoing("POST", URL(url), urlencode(form).encode(), headers)
        response = await self.send(request, {})
        if isinstance(response, UnreachableError):
            raise response
        return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeouts.connect, sock_read=self.timeouts.read
                ),
                connector=aiohttp.TCPConnector(ssl=context),
                headers={"User-Agent": self.user_agent},
            )
        return self._session

    def _unreachable(self, request: Outgoing, exc: BaseException) -> UnreachableError:
        detail = redactor.redact(str(exc)) or exc.__class__.__name__
        error = UnreachableError(
            f"{describe(request)} failed: {detail}",
            connection=self.connection,
            url=safe_url(request),
        )
        error.__cause__ = exc  # as ``raise ... from exc`` would, when the client raises it
        return error


LARGE_BODY = 1024**2
"""Bodies above this many bytes are streamed from a buffer (a bulk import): aiohttp warns that
sending large raw bytes at once may hold up the event loop."""


def _payload(body: bytes | None) -> bytes | io.BytesIO | None:
    """The body to hand aiohttp, made afresh for each attempt (a buffer is read only once)."""
    return io.BytesIO(body) if body is not None and len(body) > LARGE_BODY else body


def safe_url(request: Outgoing) -> str:
    """The request's URL with every known secret masked, for errors and reports."""
    return redactor.redact(str(request.url))


def describe(request: Outgoing) -> str:
    """``METHOD url`` for logs and messages, with every known secret masked."""
    return f"{request.method} {safe_url(request)}"
