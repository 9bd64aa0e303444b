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
from salync_core.store import Store
from salync_core.store.key_scan import key_scan
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
    listed: set[str] = {stream.entity}
    withdrawn: set[str] = set()
    with key_scan(store.path) as scan:
        try:
            async for key_page in live.platform.list_keys(live.ctx, stream):
                if key_page.incomplete:
                    withdrawn.add(key_page.entity)
                elif key_page.entity not in withdrawn:
                    listed.add(key_page.entity)
                    await store.run(scan.add, key_page.entity, key_page.keys)
        except NotImplementedError:
            stream_report.skipped = "cannot list keys"
            return set()
        except SalyncError as exc:
            report.problems.append(
                Problem(live.name, stream.name, f"reconcile scan failed, nothing deleted: {exc}")
            )
            return set()
        listed -= withdrawn
        for entity in sorted(listed):
            found = await store.run(scan.compare, live.name, entity)
            gone, live_count = found.gone, found.live
            mass = is_mass_deletion(len(gone), live_count, threshold, minimum)
            if gone and not allow_mass_delete and mass:
                share = len(gone) / live_count
                report.problems.append(
                    Problem(
                        live.name,
                        stream.name,
                        f"reconcile would delete {len(gone)} of {live_count} {entity} records "
                        f"({share:.0%}), above the {threshold:.0%} and {minimum}-record limits; "
                        "nothing was deleted. "
                        "Check the platform, then re-run with --allow-mass-delete to confirm",
                    )
                )
                continue
            if gone:
                stream_report.deleted += await store.run(tombstone, store, live.name, entity, gone)
            if found.missing:
                await _fetch_missing(store, _work_for(work, entity), found.missing, report)
    return listed


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
