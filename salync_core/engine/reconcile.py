"""Reconciliation for platforms that never report deletions (Sales Layer 2.0).

A key-only scan lists every item that still exists. Records this connection brought into the
mirror that the scan no longer lists become tombstones; items the scan lists that the mirror
lacks (an incremental pass can miss an item when others are deleted under its ``$skip``) are
fetched by id. A scan that fails part-way deletes nothing, and a deletion of more than the
configured share of a stream, and of more than a minimum count (so a small catalog can lose one
item), is refused unless the caller allows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The module, not its names: the pipeline imports the deletion guard below (through sweep),
# so its names are read at call time, once both modules are loaded.
import salync_core.engine.pipeline as pipeline
from salync_core.engine.report import Problem, RunReport
from salync_core.errors import SalyncError
from salync_core.store import Store, id_map
from salync_core.store.mirror import apply_deletions

if TYPE_CHECKING:
    from salync_core.engine.pipeline import PageWork


def tombstone(store: Store, connection: str, entity: str, keys: list[str]) -> int:
    with store.write() as txn:
        return apply_deletions(txn, connection, entity, keys)


def is_mass_deletion(gone: int, live: int, threshold: float, minimum: int) -> bool:
    """Deleting ``gone`` of ``live`` records is a mass deletion: above the ``threshold`` share
    *and* above ``minimum`` records (1 of 9 is 11%, but no sign of a broken scan)."""
    return gone > threshold * live and gone > minimum


async def reconcile_stream(
    store: Store,
    work: PageWork,
    report: RunReport,
    threshold: float,
    allow_mass_delete: bool,
    minimum: int = 10,
) -> set[str]:
    """Scan one stream's keys and bring the mirror in line with what exists; returns the
    entities the scan listed completely (a scan may list another entity's keys too: Sales
    Layer's products scan lists their variants), which need no scan of their own."""
    live, stream = work.live, work.stream
    stream_report = report.stream(stream.name)
    remote: dict[str, dict[str, str | None]] = {}
    try:
        async for key_page in live.platform.list_keys(live.ctx, stream):
            remote.setdefault(key_page.entity, {}).update(key_page.keys)
    except NotImplementedError:
        stream_report.skipped = "cannot list keys"
        return set()
    except SalyncError as exc:
        report.problems.append(
            Problem(live.name, stream.name, f"reconcile scan failed, nothing deleted: {exc}")
        )
        return set()
    remote.setdefault(stream.entity, {})
    for entity, keys in remote.items():
        known = await store.run(id_map.known_keys, store.conn, live.name, entity)
        live_keys = [k for k, alive in known.items() if alive]
        gone = sorted(k for k in live_keys if k not in keys)
        mass = is_mass_deletion(len(gone), len(live_keys), threshold, minimum)
        if gone and not allow_mass_delete and mass:
            share = len(gone) / len(live_keys)
            report.problems.append(
                Problem(
                    live.name,
                    stream.name,
                    f"reconcile would delete {len(gone)} of {len(live_keys)} {entity} records "
                    f"({share:.0%}), above the {threshold:.0%} and {minimum}-record limits; "
                    "nothing was deleted. "
                    "Check the platform, then re-run with --allow-mass-delete to confirm",
                )
            )
            continue
        if gone:
            stream_report.deleted += await store.run(tombstone, store, live.name, entity, gone)
        missing = [ext for k, ext in keys.items() if not known.get(k) and ext is not None]
        if missing:
            await _fetch_missing(store, _work_for(work, entity), missing, report)
    return set(remote)


def _work_for(work: PageWork, entity: str) -> PageWork:
    """The work of the stream that reads ``entity`` (``work`` itself for its own entity)."""
    if entity == work.stream.entity:
        return work
    stream = next((s for s in work.live.platform.streams if s.entity == entity), work.stream)
    return pipeline.PageWork(
        work.live, stream, work.resolver, work.policies, work.run_id, save_cursor=False
    )


async def _fetch_missing(store: Store, work: PageWork, ids: list[str], report: RunReport) -> None:
    live, stream = work.live, work.stream
    stream_report = report.stream(stream.name)
    one_off = pipeline.PageWork(
        live, stream, work.resolver, work.policies, work.run_id, save_cursor=False
    )
    try:
        async for page in live.platform.fetch_by_ids(live.ctx, stream, ids):
            usage = pipeline.usage_rows(live)
            report.requests += sum(day["requests"] for day in usage.values())
            mapped = pipeline.map_page(one_off, page)
            stats, rejected, _ = await store.run(pipeline.apply_page, store, one_off, mapped, usage)
            stream_report.missing_fetched += stats.changed
            stream_report.rejected += rejected
    except NotImplementedError:
        report.problems.append(
            Problem(
                live.name,
                stream.name,
                f"{len(ids)} item(s) exist on the platform but not in the "
                "mirror; run a full sync (--full) to fetch them",
            )
        )
    except SalyncError as exc:
        report.problems.append(
            Problem(live.name, stream.name, f"fetching missing items failed: {exc}")
        )
