"""Rows of a decoded CSV text into batches of items, with the bad rows set aside.

A row is bad when its cells do not line up with the header, when its key cell is empty, when
its key already appeared on an earlier line, when it holds bytes its encoding cannot read, or
when a value is not of its field's type (:mod:`salync_csv.columns`); it becomes a
:class:`~salync_core.platform.Reject` naming its line and the reason, and the rows around it go
on. Line numbers are the file's physical lines (a quoted cell may span several), so the one in
a dead letter is where an editor shows the row.

Values are typed here, while the file is read, rather than when the engine maps each item, so
that the pass knows at its end whether a bad row may hide an item that still exists
(:attr:`RowReader.hiding`): such a pass must not tombstone what it did not deliver.

Only one batch of rows is held at a time, so memory stays flat however long the file; what
grows with the file is the set of keys seen, to catch a key written twice.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any, TextIO

from attrs import define, field, frozen

from salync_core.errors import ConfigError, DataError
from salync_core.platform import Reject
from salync_csv.columns import ColumnMap
from salync_csv.dialect import Dialect

_UNDECODABLE = re.compile("[\udc80-\udcff]")
"""What ``errors="surrogateescape"`` turns a byte the encoding cannot read into."""


@frozen
class Batch:
    items: list[dict[str, Any]]
    rejects: list[Reject]
    first_line: int
    last_line: int


@define
class RowReader:
    """Reads a CSV text stream once, front to back."""

    text: TextIO
    dialect: Dialect
    columns: ColumnMap
    has_header: bool = True
    encoding: str = "utf-8"
    source_ts: str | None = None
    note: str = ""
    """Why the encoding is a guess, when it is one."""
    header: list[str] = field(init=False, factory=list)
    _rows: Any = field(init=False, default=None)
    line: int = field(init=False, default=0)
    """The last physical line read."""
    hiding: int = field(init=False, default=0)
    """Bad rows that may belong to an item that still exists (all but a missing key or a key
    written twice, whose first row was delivered)."""
    _seen: dict[str, int] = field(init=False, factory=dict)
    _pending: list[str] | None = field(init=False, default=None)
    """The first row of a file without a header: read to count the columns, not yet used."""

    def __attrs_post_init__(self) -> None:
        self._rows = csv.reader(self.text, **self.dialect.reader_params())

    def read_header(self) -> None:
        """Read the header row (or number the columns when there is none) and check that every
        mapped column is there; :class:`ConfigError` names the missing ones."""
        first = next(self._rows, None)
        if first is None:
            raise DataError("the file is empty: not even a header row")
        if self.has_header:
            self.line = self._rows.line_num
            self.header = [cell.strip() for cell in first]
        else:
            self.header = [str(n) for n in range(1, len(first) + 1)]
            self._pending = first
        missing = [name for name in self.columns.names if name not in self.header]
        if missing:
            raise ConfigError(
                f"columns: the file has no column {', '.join(map(repr, missing))} "
                f"(its columns: {', '.join(map(repr, self.header))})"
            )

    def batches(self, size: int) -> Iterator[Batch]:
        """Every remaining row, ``size`` items (good rows) at most per batch."""
        items: list[dict[str, Any]] = []
        rejects: list[Reject] = []
        first = self.line + 1
        for line, cells in self._numbered():
            outcome = self._check(line, cells)
            if isinstance(outcome, Reject):
                rejects.append(outcome)
            elif outcome is not None:
                items.append(outcome)
            if len(items) >= size:
                yield Batch(items, rejects, first, self.line)
                items, rejects, first = [], [], self.line + 1
        if items or rejects:
            yield Batch(items, rejects, first, self.line)

    def keys(self) -> Iterator[str]:
        """The key of every row that has one where the key column is (for a key scan: a row with
        a bad value still exists, so it never counts as gone)."""
        index = self.header.index(self.columns.key_column)
        for _, cells in self._numbered():
            if isinstance(cells, list) and index < len(cells) and (key := cells[index].strip()):
                yield key

    def _numbered(self) -> Iterator[tuple[int, list[str] | csv.Error]]:
        """Each row with the line it starts on (or the parser's complaint about it)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.line = self._rows.line_num
            yield 1, pending
        while True:
            start = self.line + 1
            try:
                cells = next(self._rows)
            except StopIteration:
                return
            except csv.Error as exc:
                self.line = self._rows.line_num
                yield start, exc
                continue
            self.line = self._rows.line_num
            yield start, cells

    def _reject(self, raw: dict[str, Any], reason: str, *, hides: bool = True) -> Reject:
        self.hiding += hides
        return Reject(raw, f"line {raw['line']}: {reason}")

    def _check(self, line: int, cells: list[str] | csv.Error) -> dict[str, Any] | Reject | None:
        if isinstance(cells, csv.Error):
            return self._reject({"line": line}, f"not readable as CSV: {cells}")
        if not any(cells):
            return None  # a blank line
        if any(_UNDECODABLE.search(cell) for cell in cells):
            return self._reject(
                {"line": line, "cells": [_UNDECODABLE.sub("\ufffd", c) for c in cells]},
                f"bytes that are not {self.encoding} text (set the connection's encoding)",
            )
        if len(cells) != len(self.header):
            return self._reject(
                {"line": line, "cells": cells},
                f"{len(cells)} values where the header has {len(self.header)} columns",
            )
        row = dict(zip(self.header, cells, strict=True))
        key = row[self.columns.key_column].strip()
        if not key:
            return self._reject(
                {"line": line, "row": row},
                f"no item reference in the key column {self.columns.key_column!r}",
                hides=False,
            )
        first = self._seen.setdefault(key, line)
        if first != line:
            return self._reject(
                {"line": line, "row": row},
                f"key {key!r} already appeared on line {first}; the first one was kept",
                hides=False,
            )
        try:
            fields = self.columns.fields(row)
        except DataError as exc:
            return self._reject({"line": line, "row": row}, str(exc))
        return {"line": line, "key": key, "fields": fields, "source_ts": self.source_ts}
