"""Sales Layer API 1.18 import connector: bulk writes keyed by the item reference.

One signed ``POST`` carries up to :data:`MAX_ITEMS` items: ``input_data`` (``{table: [{"REF":
..., field: value}]}``; the reference decides create or update) and ``delete_data`` (``{table:
[{"REF": ...}]}``). The answer's ``input_response`` says ``result`` 0 (nothing changed), 1 (done)
or 2 (denied), lists errors (one line per refused item, naming its ``REF``) and gives a
``status_tracking`` URL, polled until ``input_status`` is ``end`` (API-FACTS §1.5).

Sending a chunk again is harmless: an item is found by its reference, so a chunk that failed
half-way (a dropped connection, a 5xx) is retried whole without creating anything twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from salync_core.errors import BadResponseError
from salync_core.platform import ConnectionContext, Outbound, PushResult
from salync_saleslayer import connector118, mapping118

log = logging.getLogger("salync.saleslayer")

MAX_ITEMS = 50_000
"""Items one import call may carry ("JSON import supports up to 50,000 items per call")."""
POLL_SECONDS = 1.0
"""The longest wait between polls of the tracking URL (the ``import_poll_seconds`` option)."""
FIRST_POLL_SECONDS = 0.05
"""The first wait: a small import ends within a fraction of a second, so the waits start short
and double up to :data:`POLL_SECONDS` (a long one is not polled more than once a second)."""
MAX_POLLS = 3600
_ITEM_ERROR = re.compile(r'REF "((?:[^"\\]|\\.)*)"')


def item_errors(errors: Any) -> tuple[dict[str, str], list[str]]:
    """Errors naming an item (``REF "X"``) by reference, and the others."""
    lines = errors if isinstance(errors, list) else [errors] if errors else []
    by_ref: dict[str, str] = {}
    general = []
    for line in map(str, lines):
        match = _ITEM_ERROR.search(line)
        if match:
            by_ref.setdefault(match.group(1).replace('\\"', '"'), line)
        else:
            general.append(line)
    return by_ref, general


def body(entity: str, batch: Sequence[tuple[Outbound, Any]]) -> dict[str, Any]:
    """The import body for one chunk of one entity."""
    table = mapping118.TABLE_OF_ENTITY[entity]
    upserts = [payload for item, payload in batch if item.op != "delete"]
    deletes = [{"REF": item.key} for item, _ in batch if item.op == "delete"]
    result: dict[str, Any] = {"input_data_directly": 1}
    if upserts:
        result["input_data"] = {table: upserts}
    if deletes:
        result["delete_data"] = {table: deletes}
    return result


async def push(
    ctx: ConnectionContext, entity: str, batch: Sequence[tuple[Outbound, Any]]
) -> list[PushResult]:
    """Send one chunk and follow its import to the end; one result per item, in order."""
    if len(batch) > MAX_ITEMS:
        raise ValueError(f"an import call carries at most {MAX_ITEMS} items, not {len(batch)}")
    sign = connector118.signer(ctx, "import_code", "import_secret")
    response = await ctx.http.request("POST", "", params=sign.params(), json=body(entity, batch))
    data = connector118.check(response.json(), response.body, ctx, response.url)
    answer = data.get("input_response")
    if not isinstance(answer, dict):
        raise BadResponseError(
            "the import answer has no input_response",
            body=response.body,
            connection=ctx.name,
            url=response.url,
        )
    by_ref, general = item_errors(answer.get("errors", answer.get("error")))
    if answer.get("result") == 2:
        reason = "; ".join(general) or "Sales Layer denied the import (result 2)"
        return [
            PushResult(item.key, "rejected", message=by_ref.get(item.key, reason))
            for item, _ in batch
        ]
    for line in general:
        log.warning("%s: Sales Layer import: %s", ctx.name, line)
    tracking = answer.get("status_tracking")
    if isinstance(tracking, str) and tracking:
        await follow(ctx, tracking, entity, len(batch))
    return [
        PushResult(item.key, "rejected", message=by_ref[item.key])
        if item.key in by_ref
        else PushResult(item.key, "ok", external_id=item.external_id)
        for item, _ in batch
    ]


async def follow(ctx: ConnectionContext, url: str, entity: str, items: int) -> Mapping[str, Any]:
    """Poll the tracking URL until the import ends, logging its progress."""
    waits = poll_waits(float(ctx.options.get("import_poll_seconds", POLL_SECONDS)))
    status: Mapping[str, Any] = {}
    for wait in waits:
        data, response = await ctx.http.get_json(url)
        status = connector118.check(data, response.body, ctx, response.url)
        log.info(
            "%s: importing %d %s item(s): %s %s%% %s",
            ctx.name,
            items,
            entity,
            status.get("input_status"),
            status.get("input_percent_completion"),
            status.get("input_action_message") or "",
        )
        if status.get("input_status") == "end":
            return status
        await anyio.sleep(wait)
    log.warning("%s: the import was still running after %d polls", ctx.name, MAX_POLLS)
    return status


def poll_waits(longest: float) -> list[float]:
    """The waits after each of :data:`MAX_POLLS` polls: from :data:`FIRST_POLL_SECONDS`,
    doubling, up to ``longest``."""
    waits, wait = [], min(FIRST_POLL_SECONDS, longest)
    for _ in range(MAX_POLLS):
        waits.append(wait)
        wait = min(wait * 2, longest)
    return waits
