"""A ``csv`` connection's options, checked and read once per pass."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

from attrs import frozen
from yarl import URL

from salync_core.errors import ConfigError, InsecureURLError
from salync_core.http.urls import check_url_security
from salync_core.models import ENTITY_TYPES
from salync_core.platform import ConnectionContext, Option
from salync_csv.columns import ColumnMap, column_map

PAGE_SIZE = 1000
TAB = ("\t", "\\t", "tab")


def secure_url(value: str) -> URL | None:
    """``value`` parsed if the shared client may send to it (see :mod:`salync_core.http.urls`)."""
    try:
        return check_url_security(value)
    except (InsecureURLError, ValueError):
        return None


def _known_encoding(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


OPTIONS = (
    Option("path", help="the CSV file, relative to salync.toml"),
    Option(
        "url",
        check=lambda v: secure_url(v) is not None,
        expected="an absolute https:// URL (http:// only to a loopback address)",
        help="where to GET the CSV, through the connection's shared HTTP client",
    ),
    Option(
        "entity",
        choices=tuple(sorted(ENTITY_TYPES)),
        default="product",
        help="the canonical entity each row is",
    ),
    Option(
        "columns",
        types=(dict,),
        required=True,
        check=lambda table: all(isinstance(v, str) for v in table.values()),
        expected='a table of column = field, such as { SKU = "key", Name = "title.en" }',
        help='which field each column feeds; the item reference\'s column is "key"',
    ),
    Option(
        "delimiter",
        check=lambda v: len(v) == 1 or v in TAB,
        expected='one character (or "tab")',
        help="the cell separator (detected when left out)",
    ),
    Option(
        "quotechar",
        check=lambda v: len(v) == 1,
        expected="one character",
        help="the quote character (detected when left out)",
    ),
    Option(
        "encoding",
        check=_known_encoding,
        expected="an encoding Python knows, such as utf-8 or cp1252",
        help="the text encoding (detected when left out)",
    ),
    Option(
        "decimal_separator",
        choices=(".", ","),
        help='how decimals are written: "." (4.50, the default) or "," (4,50)',
    ),
    Option("has_header", types=(bool,), help="whether the first row names the columns"),
    Option(
        "page_size",
        types=(int,),
        check=lambda v: v > 0,
        expected="a whole number above 0",
        help="rows applied per transaction (default 1000)",
    ),
)


@frozen
class CsvSettings:
    source: str
    """The path as written, or the URL: how pages and messages name the file."""
    path: Path | None
    url: str | None
    columns: ColumnMap
    delimiter: str | None = None
    quotechar: str | None = None
    encoding: str | None = None
    has_header: bool = True
    page_size: int = PAGE_SIZE

    @property
    def entity(self) -> str:
        return self.columns.entity


def read_settings(ctx: ConnectionContext) -> CsvSettings:
    """The connection's options checked; :class:`ConfigError` names the one that is wrong."""
    options = ctx.options
    path, url = options.get("path"), options.get("url")
    if (path is None) == (url is None):
        raise ConfigError(f"{ctx.name}: set exactly one of path (a file) and url")
    if url is not None:
        check_url_security(str(url), connection=ctx.name)
    return CsvSettings(
        source=str(path if path is not None else url),
        path=ctx.directory / str(path) if path is not None else None,
        url=str(url) if url is not None else None,
        columns=column_map(
            str(options.get("entity", "product")),
            options.get("columns"),
            str(options.get("decimal_separator", ".")),
        ),
        delimiter=_one_char(options, "delimiter"),
        quotechar=_one_char(options, "quotechar"),
        encoding=options.get("encoding") or None,
        has_header=bool(options.get("has_header", True)),
        page_size=_page_size(options.get("page_size", PAGE_SIZE)),
    )


def _one_char(options: Any, name: str) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    text = "\t" if value in TAB else value
    if not isinstance(text, str) or len(text) != 1:
        raise ConfigError(f"{name}: expected one character, got {value!r}")
    return text


def _page_size(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise ConfigError(f"page_size: expected a whole number above 0, got {value!r}")
    return value
