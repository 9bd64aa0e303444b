"""Local edits in bulk: ``upsert_many`` and ``delete_many`` apply a whole batch in one
transaction, each record exactly as ``upsert``/``delete`` would, and a refused record is
reported without losing the rest of the batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from salync_saleslayer.emulator import SalesLayerEmulator
from support import saleslayer_connection

from salync_core import Engine
from salync_core.errors import PolicyError
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio


@contextmanager
def counting_transactions(engine: Engine) -> Iterator[list[str]]:
    """The write transactions the mirror's connection begins meanwhile."""
    begun: list[str] = []
    engine.store.conn.set_trace_callback(
        lambda sql: begun.append(sql) if sql.lstrip().upper().startswith("BEGIN") else None
    )
    try:
        yield begun
    finally:
        engine.store.conn.set_trace_callback(None)


def feed_rows(engine: Engine, since: int) -> list[tuple[str, str, str, str | None]]:
    return [
        (key, op, origin, fields)
        for key, op, origin, fields in engine.store.conn.execute(
            "SELECT key, op, origin, fields FROM changes WHERE seq > ? ORDER BY seq", (since,)
        )
    ]


def last_seq(engine: Engine) -> int:
    return int(engine.store.conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])


def clocks(engine: Engine, key: str) -> list[tuple[str, str, int, str]]:
    """Each field's clock (origin, change seq, deciding rule), without the wall-clock time."""
    return [
        (f["field"], f["origin"], f["seq"], f["decided_by"])
        for f in engine.explain("product", key)["fields"]
    ]


EDITS = {
    "PRD-000001": {"barcode": "5012345678900"},
    "PRD-000002": {"barcode": "5012345678901", "title": {"en": "Renamed"}},
    "NEW-1": {"barcode": "1", "title": {"en": "Brand new"}},
}


async def test_a_batch_is_one_transaction_with_the_same_effect_as_one_upsert_each(
    tmp_path: Path, saleslayer: SalesLayerEmulator
) -> None:
    results = {}
    for name in ("one_by_one", "batch"):
        directory = tmp_path / name
        directory.mkdir()
        config = write_config(directory, {"pim": saleslayer_connection(saleslayer)})
        async with Engine.open(config) as engine:
            await engine.sync()
            start = last_seq(engine)
            with counting_transactions(engine) as begun:
                if name == "batch":
                    result = await engine.upsert_many("product", EDITS)
                    assert (result.changed, result.unchanged, result.refused) == (3, 0, {})
                    assert result.last_seq == start + 3
                else:
                    for key, fields in EDITS.items():
                        await engine.upsert("product", key, fields)
            transactions = len(begun)
            again = await engine.upsert_many("product", EDITS)
            results[name] = (
                transactions,
                feed_rows(engine, start),
                {key: engine.get("product", key) for key in EDITS},
                clocks(engine, "PRD-000002") + clocks(engine, "NEW-1"),
            )
            assert (again.changed, again.unchanged, again.last_seq) == (0, 3, None)

    batch, one_by_one = results["batch"], results["one_by_one"]
    assert batch[0] == 1
    assert one_by_one[0] == 3
    assert batch[1:] == one_by_one[1:]
    assert [row[:3] for row in batch[1]] == [(key, "upsert", "local") for key in EDITS]
    assert ("title", "local") in [(name, origin) for name, origin, *_ in batch[3]]


async def test_refused_records_are_reported_and_the_rest_of_the_batch_is_applied(
    tmp_path: Path, saleslayer: SalesLayerEmulator
) -> None:
    config = write_config(
        tmp_path,
        {"pim": saleslayer_connection(saleslayer)},
        policies={"product": {"title": {"owner": "pim"}}},
    )
    async with Engine.open(config) as engine:
        await engine.sync()
        title = engine.get("product", "PRD-000003").title
        start = last_seq(engine)

        result = await engine.upsert_many(
            "product",
            {
                "PRD-000001": {"barcode": "111"},
                "PRD-000003": {"title": {"en": "Not mine to change"}},  # pim owns titles
                "PRD-000004": {"low_stock_threshold": "ten"},  # does not validate
                " ": {"barcode": "222"},  # no reference
                "PRD-000005": {"barcode": "555"},
            },
        )

        assert sorted(result.refused) == [" ", "PRD-000003", "PRD-000004"]
        assert "title (owner:pim)" in result.refused["PRD-000003"]
        assert "low_stock_threshold" in result.refused["PRD-000004"]
        assert (result.changed, result.unchanged) == (2, 0)
        assert engine.get("product", "PRD-000003").title == title
        assert [row[0] for row in feed_rows(engine, start)] == ["PRD-000001", "PRD-000005"]
        assert engine.get("product", "PRD-000005").barcode == "555"


async def test_delete_many_tombstones_the_live_records_in_one_transaction(
    sl_config: Callable[..., Path],
) -> None:
    async with Engine.open(sl_config()) as engine:
        await engine.sync()
        assert await engine.delete("product", "PRD-000003")
        start = last_seq(engine)

        with counting_transactions(engine) as begun:
            deleted = await engine.delete_many(
                "product", ["PRD-000001", "PRD-000002", "PRD-000003", "NOT-THERE", "PRD-000001"]
            )

        assert deleted == 2, "the already deleted and the unknown are not live"
        assert len(begun) == 1
        assert feed_rows(engine, start) == [
            ("PRD-000001", "delete", "local", None),
            ("PRD-000002", "delete", "local", None),
        ]
        assert engine.get("product", "PRD-000001") is None


async def test_delete_many_is_refused_whole_where_local_may_not_delete(
    tmp_path: Path, saleslayer: SalesLayerEmulator
) -> None:
    config = write_config(
        tmp_path,
        {"pim": saleslayer_connection(saleslayer)},
        policies={"product": {"default": {"owner": "pim"}}},
    )
    async with Engine.open(config) as engine:
        await engine.sync()
        with pytest.raises(PolicyError, match="may not delete"):
            await engine.delete_many("product", ["PRD-000001", "PRD-000002"])
        assert engine.get("product", "PRD-000001") is not None
