"""Opening the mirror: one SQLite file in WAL mode, migrated, with write transactions that
take the write lock up front and hand out change-log sequence numbers, and a read-only
connection of its own for reads, which WAL lets run while a write is in progress."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import orjson
from sqlite_utils import Database

from salync_core.errors import StoreError
from salync_core.store import failures
from salync_core.store.migrations import core

T = TypeVar("T")


def to_json(value: Any) -> str:
    """JSON text for a TEXT column: orjson writes bytes, which SQLite would keep as a BLOB that
    its JSON functions and LIKE do not read."""
    return orjson.dumps(value).decode()


def utc_now() -> str:
    """Now as UTC ISO-8601 with a ``Z``, the format of every timestamp the store writes."""
    return datetime.now(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


class Transaction:
    """One ``BEGIN IMMEDIATE`` write transaction; :meth:`next_seq` numbers change-log rows."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.now = utc_now()
        row = conn.execute("SELECT value FROM meta WHERE name = 'last_seq'").fetchone()
        self._first_seq = self._seq = int(row[0])

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def last_seq(self) -> int:
        return self._seq

    @contextlib.contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        """A transaction nested in this one: an exception inside undoes its writes alone, then
        propagates."""
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except Exception:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    def _save_seq(self) -> None:
        if self._seq != self._first_seq:
            self.conn.execute("UPDATE meta SET value = ? WHERE name = 'last_seq'", (self._seq,))


class WriteFence(Protocol):
    """What a run's writer lease puts on its store (:class:`salync_core.store.lease.Fence`)."""

    def check(self, conn: sqlite3.Connection) -> None:
        """Raise (:class:`~salync_core.errors.Fenced`) when the run no longer holds the lease."""


class Store:
    """The SQLite mirror. One writing connection, :attr:`conn`; callers take turns through
    :meth:`run`, which runs blocking work in a worker thread so page writes overlap with
    fetching the next page. Reads go through :attr:`reader` (or :meth:`run_read`): they see
    the last committed state, never a write in progress, and never wait for one.

    The file is created readable by its owner only (0600, like the key file); SQLite gives its
    ``-wal`` and ``-shm`` files the same mode. With ``create=False`` a missing file is a
    :class:`StoreError` rather than a new, empty mirror (``salync status`` on a mistyped path).
    """

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StoreError(
                f"{self.path}: no mirror here; check [store] path in salync.toml "
                "(`salync sync` creates the mirror)"
            )
        try:
            _create_private(self.path)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the mirror: {exc}") from exc
        self.db = Database(conn)
        self.conn = conn
        self._working = threading.Lock()
        self._configure()
        self._limiter = anyio.CapacityLimiter(1)
        self._read_limiter = anyio.CapacityLimiter(1)
        self._reader: sqlite3.Connection | None = None
        self._opening_reader = threading.Lock()
        self.fence: WriteFence | None = None
        """Set while a run holds the mirror's writer lease: :meth:`write` checks it first."""

    @property
    def reader(self) -> sqlite3.Connection:
        """The read-only connection (opened on first use), never the writer's: under WAL it
        reads the last committed state even while :attr:`conn` holds a write transaction."""
        if self._reader is not None:
            return self._reader
        with self._opening_reader:  # two threads asking at once must not open two
            if self._reader is not None:
                return self._reader
            uri = self.path.resolve().as_uri() + "?mode=ro"
            try:
                reader = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None
                )
                reader.execute(f"PRAGMA busy_timeout = {failures.busy_timeout_ms()}")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot open the mirror to read: {exc}") from exc
            self._reader = reader
        return self._reader

    def _configure(self) -> None:
        try:
            self.conn.execute("PRAGMA page_size = 8192")  # only takes effect on a new file
            self.db.enable_wal()
            for pragma in (
                "synchronous = NORMAL",
                "foreign_keys = ON",
                f"busy_timeout = {failures.busy_timeout_ms()}",
                "temp_store = MEMORY",
                "cache_size = -32768",
                "wal_autocheckpoint = 8192",
            ):
                self.conn.execute(f"PRAGMA {pragma}")
            core.apply(self.db)
        except sqlite3.DatabaseError as exc:
            if failures.kind(exc) != "other":
                raise StoreError(failures.describe(self.path, exc)) from exc
            raise StoreError(f"{self.path}: not a usable Salync mirror: {exc}") from exc

    @property
    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        """Close both connections, after the worker thread's call in progress (if any) ends:
        closing a connection under a running ``executemany`` crashes the process."""
        with self._working:
            self._close()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        """A write transaction: all or nothing, the write lock taken at ``BEGIN``. With a
        :attr:`fence` set, a run whose writer lease was taken over fails here, before writing
        (one primary-key read, under the write lock, so no takeover can slip in after it)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if self.fence is not None:
                self.fence.check(self.conn)
            txn = Transaction(self.conn)
            yield txn
            txn._save_seq()
        except BaseException:
            if self.conn.in_transaction:  # SQLite already rolled back after a full disk
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Rows of a read query, as ``sqlite3.Row`` (index or name access)."""
        cursor = self.conn.execute(sql, params)
        cursor.row_factory = sqlite3.Row
        return cursor.fetchall()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the store's worker thread, one call at a time."""
        return await anyio.to_thread.run_sync(self._locked, fn, *args, limiter=self._limiter)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._working:
            return fn(*args)

    async def run_read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(reader, *args)`` in a thread of its own: a read never queues behind a
        write (:meth:`run`) and never sees one in progress."""
        return await anyio.to_thread.run_sync(fn, self.reader, *args, limiter=self._read_limiter)


def _create_private(path: Path) -> None:
    """Create the mirror's file with mode 0600 before SQLite opens it (SQLite would create it
    0644); an existing file is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
