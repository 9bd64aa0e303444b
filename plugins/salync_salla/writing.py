"""Writing to Salla: products one by one, stock in bulk.

Products: ``POST /products`` creates (the answer's ``data.id`` becomes the external id), ``PUT
/products/{id}`` updates, ``DELETE /products/{id}`` deletes (202). A refusal (4xx) is a
rejected result with Salla's message; other failures propagate for the engine to retry.

Stock: ``POST /products/quantities/bulk`` with ``{"products": [{"identifer_type": "sku",
"identifer": ..., "quantity": ..., "mode": "overwrite"}]}`` (sic ``identifer``), up to
:data:`BULK_MAX` lines a call. Salla answers 201 "queued" and applies the lines minutes later,
so a line counts as delivered only once Salla *shows* the new quantity:

1. read each product of the batch (one GET per product) and acknowledge the lines Salla already
   shows (a retry after the queue caught up costs no second write);
2. send the rest in one bulk call, ``mode=overwrite`` so sending a line again is harmless;
3. poll the last line's product (the queue works in order) every :data:`POLL_SECONDS` up to
   ``queue_wait`` platform seconds, then read the batch once more and acknowledge what shows;
   the rest are "retry" results the outbox sends again later.

Until a line is acknowledged the connection's base keeps the old quantity, so a read made before
Salla applied it is no change (the value equals the base) and never reverts the mirror; once it
shows, the read value equals the mirror's: no echo, no flip-flop. ``increment`` and
``decrement`` are available to host code through :func:`bulk_quantities`, never used by the
engine (a retried increment would apply twice).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import anyio

from salync_core.errors import DataError, NotFoundError, RejectedError
from salync_core.http import path_segment
from salync_core.platform import ConnectionContext, Outbound, PushResult
from salync_salla.mapping import quantity

BULK_MAX = 100
"""Lines per bulk call. [DERIVED] the docs publish no maximum; 100 is assumed and the emulator
refuses more."""
POLL_SECONDS = 15.0
QUEUE_WAIT = 300.0
MODES = ("overwrite", "increment", "decrement")


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) else None


async def push_product(ctx: ConnectionContext, item: Outbound, body: Any) -> PushResult:
    try:
        if item.op == "delete":
            if item.external_id is not None:
                with contextlib.suppress(NotFoundError):  # already gone: the delete is done
                    await ctx.http.request("DELETE", f"products/{path_segment(item.external_id)}")
            return PushResult(item.key, "ok", external_id=item.external_id)
        if item.external_id is not None:
            path = f"products/{path_segment(item.external_id)}"
            await ctx.http.request("PUT", path, json=body)
            return PushResult(item.key, "ok", external_id=item.external_id)
        response = await ctx.http.request("POST", "products", json=body)
        created = _data(response.json())
        new_id = created.get("id") if isinstance(created, dict) else None
        return PushResult(item.key, "ok", external_id=None if new_id is None else str(new_id))
    except (RejectedError, NotFoundError, DataError) as exc:  # DataError: an unusable id
        return PushResult(item.key, "rejected", message=str(exc))


async def bulk_quantities(ctx: ConnectionContext, lines: Sequence[dict[str, Any]]) -> None:
    """Queue quantity lines (``identifer_type``/``identifer``/``quantity``/``mode``)."""
    for start in range(0, len(lines), BULK_MAX):
        await ctx.http.request(
            "POST",
            "products/quantities/bulk",
            json={"products": list(lines[start : start + BULK_MAX])},
        )


def stock_line(item: Outbound) -> dict[str, Any]:
    """The bulk line for one stock level (keyed ``SKU@location``)."""
    on_hand = item.fields.get("on_hand")
    if not isinstance(on_hand, int) or isinstance(on_hand, bool) or on_hand < 0:
        raise DataError(f"stock of {item.key} must be a whole number of at least 0 ({on_hand!r})")
    sku = item.key.rsplit("@", 1)[0]
    return {"identifer_type": "sku", "identifer": sku, "quantity": on_hand, "mode": "overwrite"}


async def push_stock(
    ctx: ConnectionContext, batch: Sequence[tuple[Outbound, Any]]
) -> list[PushResult]:
    """Write a batch of stock levels (at most :data:`BULK_MAX`); see the module docstring.
    A level Salla has never shown (no external id) cannot be verified and is refused."""
    known = [(item, line) for item, line in batch if item.external_id is not None]
    shown = await _shown(ctx, [item for item, _ in known])
    pending = [(item, line) for item, line in known if shown.get(item.key) != line["quantity"]]
    if pending:
        await bulk_quantities(ctx, [line for _, line in pending])
        await _wait_for_queue(ctx, [item for item, _ in pending], pending[-1][1]["quantity"])
        shown.update(await _shown(ctx, [item for item, _ in pending]))
    results = []
    for item, line in batch:
        if item.external_id is None:
            message = "Salla has not shown this SKU yet; sync before pushing its stock"
            results.append(PushResult(item.key, "rejected", message=message))
        elif shown.get(item.key) == line["quantity"]:
            results.append(PushResult(item.key, "ok", external_id=item.external_id))
        else:
            results.append(PushResult(item.key, "retry", message="queued by Salla, not applied"))
    return results


async def _wait_for_queue(ctx: ConnectionContext, items: list[Outbound], last: int) -> None:
    scale = ctx.http.time_scale
    waited = 0.0
    limit = float(ctx.options.get("queue_wait", QUEUE_WAIT))
    while waited < limit:
        step = min(POLL_SECONDS, limit - waited)
        await anyio.sleep(step / scale)
        waited += step
        if (await _shown(ctx, items[-1:])).get(items[-1].key) == last:
            return


async def _shown(ctx: ConnectionContext, items: Sequence[Outbound]) -> dict[str, int | None]:
    """The quantity Salla shows for each stock level (by key), one GET per product."""
    products: dict[str, Any] = {}
    shown: dict[str, int | None] = {}
    for item in items:
        if item.external_id is None:
            continue
        product_id, _, variant_id = item.external_id.partition(":")
        if product_id not in products:
            try:
                data, _ = await ctx.http.get_json(f"products/{path_segment(product_id)}")
            except (NotFoundError, DataError):
                data = None
            products[product_id] = _data(data)
        product = products[product_id]
        if not isinstance(product, dict):
            continue
        if not variant_id:
            shown[item.key] = quantity(product.get("quantity"))
            continue
        for sku in product.get("skus") or ():
            if isinstance(sku, dict) and str(sku.get("id")) == variant_id:
                shown[item.key] = quantity(sku.get("stock_quantity"))
    return shown
