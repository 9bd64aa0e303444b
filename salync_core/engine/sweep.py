"""The end of a pass that delivered everything: what it did not deliver again is gone.

A platform that answers a changed connector by sending its whole catalog again (Sales Layer
1.18's ``action = "refresh"``) says nothing about the items that left it. Every record a pass
delivers has its ``id_map.seen_at`` stamped, so the records this connection delivered before the
pass began and not during it are the ones that are gone. They are tombstoned in the transaction
of the pass's last page, under the same mass-deletion guard as reconciliation: a refresh that
came back nearly empty deletes nothing and says so.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import frozen

from salync_core.engine.reconcile import is_mass_deletion
from salync_core.platform import Sweep
from salync_core.store import Transaction
from salync_core.store.id_map import unseen_since
from salync_core.store.mirror import apply_deletions


@frozen
class DeletionGuard:
    """When tombstoning many records at once needs the caller's confirmation."""

    threshold: float = 0.10
    minimum: int = 10
    allow: bool = False
    """``--allow-mass-delete``: the caller confirmed."""


def tombstone_unseen(
    txn: Transaction,
    connection: str,
    sweep: Sweep,
    guard: DeletionGuard,
    accepts: Callable[[str, str], bool],
) -> tuple[int, list[str]]:
    """Tombstone what the pass ending with ``sweep`` did not deliver; returns how many records
    were tombstoned and, for each entity the guard held back, why."""
    deleted, refused = 0, []
    for entity in sweep.entities:
        gone, live = unseen_since(txn.conn, connection, entity, sweep.since)
        if not gone:
            continue
        if not guard.allow and is_mass_deletion(len(gone), live, guard.threshold, guard.minimum):
            refused.append(
                f"a full refresh did not send {len(gone)} of {live} {entity} records again "
                f"({len(gone) / live:.0%}), above the {guard.threshold:.0%} and "
                f"{guard.minimum}-record limits; nothing was deleted. Check the platform, then "
                "re-run with --full --allow-mass-delete to confirm"
            )
            continue
        deleted += apply_deletions(txn, connection, entity, gone, accepts(entity, connection))
    return deleted, refused
