"""Writing to Salla: products one by one, stock in bulk.

Products: ``POST /products`` creates (the answer's ``data.id`` becomes the external id), ``PUT
/products/{id}`` updates, ``DELETE /products/{id}`` deletes (202). A refusal (4xx) is a
rejected result with Salla's message; other failures propagate for the engine to retry.

Stock: ``POST /products/quantities/bulk`` with ``{"products": [{"identifer_type": "sku",
"identifer": ..., "quantity": ..., "mode": ...}]}`` (sic ``identifer``), up to :data:`BULK_MAX`
lines a call. A line carries the *difference* the mirror wants relative to what Salla last held
(the connection's base for ``on_hand``) as ``increment`` or ``decrement``, never an
``overwrite``: Salla queues the line and applies it minutes later, so a sale made in Salla
between our read and the queue's turn is kept (base 10, a sale of 2, the host sets 15: Salla
ends at 10 - 2 + 5 = 13, and the next read brings 13 into the mirror). Only a level Salla never
reported (no ``on_hand`` in the base) is written with ``overwrite``.

A difference must never be applied twice, and Salla honours no idempotency key (API-FACTS §3
publishes none). The rule:

1. a line is sent at most once: once the bulk call has been attempted (answered 201, or failed
   in a way that leaves it unknown whether Salla queued it: a timeout, a 5xx), the outbox row
   becomes ``queued`` (:class:`~salync_core.platform.PushResult`) with a receipt holding the
   quantity Salla showed just before the send; only a 4xx refusal is final ("rejected");
2. a line is acknowledged once its product shows a quantity other than the receipt's. By
   default (``queue_wait`` 0) the push reads once right after the send and leaves the rest
   queued for a later run; with ``queue_wait`` set it polls the last line's product (the queue
   works in order) every :data:`POLL_SECONDS` up to that many platform seconds. Waiting inline
   is for hosts without webhooks: while a line is sent but not yet recorded as queued, a
   ``product.updated`` webhook carrying the applied quantity would be counted as a change;
3. a line still unchanged stays queued: the core asks again later (a growing, capped
   schedule, no attempt spent, never a dead letter), and the platform only *reads* it back
   (never resends); after :data:`QUEUE_TRUST` platform seconds unchanged it is acknowledged as
   applied, since resending could oversell and Salla gives no way to ask its queue.

While a line is queued the mirror does not read that stock from Salla (a read cannot tell the
line, applied or not, from a sale), so the base stays what the difference was computed from;
once acknowledged the base is the mirror's value, and the next read's quantity minus that base
(a sale since) is merged into the mirror: no echo, no sale lost (``stock_level.on_hand``
merges by difference, :data:`salync_core.models.COUNTER_FIELDS`). The trade-off is deliberate:
a line lost by Salla after an unclear failure is not resent (a host's restock may need
redoing), but stock is never counted twice and so never oversold.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, TypeGuard

import anyio
import orjson

from salync_core.errors import DataError, NotFoundError, RejectedError, SalyncError
from salync_core.http import path_segment
from salync_core.platform import ConnectionContext, Outbound, PushResult
from salync_salla.mapping import quantity

BULK_MAX = 100
"""Lines per bulk call. [DERIVED] the docs publish no maximum; 100 is assumed and the emulator
refuses more."""
POLL_SECONDS = 15.0
QUEUE_WAIT = 0.0
QUEUE_TRUST = 3600.0
"""Platform seconds after which a queued line still unseen is taken as applied (never resent)."""
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
    """The bulk line for one stock level (keyed ``SKU@location``): the difference from what Salla
    last held, or ``overwrite`` when it never reported a quantity (a zero difference is a line of
    quantity 0 and is not sent)."""
    on_hand = item.fields.get("on_hand")
    if not _count(on_hand):
        raise DataError(f"stock of {item.key} must be a whole number of at least 0 ({on_hand!r})")
    sku = item.key.rsplit("@", 1)[0]
    held = item.base.get("on_hand")
    if not _count(held):
        return {"identifer_type": "sku", "identifer": sku, "quantity": on_hand, "mode": "overwrite"}
    mode = "increment" if on_hand >= held else "decrement"
    return {
        "identifer_type": "sku",
        "identifer": sku,
        "quantity": abs(on_hand - held),
        "mode": mode,
    }


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def push_stock(
    ctx: ConnectionContext, batch: Sequence[tuple[Outbound, Any]]
) -> list[PushResult]:
    """Write a batch of stock levels (at most :data:`BULK_MAX`); see the module docstring.
    A level Salla has never shown (no external id) cannot be verified and is refused."""
    results: dict[str, PushResult] = {}
    fresh: list[tuple[Outbound, dict[str, Any]]] = []
    earlier: list[Outbound] = []
    for item, line in batch:
        if item.external_id is None:
            message = "Salla has not shown this SKU yet; sync before pushing its stock"
            results[item.key] = PushResult(item.key, "rejected", message=message)
        elif item.receipt is not None:
            earlier.append(item)  # sent before: read back, never sent again
        elif line["mode"] != "overwrite" and line["quantity"] == 0:
            results[item.key] = PushResult(item.key, "ok", external_id=item.external_id)
        else:
            fresh.append((item, line))
    if earlier:
        shown = await _shown(ctx, earlier)
        for item in earlier:
            results[item.key] = _confirm(ctx, item, _receipt(item.receipt), shown.get(item.key))
    if fresh:
        items = [item for item, _ in fresh]
        before = await _shown(ctx, items)
        sent_at = time.time()
        try:
            await bulk_quantities(ctx, [line for _, line in fresh])
        except (RejectedError, NotFoundError) as exc:  # refused: nothing was queued
            for item in items:
                results[item.key] = PushResult(item.key, "rejected", message=str(exc))
        except SalyncError:  # unknown whether Salla queued it: never send it again
            for item, line in fresh:
                results[item.key] = _queued(item, _sent(line, before.get(item.key), sent_at))
        else:
            await _wait_for_queue(ctx, items, before.get(items[-1].key))
            after = await _shown(ctx, items)
            for item, line in fresh:
                receipt = _sent(line, before.get(item.key), sent_at)
                results[item.key] = _confirm(ctx, item, receipt, after.get(item.key))
    return [results[item.key] for item, _ in batch]


def _sent(line: dict[str, Any], shown: int | None, sent_at: float) -> dict[str, Any]:
    """The receipt of a sent line: what Salla showed before, when, and the line itself."""
    return {"shown": shown, "sent_at": sent_at, "mode": line["mode"], "quantity": line["quantity"]}


def _queued(item: Outbound, receipt: dict[str, Any]) -> PushResult:
    text = orjson.dumps(receipt).decode()
    return PushResult(item.key, "queued", message="queued by Salla, not applied", receipt=text)


def _receipt(text: str | None) -> dict[str, Any]:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        value = {}
    return value if isinstance(value, dict) else {}


def _confirm(
    ctx: ConnectionContext, item: Outbound, receipt: dict[str, Any], shown: int | None
) -> PushResult:
    """Acknowledged once Salla shows another quantity than before the send (or after
    :data:`QUEUE_TRUST`); otherwise still queued, with the same receipt."""
    before, sent_at = receipt.get("shown"), receipt.get("sent_at")
    if not isinstance(sent_at, int | float):
        sent_at = receipt["sent_at"] = time.time()
    waited = (time.time() - sent_at) * ctx.http.time_scale
    if (shown is not None and shown != before) or waited >= QUEUE_TRUST:
        return PushResult(item.key, "ok", external_id=item.external_id)
    return _queued(item, receipt)


async def _wait_for_queue(
    ctx: ConnectionContext, items: list[Outbound], before: int | None
) -> None:
    """Poll the last line's product until its quantity moves (the queue works in order)."""
    scale = ctx.http.time_scale
    waited = 0.0
    limit = float(ctx.options.get("queue_wait", QUEUE_WAIT))
    while waited < limit:
        step = min(POLL_SECONDS, limit - waited)
        await anyio.sleep(step / scale)
        waited += step
        if (await _shown(ctx, items[-1:])).get(items[-1].key) != before:
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
