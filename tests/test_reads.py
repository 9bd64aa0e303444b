"""Reads have a connection of their own: a host app reading the mirror while a page is being
written sees the last committed state, at once, never a half-applied page. The mirror's files
are private to their owner, like the key file."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import anyio
import pytest

from salync_core import Engine
from salync_core.conflicts.policies import LOCAL
from salync_core.errors import StoreError
from salync_core.platform import Record
from salync_core.store import Store
from salync_core.store.mirror import apply_records
from salync_core.testing.config import write_config

pytestmark = pytest.mark.anyio

DEADLOCK_GUARD = 30
"""Seconds before a read that waits for the writer is declared stuck (it should not wait)."""


async def test_a_read_during_a_write_sees_the_last_commit_and_does_not_wait(
    tmp_path: Path,
) -> None:
    async with Engine.open(write_config(tmp_path, {})) as engine:
        await engine.upsert("product", "MUG", {"title": {"en": "Mug"}})
        (committed,) = [c.seq async for c in engine.changes()]
        writing, finish = threading.Event(), threading.Event()

        def a_long_page_write() -> None:
            """A writer holding BEGIN IMMEDIATE in the store's worker thread, mid-page."""
            rename = Record("product", "MUG", {"title": {"en": "Big mug"}})
            new = Record("product", "CUP", {"title": {"en": "Cup"}})
            with engine.store.write() as txn:
                apply_records(txn, LOCAL, [rename, new], engine.resolver, track_base=False)
                writing.set()
                finish.wait(DEADLOCK_GUARD)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(engine.store.run, a_long_page_write)
            await anyio.to_thread.run_sync(writing.wait)
            try:
                with anyio.fail_after(DEADLOCK_GUARD):
                    mug = engine.get("product", "MUG")
                    refs = [r["ref"] for r in engine.records("product")]
                    explained = engine.explain("product", "MUG")
                    feed = [c.seq async for c in engine.changes()]
            finally:
                finish.set()

        assert mug is not None
        assert mug.title == {"en": "Mug"}
        assert refs == ["MUG"]
        assert {f["field"]: f["value"] for f in explained["fields"]}["title"] == {"en": "Mug"}
        assert feed == [committed]
        after = engine.get("product", "MUG")
        assert after is not None
        assert after.title == {"en": "Big mug"}
        assert [r["ref"] for r in engine.records("product")] == ["CUP", "MUG"]


async def test_records_are_read_in_batches_that_all_arrive(tmp_path: Path) -> None:
    async with Engine.open(write_config(tmp_path, {})) as engine:
        for n in range(7):
            await engine.upsert("product", f"SKU-{n}", {"title": {"en": f"Item {n}"}})
        await engine.delete("product", "SKU-3")
        store = engine.store

        from salync_core.store.reading import iter_records

        live = [r["ref"] for r in iter_records(store.reader, "product", batch=2)]
        every = list(iter_records(store.reader, "product", deleted=True, batch=3))
        first = [r["ref"] for r in iter_records(store.reader, "product", limit=3, batch=2)]

    assert live == [f"SKU-{n}" for n in (0, 1, 2, 4, 5, 6)]
    assert [(r["ref"], r["deleted"]) for r in every][2:4] == [("SKU-2", False), ("SKU-3", True)]
    assert first == ["SKU-0", "SKU-1", "SKU-2"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_mirror_and_its_wal_files_are_private_to_their_owner(tmp_path: Path) -> None:
    config = write_config(tmp_path, {})
    async with Engine.open(config) as engine:
        await engine.upsert("product", "MUG", {"title": {"en": "Mug"}})
        mirror = engine.store.path
        files = [mirror, Path(f"{mirror}-wal"), Path(f"{mirror}-shm")]

        assert all(path.exists() for path in files)
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}


def test_a_store_that_must_exist_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "mistyped.db"

    with pytest.raises(StoreError, match=r"mistyped.db: no mirror here; check \[store\] path"):
        Store(missing, create=False)

    assert not missing.exists()
