"""The Sales Layer PIM through API 1.18 connectors (``api = "1.18"`` on a connection).

One export connector delivers every table in one pass (categories, products and variants
together, in pages of 500 to 100,000 items) with deletions as ``D`` rows, so there is one stream
and no reconciliation scan. Writes go through the import connector in chunks of up to 50,000
items. See :mod:`.connector118`, :mod:`.import118` and :mod:`.mapping118`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from salync_core.platform import (
    ConnectionContext,
    Credentials,
    Limits,
    Option,
    Outbound,
    Page,
    Platform,
    PushResult,
    Record,
    Reject,
    Stream,
)
from salync_saleslayer import import118, mapping118
from salync_saleslayer.connector118 import Exporter
from salync_saleslayer.platform import SalesLayerPlatform


class SalesLayer118Platform(Platform):
    """Sales Layer through the 1.18 export and import connectors."""

    name: ClassVar[str] = "saleslayer"
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream(
            "catalog",
            "product",
            reports_deletions=True,
            max_page_size=100_000,
            also=("category", "variant"),
        ),
    )
    push_batch_size: ClassVar[int] = import118.MAX_ITEMS
    secret_options: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = SalesLayerPlatform.options

    def limits(self, options: Mapping[str, Any]) -> Limits:
        return Limits()  # none documented for 1.18; busy answers are error codes 10, 11, 14

    def credentials(self, options: Mapping[str, Any]) -> Credentials:
        """Requests are signed per call (code, time, unique, key256), not by a header; the
        secret is still handed to the client so every message masks it."""
        return Credentials("none", secret=options.get("secret_key"))

    async def fetch(
        self, ctx: ConnectionContext, stream: Stream, cursor: Any
    ) -> AsyncIterator[Page]:
        async for page in Exporter(ctx).pages(cursor):
            yield page

    def map_inbound(
        self, ctx: ConnectionContext, stream: Stream, item: Any
    ) -> Iterable[Record | Reject]:
        return [mapping118.record(item, ctx.options.get("variant_options", {}))]

    def writable_fields(self, entity: str) -> frozenset[str]:
        return mapping118.WRITABLE.get(entity, frozenset())

    def map_outbound(self, ctx: ConnectionContext, item: Outbound) -> Any:
        if item.op == "delete":
            return None
        return mapping118.import_item(item.entity, item.key, item.fields)

    async def push(
        self, ctx: ConnectionContext, entity: str, batch: Sequence[tuple[Outbound, Any]]
    ) -> Sequence[PushResult]:
        return await import118.push(ctx, entity, batch)
