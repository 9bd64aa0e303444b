"""Map inbound: a platform's raw items to validated canonical records, bad items to rejects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import evolve

from salync_core.converters import codec
from salync_core.errors import DataError
from salync_core.platform import ConnectionContext, Platform, Record, Reject, Stream


def map_items(
    platform: Platform, ctx: ConnectionContext, stream: Stream, items: Sequence[Any]
) -> tuple[list[Record], list[tuple[Any, str]]]:
    """Map and validate every item; one that fails is rejected with the reason, the rest go on."""
    records: list[Record] = []
    rejects: list[tuple[Any, str]] = []
    for item in items:
        try:
            mapped = []
            for out in platform.map_inbound(ctx, stream, item):
                if isinstance(out, Reject):
                    rejects.append((out.raw, out.reason))
                else:
                    mapped.append(_validated(out))
        except DataError as exc:
            rejects.append((item, str(exc)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            rejects.append((item, f"{platform.name} could not map this {stream.entity}: {reason}"))
        else:
            records.extend(mapped)
    return records, rejects


def _validated(record: Record) -> Record:
    if not isinstance(record.key, str) or not record.key.strip():
        raise DataError(f"{record.entity} without its reference (key {record.key!r})")
    fields = codec(record.entity).normalize(record.fields)
    return record if fields is record.fields else evolve(record, fields=fields)
