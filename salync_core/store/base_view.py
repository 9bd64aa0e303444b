"""A connection's base as a push hands it to a platform, decoded only if the platform reads it.

Most platforms map an outbound write from its fields alone; a few read what the connection
last held (a stock level's difference, whether a movement exists). Decoding every due row's
record to build a base nobody reads was a third of a bulk push's store work, so the base of an
:class:`~salync_core.platform.Outbound` is this read-only mapping over ``id_map.base`` and the
record's JSON, decoded on the first read (``store/bases.py`` says what it holds)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from salync_core.store.bases import decode_base


class BaseView(Mapping[str, Any]):
    """What a connection last held of a record, from ``id_map.base`` (``stored``) and the
    record's fields JSON (``record``, ``None`` when the mirror has none); read-only."""

    __slots__ = ("_decoded", "_record", "_stored")

    def __init__(self, stored: str | None, record: str | None) -> None:
        self._stored = stored
        self._record = record
        self._decoded: Mapping[str, Any] | None = None

    def _base(self) -> Mapping[str, Any]:
        if self._decoded is None:
            fields = None if self._record is None else orjson.loads(self._record)
            self._decoded = decode_base(self._stored, fields)
        return self._decoded

    def __getitem__(self, name: str) -> Any:
        return self._base()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._base())

    def __len__(self) -> int:
        return len(self._base())

    def __repr__(self) -> str:
        return f"BaseView({dict(self._base())!r})"
