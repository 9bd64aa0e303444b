"""Where the CSV comes from, and whether it changed since it was last read whole.

A file is compared by size and modification time first (one ``stat``, nothing read); when only
its modification time moved, its SHA-256 decides, before anything is parsed. A URL is read
through the connection's shared HTTP client with a conditional GET (``If-None-Match`` with the
last ``ETag``, ``If-Modified-Since`` with the last ``Last-Modified``): a ``304`` means nothing
to read, and a server that sends neither is still caught by the body's SHA-256.

Each snapshot is a small JSON-ready dict, stored as the stream's cursor once its last page is
applied.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio
from attrs import frozen

from salync_core.converters import format_datetime
from salync_core.errors import UnreachableError
from salync_core.http import HttpClient

CHUNK = 1 << 16
_ACCEPT = "text/csv, text/plain;q=0.9, */*;q=0.5"


class HashingReader(io.RawIOBase):
    """A binary stream that hashes what is read through it (the file is read only once)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)
        self.sha256.update(memoryview(buffer)[:count])
        return count

    def close(self) -> None:
        self.raw.close()
        super().close()


@frozen
class Opened:
    """A source to read: its bytes, what identifies this version, and when it was written."""

    stream: HashingReader
    sample: bytes
    snapshot: dict[str, Any]
    """The new cursor, without the ``sha256`` that the whole read gives."""
    source_ts: str | None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open_file(path: Path, sample_size: int) -> tuple[io.BufferedIOBase, bytes]:
    with path.open("rb") as handle:
        sample = handle.read(sample_size)
    return path.open("rb"), sample


async def open_file(
    path: Path, last: Mapping[str, Any] | None, sample_size: int, connection: str
) -> Opened | dict[str, Any] | None:
    """The file opened to read, or ``None`` when it is the version last read, or the new cursor
    alone when only its modification time moved (its content is the same)."""
    try:
        stat = await anyio.to_thread.run_sync(path.stat)
        version = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if last and all(last.get(k) == v for k, v in version.items()):
            return None
        known = last or {}
        if known.get("size") == stat.st_size and known.get("sha256"):
            digest = await anyio.to_thread.run_sync(file_sha256, path)
            if digest == known["sha256"]:
                return {**known, **version}
        raw, sample = await anyio.to_thread.run_sync(_open_file, path, sample_size)
    except OSError as exc:
        raise UnreachableError(
            f"cannot read {path}: {exc.strerror or exc}", connection=connection, url=str(path)
        ) from None
    modified = format_datetime(datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC))
    return Opened(HashingReader(raw), sample, version, modified)


async def open_url(
    http: HttpClient, url: str, last: Mapping[str, Any] | None, sample_size: int
) -> Opened | dict[str, Any] | None:
    """The URL's body to read, or ``None`` when the server says it is the version last read,
    or the new cursor alone when the body shows it (a server without validators). The shared
    client reads a body whole; it is parsed as a stream all the same."""
    headers = {"Accept": _ACCEPT}
    if last and last.get("etag"):
        headers["If-None-Match"] = str(last["etag"])
    if last and last.get("last_modified"):
        headers["If-Modified-Since"] = str(last["last_modified"])
    response = await http.request("GET", url, headers=headers)
    if response.status == 304:
        return None
    body = response.body
    version = {
        "etag": response.headers.get("ETag"),
        "last_modified": response.headers.get("Last-Modified"),
    }
    if last and last.get("sha256") == hashlib.sha256(body).hexdigest():
        return {**last, **version}
    server_time = response.server_time
    stamp = response.headers.get("Last-Modified")
    source_ts = _http_date(stamp) or (format_datetime(server_time) if server_time else None)
    return Opened(HashingReader(io.BytesIO(body)), body[:sample_size], version, source_ts)


def _http_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return format_datetime(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None
