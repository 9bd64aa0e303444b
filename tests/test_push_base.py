"""What a push plans and what it leaves as the connection's base, against whole bases.

Planning compares only the fields a connection's stored base names (the others are the
mirror's by definition) and an acknowledgement works out the new base from the stored
differences and the fields sent, never decoding the whole base. Whatever happens in between
(the host editing the record while its write is in flight, the platform delivering), both must
give what whole bases give: the fields the connection lacks are queued, and once acknowledged
the connection holds what it held with what it was sent overlaid."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from salync_core.conflicts.policies import LOCAL, LastWriterWins
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver
from salync_core.engine import outbox
from salync_core.platform import PushResult, Record
from salync_core.store import Store
from salync_core.store.conflict_rows import bases_of
from salync_core.store.mirror import apply_local_batch, apply_records

FIELDS = ("barcode", "status", "price")
POLICIES = PolicySet(default=LastWriterWins())
RECEIVER = outbox.Receiver("a", {"product": frozenset(FIELDS)}, lambda *_: True, POLICIES)
MISSING = object()


def held(store: Store) -> dict[str, Any] | None:
    """What connection ``a`` last held of P-1 (``None``: nothing), decoded whole."""
    return bases_of(store.conn, "product", "P-1").get("a", (None, None))[1]


def mirror(store: Store) -> dict[str, Any]:
    row = store.conn.execute("SELECT fields FROM records WHERE key = 'P-1'").fetchone()
    return {} if row is None else dict(orjson.loads(row[0]))


def lacks(store: Store) -> dict[str, Any]:
    """The fields ``a`` lacks, worked out from its whole base."""
    base = held(store) or {}
    return {k: v for k, v in mirror(store).items() if base.get(k, MISSING) != v}


def changed_since_planned(store: Store) -> bool:
    """Whether the mirror changed since the last plan (only a change is planned)."""
    return bool(
        store.conn.execute(
            "SELECT count(*) FROM changes WHERE seq > (SELECT coalesce(max(seq), 0)"
            " FROM push_cursors WHERE connection = 'a')"
        ).fetchone()[0]
    )


VALUES = st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(["1", "2", "3"]), min_size=1)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["a", "b"]), VALUES),  # a delivery
        st.tuples(st.just(LOCAL), VALUES),  # a host edit, maybe while a write is in flight
        st.tuples(st.just("send"), st.none()),  # plan, then take the due rows for sending
        st.tuples(st.just("ack"), st.none()),  # the platform acknowledges what was taken
    ),
    max_size=14,
)


@settings(max_examples=40, deadline=None)
@given(operations=OPERATIONS)
@example(  # the first push of a record the host created; another field arrives in flight
    [(LOCAL, {"barcode": "1"}), ("send", None), (LOCAL, {"status": "1"}), ("ack", None)]
)
@example(  # b delivers a field a never held: a is sent it
    [("a", {"barcode": "1"}), ("b", {"status": "2"}), ("send", None), ("ack", None)]
)
@example(  # the host edits the field in flight: a holds what it was sent, not the edit
    [
        ("a", {"barcode": "1"}),
        (LOCAL, {"barcode": "2"}),
        ("send", None),
        (LOCAL, {"barcode": "3"}),
        ("ack", None),
        ("send", None),
    ]
)
def test_property_planned_and_acknowledged_bases_match_whole_bases(
    operations: list[tuple[str, Any]],
) -> None:
    resolver = Resolver(POLICIES)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "salync.db")
        store.conn.execute("PRAGMA synchronous = OFF")  # nothing here outlives the example
        expected: dict[str, Any] | None = None  # what a holds, kept whole
        in_flight: list[outbox.Due] = []
        for day, (what, values) in enumerate(operations, start=1):
            if what in ("a", "b"):
                record = Record("product", "P-1", values, f"{what}-1", f"2026-01-{day:02d}")
                with store.write() as txn:
                    apply_records(txn, what, [record], resolver)
                if what == "a":
                    expected = dict(values)
            elif what == LOCAL:
                with store.write() as txn:
                    apply_local_batch(txn, [Record("product", "P-1", values)], resolver)
            elif what == "send":
                wanted = lacks(store) if changed_since_planned(store) else {}
                queued = [row.item.fields for row in in_flight]  # not acknowledged: still due
                outbox.plan(store, RECEIVER, ["product"])
                in_flight = outbox.due(store, "a")
                assert [row.item.fields for row in in_flight] == ([wanted] if wanted else queued)
                assert all(dict(row.item.base) == (held(store) or {}) for row in in_flight)
            elif in_flight:
                sent = [(row, PushResult(row.item.key, "ok")) for row in in_flight]
                outbox.record_results(store, "a", sent, {})
                expected = {**(expected or {}), **in_flight[0].item.fields}
                in_flight = []
            assert held(store) == expected
        store.close()
