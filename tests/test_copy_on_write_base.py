"""Each connection's base (what it last held) is stored copy-on-write: only where it differs
from the mirror's record. Whoever overwrites a field first copies the old value into the base
of every connection that held it, so three-way resolution and push planning see exactly what
each connection last held, while a mirror in step with its connections stores no base at all."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from salync_saleslayer.emulator import SalesLayerEmulator
from salync_saleslayer.mapping import STATUS_IN
from sqlite_utils import Database
from support import sl_write

from salync_core import Engine
from salync_core.conflicts.policies import LOCAL, LastWriterWins, Manual
from salync_core.conflicts.policy_set import PolicySet
from salync_core.conflicts.resolver import Resolver
from salync_core.engine.conflicts import resolve
from salync_core.platform import Record
from salync_core.store import Store
from salync_core.store.conflict_rows import bases_of
from salync_core.store.migrations import core
from salync_core.store.mirror import (
    apply_local_batch,
    apply_records,
    decode_clocks,
    encode_clocks,
)

# the store alone -------------------------------------------------------------------------------


def deliver(store: Store, resolver: Resolver, origin: str, fields: dict[str, Any], at: str) -> None:
    """``origin`` delivers product P-1 with ``fields``, changed on its side at ``at``."""
    record = Record("product", "P-1", fields, external_id=f"{origin}-1", source_ts=at)
    with store.write() as txn:
        apply_records(txn, origin, [record], resolver)


def held(store: Store) -> dict[str, dict[str, Any]]:
    """What each connection last held of P-1, as three-way resolution reads it."""
    return {name: base for name, (_, base) in bases_of(store.conn, "product", "P-1").items()}


def stored(store: Store) -> dict[str, Any]:
    """``id_map.base`` of P-1 as stored, by connection (``None``: the mirror's record)."""
    rows = store.conn.execute("SELECT connection, base FROM id_map WHERE key = 'P-1'")
    return {name: None if base is None else orjson.loads(base) for name, base in rows}


def mirror(store: Store) -> dict[str, Any]:
    (fields,) = store.conn.execute("SELECT fields FROM records WHERE key = 'P-1'").fetchone()
    return dict(orjson.loads(fields))


def test_a_base_keeps_what_its_connection_held_when_another_one_overwrites_it(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "salync.db")
    resolver = Resolver(PolicySet(default=LastWriterWins()))
    deliver(store, resolver, "a", {"barcode": "1", "status": "active"}, "2026-01-01T00:00:00Z")
    deliver(store, resolver, "b", {"barcode": "1", "status": "active"}, "2026-01-01T00:00:00Z")
    assert stored(store) == {"a": None, "b": None}, "both hold the mirror's record: no copy"

    deliver(store, resolver, "b", {"barcode": "2", "status": "active"}, "2026-01-02T00:00:00Z")

    assert mirror(store)["barcode"] == "2"
    assert stored(store) == {"a": {"barcode": "1"}, "b": None}
    assert held(store)["a"] == {"barcode": "1", "status": "active"}

    # a changes its status only, later than b's barcode: its barcode is merely re-sent
    deliver(store, resolver, "a", {"barcode": "1", "status": "draft"}, "2026-01-03T00:00:00Z")

    assert mirror(store) == {"barcode": "2", "status": "draft"}, "a re-sent barcode is no change"
    assert held(store) == {
        "a": {"barcode": "1", "status": "draft"},
        "b": {"barcode": "2", "status": "active"},
    }
    assert not store.conn.execute("SELECT count(*) FROM conflicts").fetchone()[0]
    store.close()


def test_a_base_goes_back_to_the_mirrors_record_once_the_connection_holds_it_again(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "salync.db")
    resolver = Resolver(PolicySet(default=LastWriterWins()))
    deliver(store, resolver, "a", {"barcode": "1"}, "2026-01-01T00:00:00Z")
    deliver(store, resolver, "b", {"barcode": "1"}, "2026-01-01T00:00:00Z")
    deliver(store, resolver, "b", {"barcode": "2"}, "2026-01-02T00:00:00Z")
    assert stored(store) == {"a": {"barcode": "1"}, "b": None}

    deliver(store, resolver, "a", {"barcode": "2"}, "2026-01-03T00:00:00Z")  # a took b's value

    assert stored(store) == {"a": None, "b": None}


def test_a_field_a_connection_never_held_stays_absent_from_its_base(tmp_path: Path) -> None:
    store = Store(tmp_path / "salync.db")
    resolver = Resolver(PolicySet(default=LastWriterWins()))
    deliver(store, resolver, "a", {"barcode": "1"}, "2026-01-01T00:00:00Z")
    deliver(store, resolver, "b", {"barcode": "1", "status": "active"}, "2026-01-01T00:00:00Z")

    assert held(store)["a"] == {"barcode": "1"}, "a never held a status"
    assert stored(store)["a"] == {"__absent__": ["status"]}


def test_a_keyed_map_sent_empty_keeps_the_keys_the_connection_held(tmp_path: Path) -> None:
    store = Store(tmp_path / "salync.db")
    resolver = Resolver(PolicySet(default=LastWriterWins()))
    deliver(store, resolver, "a", {"title": {"en": "A", "fr": "B"}}, "2026-01-01T00:00:00Z")
    deliver(store, resolver, "a", {"title": {}, "attributes": {}}, "2026-01-02T00:00:00Z")

    assert held(store)["a"] == {"title": {"en": "A", "fr": "B"}}, "it still holds both"
    assert stored(store) == {"a": None}, "an empty map is no difference from the mirror's"


def test_resolving_a_conflict_keeps_what_each_connection_held(tmp_path: Path) -> None:
    store = Store(tmp_path / "salync.db")
    resolver = Resolver(PolicySet(default=Manual()))
    deliver(store, resolver, "a", {"barcode": "1"}, "2026-01-01T00:00:00Z")
    deliver(store, resolver, "b", {"barcode": "1"}, "2026-01-01T00:00:00Z")
    deliver(store, resolver, "a", {"barcode": "2"}, "2026-01-02T00:00:00Z")
    deliver(store, resolver, "b", {"barcode": "3"}, "2026-01-03T00:00:00Z")  # a conflict
    (conflict_id,) = store.conn.execute("SELECT id FROM conflicts").fetchone()

    resolve(store, conflict_id, value="4")

    assert mirror(store)["barcode"] == "4"
    assert held(store) == {"a": {"barcode": "2"}, "b": {"barcode": "3"}}, "neither holds 4"
    store.close()


FIELD_VALUES = st.dictionaries(
    st.sampled_from(["barcode", "status", "price"]), st.sampled_from(["1", "2", "3"]), min_size=1
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["a", "b", "c"]), FIELD_VALUES),  # a delivery
        st.tuples(st.just(LOCAL), FIELD_VALUES),  # a host edit
        st.tuples(st.just("resolve"), st.booleans()),  # a person takes a candidate
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(policy=st.sampled_from([LastWriterWins(), Manual()]), operations=OPERATIONS)
def test_property_each_base_is_what_its_connection_last_delivered(
    policy: Any, operations: list[tuple[str, Any]]
) -> None:
    """Whatever the others wrote meanwhile, a connection's base is exactly the fields it last
    delivered (what storing whole bases would give)."""
    resolver = Resolver(PolicySet(default=policy))
    delivered: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "salync.db")
        store.conn.execute("PRAGMA synchronous = OFF")  # nothing here outlives the example
        for day, (who, what) in enumerate(operations, start=1):
            at = f"2026-01-{day:02d}T00:00:00Z"
            if who == LOCAL:
                with store.write() as txn:
                    apply_local_batch(txn, [Record("product", "P-1", what)], resolver)
            elif who == "resolve":
                for conflict_id, candidates in store.conn.execute(
                    "SELECT id, candidates FROM conflicts WHERE status = 'open'"
                ).fetchall():
                    take = sorted(orjson.loads(candidates))[-1 if what else 0]
                    resolve(store, conflict_id, take=take)
            else:
                deliver(store, resolver, who, what, at)
                delivered[who] = what
        assert held(store) == delivered
        store.close()


def test_a_mirror_of_whole_bases_is_migrated_to_differences(tmp_path: Path) -> None:
    path = tmp_path / "salync.db"
    db = Database(path)
    core.apply(db, stop_before="m006_copy_on_write_base")
    fields = {"barcode": "2", "status": "active", "title": {"en": "T"}}
    db.execute(
        "INSERT INTO records (entity, key, fields, clocks, seq) VALUES ('product', 'P-1', ?, ?, 1)",
        [orjson.dumps(fields).decode(), "[]"],
    )
    old_bases = {
        "same": fields,
        "older": {"barcode": "1", "status": "active", "title": {"en": "T"}},
        "fewer": {"barcode": "2"},
        "deleted": {"__deleted__": True},
    }
    for name, base in old_bases.items():
        db.execute(
            "INSERT INTO id_map (connection, entity, key, base, seen_at)"
            " VALUES (?, 'product', 'P-1', ?, 'then')",
            [name, orjson.dumps(base).decode()],
        )
    db.conn.commit()
    db.close()

    store = Store(path)

    assert stored(store) == {
        "same": None,
        "older": {"barcode": "1"},
        "fewer": {"__absent__": ["status", "title"]},
        "deleted": {"__deleted__": True},
    }
    assert held(store) == old_bases
    store.close()


def test_clocks_of_a_record_one_origin_set_whole_are_one_entry() -> None:
    fields = {"barcode": "1", "status": "active", "title": {"en": "T"}}
    whole = {name: ["pim", 10.0, 3, "last_writer_wins"] for name in fields}
    mixed = {**whole, "status": ["local", 12.0, 4, "owner"]}
    partial = {"barcode": whole["barcode"]}

    assert orjson.loads(encode_clocks(whole, fields)) == [["pim", 10.0, 3, "last_writer_wins"]]
    for clocks in (whole, mixed, partial):
        assert decode_clocks(encode_clocks(clocks, fields), fields) == clocks


# end to end ------------------------------------------------------------------------------------


def bases_stored(engine: Engine) -> int:
    """How many bases the mirror stores at all (not the mirror's record itself)."""
    return int(
        engine.store.conn.execute("SELECT count(*) FROM id_map WHERE base IS NOT NULL").fetchone()[
            0
        ]
    )


@pytest.mark.anyio
async def test_a_mirror_in_step_with_its_platform_stores_no_base_and_one_clock_a_record(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    async with Engine.open(sl_config(push=["product"])) as engine:
        await engine.sync()
        held_records = engine.store.conn.execute("SELECT count(*) FROM id_map").fetchone()[0]
        assert held_records > 250
        assert bases_stored(engine) == 0
        multiple = "SELECT count(*) FROM records WHERE json_array_length(clocks) != 1"
        assert engine.store.conn.execute(multiple).fetchone()[0] == 0

        status = "review" if engine.get("product", "PRD-000003").status != "review" else "draft"
        await engine.upsert("product", "PRD-000003", {"status": status})
        assert bases_stored(engine) == 1, "the PIM's status is kept until it is pushed"
        await engine.push()

        assert bases_stored(engine) == 0, "pushed: the PIM holds the mirror's record again"


@pytest.mark.anyio
async def test_a_host_edit_survives_a_platform_change_to_another_field_and_is_pushed(
    saleslayer: SalesLayerEmulator, sl_config: Callable[..., Path]
) -> None:
    ref = "PRD-000003"
    async with Engine.open(sl_config(push=["product"])) as engine:
        await engine.sync()
        before = engine.get("product", ref)
        host_status = "review" if before.status != "review" else "draft"
        await engine.upsert("product", ref, {"status": host_status})
        saleslayer.clock.advance(60)  # the PIM's record is now newer than the host's edit
        renamed = {"prod_title": {"en": "Renamed in the PIM"}}
        pim_id = saleslayer.product_by_ref(ref)["prod_id"]
        assert await sl_write(saleslayer.base_url, "PATCH", f"/Products({pim_id})", renamed) == 204

        (report,) = await engine.sync(push=False)  # re-sends its old status with the new title

        assert report.ok, report.problems
        product = engine.get("product", ref)
        assert product.title["en"] == "Renamed in the PIM"
        assert product.status == host_status, "the PIM's old status is no change of the PIM's"
        assert engine.conflicts() == []
        pim_held = engine.explain("product", ref)["fields"]
        (status,) = [f for f in pim_held if f["field"] == "status"]
        assert status["held_by"] == {"pim": before.status}

        await engine.push()

        pushed = saleslayer.product_by_ref(ref)
        assert pushed is not None
        assert STATUS_IN[pushed["prod_stat"]] == host_status, "the host's edit reached the PIM"
        (report,) = await engine.sync(push=False)
        assert engine.get("product", ref).status == host_status
