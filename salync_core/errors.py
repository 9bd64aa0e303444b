"""Everything Salync raises, grouped by what the caller should do next.

::

    SalyncError
    ├── ConfigError            fatal: the configuration is wrong; fix salync.toml
    ├── PluginError            fatal: a plugin is missing or broke its contract
    ├── StoreError             fatal: the mirror cannot be opened or is newer than this code
    ├── TransportError         raised by the shared HTTP client, always naming the connection
    │   ├── AuthError              fatal: credentials refused even after one refresh
    │   │   └── NeedsReconnect         fatal: the grant is gone; run `salync connect NAME`
    │   ├── InsecureURLError       fatal: plain http:// to a host that is not loopback
    │   ├── UnreachableError       retriable: DNS, connect or read failures (after retries)
    │   ├── ServerError            retriable: 5xx answers (after retries)
    │   ├── RateLimitedError       retriable: 429 answers (after retries)
    │   ├── BadResponseError       retriable: a truncated or non-JSON body (after retries)
    │   ├── NotFoundError          skippable: one item is gone; record it and go on
    │   └── RejectedError          data: the platform refused what we sent (validation)
    ├── DataError              data: one record cannot be mapped; it goes to dead letters
    ├── PolicyError            fatal: a conflict policy or a local edit breaks the rules
    ├── ConflictError          a conflict cannot be resolved as asked
    ├── MirrorBusy             another process is syncing the same mirror; try again later
    └── Fenced                 fatal: this run's writer lease was taken over; stop writing

Control signals are not errors and do not derive from ``SalyncError``:
``QuotaExhausted`` stops a sync cleanly at a committed page when a daily quota runs out.

The marker classes ``Fatal``, ``Retriable`` and ``Skippable`` let a caller branch on what to do
next without knowing every concrete class.
"""

from __future__ import annotations

from datetime import datetime


class Fatal:
    """Marker: retrying will not help; a person has to act."""


class Retriable:
    """Marker: the same request may succeed later."""


class Skippable:
    """Marker: this one item is lost to us; record it and carry on with the rest."""


class SalyncError(Exception):
    """Root of every error Salync raises."""


class ConfigError(SalyncError, Fatal):
    """The configuration file or a setting in it is wrong."""


class PluginError(SalyncError, Fatal):
    """A plugin is not installed, or it broke the plugin contract."""


class StoreError(SalyncError, Fatal):
    """The SQLite mirror cannot be used."""


class TransportError(SalyncError):
    """An HTTP exchange with a platform failed."""

    def __init__(
        self, message: str, *, connection: str = "", status: int | None = None, url: str = ""
    ) -> None:
        self.connection = connection
        self.status = status
        self.url = url
        prefix = f"{connection}: " if connection else ""
        super().__init__(prefix + message)


class AuthError(TransportError, Fatal):
    """The platform refused our credentials, even after one refresh."""


class NeedsReconnect(AuthError):
    """The platform's grant is gone (revoked, or its refresh token may be spent): only the
    merchant can authorize the app again. ``str(exc)`` is one line with the command to run."""

    def __init__(self, connection: str, why: str) -> None:
        super().__init__(
            f"{why}; the connection needs reconnecting: run `salync connect {connection}`",
            connection=connection,
        )


class InsecureURLError(TransportError, Fatal):
    """Plain http:// was asked for a host that is not a loopback address."""


class UnreachableError(TransportError, Retriable):
    """The host could not be reached or stopped answering."""


class ServerError(TransportError, Retriable):
    """The platform answered 5xx."""


class RateLimitedError(TransportError, Retriable):
    """The platform kept answering 429 after every allowed retry."""


class BadResponseError(TransportError, Retriable):
    """The body was truncated, not JSON, or not the shape the plugin expects."""

    def __init__(self, message: str, *, body: bytes = b"", **kwargs: object) -> None:
        self.body = body
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class NotFoundError(TransportError, Skippable):
    """One item was not found (404)."""


class RejectedError(TransportError):
    """The platform refused a write as invalid; its message says why."""


class DataError(SalyncError, Skippable):
    """One record could not be mapped or validated."""


class PolicyError(SalyncError, Fatal):
    """A policy is invalid, or a change is not allowed by the policies."""


class ConflictError(SalyncError):
    """A conflict cannot be resolved as asked."""


class QuotaExhausted(Exception):
    """The connection's daily quota is used up; the sync stops and can go on at ``resume_at``."""

    def __init__(self, connection: str, resume_at: datetime) -> None:
        self.connection = connection
        self.resume_at = resume_at
        super().__init__(
            f"{connection}: daily request quota used up; resumes at {resume_at:%Y-%m-%d %H:%M} UTC"
        )


class MirrorBusy(SalyncError):
    """Another process (or another engine in this one) is writing to the same mirror.

    ``str(exc)`` is one line naming the mirror and its holder (pid, command, since when)."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is busy: {holder} is syncing it; try again when it finishes")


class Fenced(SalyncError, Fatal):
    """This run's writer lease on the mirror is no longer its own: another holder took it over
    after it expired (the run stalled, or its worker was believed lost). The write transaction
    that found out was rolled back; the run must stop writing."""

    def __init__(self, path: str, holder: str, token: int, current: str) -> None:
        self.path = path
        self.holder = holder
        self.token = token
        super().__init__(
            f"{path}: fenced: the writer lease of {holder} (token {token}) was taken over by "
            f"{current}; this run's write was rolled back"
        )
