"""Moving an account: a consistent copy of its mirror and inbox, taken while they are live."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from salync_core.errors import StoreError
from salync_core.store import Store
from salync_core.store.backup import backup_mirror
from salync_core.store.inbox import Delivery, Inbox
from salync_core.store.operations import get_cursor, set_cursor


def test_a_live_mirror_and_its_inbox_are_copied_as_committed(tmp_path: Path) -> None:
    mirror = tmp_path / "shop" / "salync.db"
    mirror.parent.mkdir()
    store = Store(mirror)
    with store.write() as txn:  # committed, still in the -wal file (no checkpoint yet)
        set_cursor(txn, "pim", "products", {"page": 7})
    inbox = Inbox.beside(mirror)
    inbox.receive([Delivery("pim", [("evt-1", "product.updated", {"id": 1})], "sha")])
    store.conn.execute("BEGIN IMMEDIATE")  # a page transaction in progress during the copy
    set_cursor_sql = "UPDATE cursors SET cursor = '{\"page\": 8}'"
    store.conn.execute(set_cursor_sql)

    written = backup_mirror(mirror, tmp_path / "moved")

    store.conn.execute("ROLLBACK")
    assert [p.name for p in written] == ["salync.inbox.db", "salync.db"], "the inbox first"
    copy = Store(tmp_path / "moved" / "salync.db", create=False)
    assert get_cursor(copy.conn, "pim", "products") == {"page": 7}, "committed, not in progress"
    with sqlite3.connect(tmp_path / "moved" / "salync.inbox.db") as conn:
        assert conn.execute("SELECT event_id FROM events").fetchall() == [("evt-1",)]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    with pytest.raises(StoreError, match="already exists"):
        backup_mirror(mirror, tmp_path / "moved")
    copy.close()
    inbox.close()
    store.close()
