"""The ``csv`` platform: a CSV export of an ERP, read from a file or a URL, one row an item.

It mirrors the CSV mode of Sales Layer's Import Connector: the item reference in the ``key``
column decides which record a row creates or updates, and the declared ``columns`` map names the
field each other column feeds. One stream, ``rows``, of the connection's ``entity``:

* each pass reads the whole file, in pages of ``page_size`` rows, so a file of a million rows
  is applied a page (one transaction) at a time and never held whole (:mod:`salync_csv.rows`);
* a bad row goes to the dead letters with its line number and reason, and the rows around it
  apply;
* a file that did not change is not read again (:mod:`salync_csv.source`); the cursor, stored
  with the last page, holds the version read and how it was decoded;
* a changed file is a full file: its last page carries a :class:`~salync_core.platform.Sweep`,
  so the records this connection delivered before and not again are tombstoned, under the
  mass-deletion guard. A pass with a bad row that may be an existing item (a value of the wrong
  type, cells that do not line up) sweeps nothing, and says why; reconciliation
  (:meth:`list_keys`, ``salync reconcile``) counts such a row's key as present.

A pass that stops part-way keeps the previous cursor, so the next run reads the file again from
its first row; rows already applied are no change the second time.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar

import anyio

from salync_core.platform import (
    ConnectionContext,
    Credentials,
    KeyPage,
    Page,
    Platform,
    Record,
    Reject,
    Stream,
    Sweep,
)
from salync_csv.dialect import SAMPLE_BYTES, detect_dialect, detect_encoding
from salync_csv.rows import Batch, RowReader
from salync_csv.settings import OPTIONS, PAGE_SIZE, CsvSettings, read_settings, secure_url
from salync_csv.source import CHUNK, Opened, open_file, open_url

log = logging.getLogger("salync.csv")
KEY_PAGE = 10_000
NO_SERVER = "http://127.0.0.1"
"""The client's base URL for a file: it must have one, and a file sends no request."""


class CsvPlatform(Platform):
    """A CSV file or URL, read into the mirror (registered as ``csv``)."""

    name: ClassVar[str] = "csv"
    streams: ClassVar[tuple[Stream, ...]] = (Stream("rows", "product", max_page_size=PAGE_SIZE),)
    secret_options: ClassVar[tuple[str, ...]] = ()
    options = OPTIONS

    def for_connection(self, options: Mapping[str, Any]) -> Platform:
        """The platform whose ``rows`` stream is of the connection's ``entity``."""
        entity = str(options.get("entity", "product"))
        return self if entity == self.streams[0].entity else _for_entity(entity)

    def default_base_url(self, options: Mapping[str, Any]) -> str | None:
        """The URL's origin for ``url`` (the shared client sends it nowhere else); a file needs
        none."""
        url = secure_url(options["url"]) if isinstance(options.get("url"), str) else None
        return str(url.origin()) if url is not None else NO_SERVER  # a bad url: refused at load

    def credentials(self, options: Mapping[str, Any]) -> Credentials:
        return Credentials("none")

    async def fetch(
        self, ctx: ConnectionContext, stream: Stream, cursor: Any
    ) -> AsyncIterator[Page]:
        settings = read_settings(ctx)
        opened = await _open(ctx, settings, cursor)
        if opened is None:
            log.info("%s: %s has not changed; not read", ctx.name, settings.source)
            return
        if not isinstance(opened, Opened):  # touched, same bytes: only the cursor moves
            yield Page([], opened, settings.source, complete=True)
            return
        async for page in _pages(ctx, settings, opened, cursor):
            yield page

    def map_inbound(
        self, ctx: ConnectionContext, stream: Stream, item: Any
    ) -> Iterable[Record | Reject]:
        """Rows are typed while the file is read (:mod:`salync_csv.rows`): here they only
        become records."""
        entity = str(ctx.options.get("entity", "product"))
        yield Record(entity, item["key"], item["fields"], source_ts=item["source_ts"])

    async def list_keys(self, ctx: ConnectionContext, stream: Stream) -> AsyncIterator[KeyPage]:
        """Every item reference in the file as it is now (read whole, changed or not)."""
        settings = read_settings(ctx)
        opened = await _open(ctx, settings, None)
        assert isinstance(opened, Opened)  # with no cursor to compare, the source is read
        reader = _reader(ctx, settings, opened)
        try:
            await anyio.to_thread.run_sync(reader.read_header)
            keys = reader.keys()
            while chunk := await anyio.to_thread.run_sync(_take, keys, KEY_PAGE):
                yield KeyPage([(key, None) for key in chunk], settings.entity)
        finally:
            reader.text.close()


@cache
def _for_entity(entity: str) -> CsvPlatform:
    stream = Stream("rows", entity, max_page_size=PAGE_SIZE)
    kind: type[CsvPlatform] = type(f"CsvPlatform[{entity}]", (CsvPlatform,), {"streams": (stream,)})
    return kind()


async def _open(
    ctx: ConnectionContext, settings: CsvSettings, cursor: Any
) -> Opened | dict[str, Any] | None:
    last = cursor if isinstance(cursor, dict) else None
    if settings.url is not None:
        return await open_url(ctx.http, settings.url, last, SAMPLE_BYTES)
    assert settings.path is not None
    return await open_file(settings.path, last, SAMPLE_BYTES, ctx.name)


def _reader(ctx: ConnectionContext, settings: CsvSettings, opened: Opened) -> RowReader:
    """A row reader over the opened bytes, decoded and split as declared or as detected."""
    encoding = detect_encoding(opened.sample, settings.encoding)
    if encoding.note:
        log.warning("%s: %s: %s", ctx.name, settings.source, encoding.note)
    sample = opened.sample.decode(encoding.name, errors="replace")
    dialect = detect_dialect(sample, delimiter=settings.delimiter, quotechar=settings.quotechar)
    text = io.TextIOWrapper(
        io.BufferedReader(opened.stream, CHUNK),
        encoding=encoding.name,
        errors="surrogateescape",
        newline="",
    )
    return RowReader(
        text,
        dialect,
        settings.columns,
        has_header=settings.has_header,
        encoding=encoding.name,
        source_ts=opened.source_ts,
        note=encoding.note,
    )


async def _pages(
    ctx: ConnectionContext, settings: CsvSettings, opened: Opened, cursor: Any
) -> AsyncIterator[Page]:
    """The file's pages; only the last carries the new cursor and the sweep (see the module
    docstring)."""
    since = _local_now()
    reader = _reader(ctx, settings, opened)
    try:
        await anyio.to_thread.run_sync(reader.read_header)
        batches = reader.batches(settings.page_size)
        current: Batch | None = await anyio.to_thread.run_sync(next, batches, None)
        if current is None:  # a header and no rows
            current = Batch([], [], reader.line + 1, reader.line)
        while current is not None:
            following = await anyio.to_thread.run_sync(next, batches, None)
            done = following is None
            yield Page(
                current.items,
                _snapshot(settings, opened, reader) if done else cursor,
                f"{settings.source} lines {current.first_line}-{current.last_line}",
                rejects=current.rejects,
                complete=done,
                full=done,
                sweep=_sweep(ctx, settings, reader, since) if done else None,
            )
            current = following
    finally:
        reader.text.close()


def _snapshot(settings: CsvSettings, opened: Opened, reader: RowReader) -> dict[str, Any]:
    """The cursor of a version read to its end: what identifies it, and how it was read."""
    return {
        **opened.snapshot,
        "sha256": opened.stream.sha256.hexdigest(),
        "encoding": reader.encoding,
        **({"encoding_note": reader.note} if reader.note else {}),
        "delimiter": reader.dialect.delimiter,
        "lines": reader.line,
    }


def _sweep(
    ctx: ConnectionContext, settings: CsvSettings, reader: RowReader, since: str
) -> Sweep | None:
    """What ends a pass over a full file, unless a bad row may be an item that still exists."""
    if reader.hiding:
        log.warning(
            "%s: %s: %d bad row(s) may be items that still exist, so rows missing from the "
            "file were not tombstoned; fix the rows, or run a reconcile",
            ctx.name,
            settings.source,
            reader.hiding,
        )
        return None
    return Sweep((settings.entity,), since)


def _local_now() -> str:
    """Now on the local clock, in the mirror's format (what ``Sweep.since`` is compared to)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def _take(keys: Iterator[str], count: int) -> list[str]:
    return [key for key, _ in zip(keys, range(count), strict=False)]
