"""Secrets in memory, at rest and near logs.

* :class:`Secret` wraps a value so that ``repr``, ``str``, f-strings, tracebacks and pickles
  never show it; only :meth:`Secret.reveal` does, at the one place that sends it.
* :class:`SecretBox` encrypts secrets for the store with a key from ``SALYNC_SECRET_KEY`` or a
  key file made by :func:`create_key_file` (mode 0600 from the first byte, never overwritten).
* :class:`RedactingFilter` is belt and braces for logging: a secret should never reach a log
  record, but if one does, the filter masks every value registered with it.
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NoReturn

from cryptography.fernet import Fernet, InvalidToken

from salync_core.errors import ConfigError

KEY_ENV = "SALYNC_SECRET_KEY"
MASK = "****"
MIN_REDACTED = 8
"""Shorter values are not masked in logs: they occur in ordinary text too often (every "x" of
a log line would go), and no real key or token is that short."""


class Secret:
    """A secret string that never shows itself: ``repr`` and ``str`` give ``Secret('****')``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value; call it only where the value is sent or encrypted."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:
        """Refuse pickling: a pickle in a log, a cache or a queue would carry the plain value."""
        raise TypeError("a Secret cannot be pickled; encrypt it with SecretBox instead")


class SecretBox:
    """Encrypts secrets for storage with a Fernet key.

    Fernet (AES-128-CBC with HMAC-SHA256, a random IV and a timestamp) is authenticated: a
    wrong key or a tampered value fails loudly instead of decrypting to garbage. It has one
    key format (urlsafe base64 of 32 bytes) that fits an environment variable, and it is the
    `cryptography` package's recommended recipe, so there is nothing to choose and get wrong.
    """

    def __init__(self, key: Secret) -> None:
        try:
            self._fernet = Fernet(key.reveal().strip().encode())
        except (ValueError, TypeError):
            raise ConfigError(
                "the secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    @classmethod
    def load(cls, key_file: Path, environ: Mapping[str, str] = os.environ) -> SecretBox:
        """A box keyed by ``SALYNC_SECRET_KEY`` if it is set, else by ``key_file``, which only
        its owner may read (as ssh insists for private keys)."""
        value = environ.get(KEY_ENV)
        if value:
            return cls(Secret(value))
        try:
            mode = key_file.stat().st_mode
            key = Secret(key_file.read_text(encoding="ascii"))
        except FileNotFoundError:
            raise ConfigError(f"no secret key: set {KEY_ENV} or create {key_file}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the key file {key_file}: {type(exc).__name__}"
            ) from None
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"the secret key file {key_file} is readable by others; chmod 600 it")
        return cls(key)

    def encrypt(self, value: bytes | str | Secret) -> bytes:
        """The encrypted token for ``value``."""
        if isinstance(value, Secret):
            value = value.reveal()
        data = value.encode() if isinstance(value, str) else value
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """The plain bytes of ``token``; :class:`ConfigError` if the key does not match."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise ConfigError(
                "cannot decrypt a stored secret: wrong secret key or damaged data"
            ) from None

    def decrypt_secret(self, token: bytes) -> Secret:
        """``token`` decrypted into a :class:`Secret`."""
        return Secret(self.decrypt(token).decode())


def create_key_file(path: Path) -> Path:
    """Write a new Fernet key to ``path`` with mode 0600; refuse to overwrite a file.

    The file is created by ``os.open`` with ``O_EXCL`` and mode 0600, so it is never readable by
    others, not even between creation and a later chmod.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; refusing to overwrite a secret key") from None
    with os.fdopen(fd, "wb") as handle:
        if os.name == "posix":
            os.fchmod(handle.fileno(), 0o600)  # a umask may have taken the owner's bits too
        handle.write(Fernet.generate_key())
    return path


class RedactingFilter(logging.Filter):
    """Masks registered secret values in log records; attach it to a handler.

    Attach to handlers rather than loggers: a logger's filters do not see records that
    propagate from its children.
    """

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        super().__init__()
        self._values: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: Secret) -> None:
        """Mask this secret's value from now on (if it has at least ``MIN_REDACTED`` characters)."""
        if len(secret.reveal()) >= MIN_REDACTED:
            self._values.add(secret.reveal())

    def redact(self, text: str) -> str:
        """``text`` with every registered value replaced by ``****``."""
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


redactor = RedactingFilter()
"""The process-wide filter every :class:`~salync_core.http.HttpClient` registers its secrets
with; a host application adds it to its log handlers."""
