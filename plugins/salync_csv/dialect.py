"""How a CSV file is written: its encoding and its dialect, declared or detected from a sample.

Detection follows "resist the temptation to guess" as far as a CSV allows: a byte-order mark
is believed; otherwise the sample must decode as UTF-8 to be read as UTF-8; a sample that does
not is read as cp1252 (Windows Western European, what Excel writes), or latin-1 where cp1252
leaves a byte undefined, and the guess is said aloud (:attr:`Encoding.note`) so a declared
``encoding`` can settle it. The delimiter and quote character come from :class:`csv.Sniffer`
unless declared, and fall back to a comma and a double quote.
"""

from __future__ import annotations

import codecs
import csv
from typing import Any

from attrs import frozen

from salync_core.errors import ConfigError

SAMPLE_BYTES = 64 * 1024
"""How much of the file detection looks at."""
DELIMITERS = ",;\t|"
"""The delimiters the sniffer may choose from (anything else must be declared)."""

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@frozen
class Encoding:
    name: str
    note: str = ""
    """Why this encoding is a guess, when it is one."""


@frozen
class Dialect:
    """The parameters :func:`csv.reader` takes."""

    delimiter: str = ","
    quotechar: str = '"'
    doublequote: bool = True
    escapechar: str | None = None
    skipinitialspace: bool = False

    def reader_params(self) -> dict[str, Any]:
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            "doublequote": self.doublequote,
            "escapechar": self.escapechar,
            "skipinitialspace": self.skipinitialspace,
            "strict": False,
        }


def detect_encoding(sample: bytes, declared: str | None = None) -> Encoding:
    """The declared encoding, else the one the sample's byte-order mark names, else UTF-8 if
    the sample decodes as UTF-8, else cp1252 or latin-1 with a note saying it is a guess."""
    if declared:
        try:
            return Encoding(codecs.lookup(declared).name)
        except LookupError:
            raise ConfigError(f"encoding {declared!r} is not an encoding Python knows") from None
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return Encoding(name)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError as exc:
        where = f"byte 0x{sample[exc.start]:02x} at offset {exc.start}"
        for guess in ("cp1252", "latin-1"):
            try:
                sample.decode(guess)
            except UnicodeDecodeError:
                continue
            return Encoding(
                guess,
                f"not UTF-8 ({where}); read as {guess}: set encoding to be sure",
            )
    return Encoding("utf-8")


def detect_dialect(
    text: str, *, delimiter: str | None = None, quotechar: str | None = None
) -> Dialect:
    """The dialect of a decoded sample, with the declared parts taken as given."""
    complete = text[: text.rfind("\n") + 1] or text  # a row cut at the sample's end misleads
    try:
        sniffed = csv.Sniffer().sniff(complete, delimiters=delimiter or DELIMITERS)
    except csv.Error:
        return Dialect(delimiter=delimiter or ",", quotechar=quotechar or '"')
    return Dialect(
        delimiter=delimiter or sniffed.delimiter,
        quotechar=quotechar or sniffed.quotechar or '"',
        doublequote=sniffed.doublequote,
        escapechar=sniffed.escapechar,
        skipinitialspace=sniffed.skipinitialspace,
    )
