"""The mirror's schema as named, transactional migration steps (sqlite-utils ``Migrations``).

Steps are append-only: a released step is never edited, a change is a new step. ``schema/store.sql``
is generated from these steps (``python -m salync_core.store.schema``) and a test fails when
it drifts. Plugins that need tables of their own keep their own ``Migrations`` set.
"""

from __future__ import annotations

import orjson
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

core = Migrations("salync_core")


@core()
def m001_mirror(db: Database) -> None:
    """Records with per-field clocks, the change log, tombstones and the monotonic seq."""
    db.executescript(
        """
        CREATE TABLE meta (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        );
        INSERT INTO meta (name, value) VALUES ('last_seq', 0);

        -- One row per canonical record. fields: JSON of canonical fields (the key excluded).
        -- clocks: JSON [[origin, source_ts, seq, rule, [field, ...]], ...]: who set each field,
        -- when the source changed it (UNIX seconds), at which change and under which policy
        -- (fields sharing a clock share an entry).
        CREATE TABLE records (
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            fields TEXT NOT NULL,
            clocks TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            seq INTEGER NOT NULL,
            PRIMARY KEY (entity, key)
        );

        -- The change log: one row per record per change, in seq order. fields is the JSON list
        -- of the names of the fields that changed (null for a deletion).
        CREATE TABLE changes (
            seq INTEGER PRIMARY KEY,
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
            fields TEXT,
            origin TEXT NOT NULL,
            at TEXT NOT NULL
        );

        CREATE TABLE tombstones (
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            seq INTEGER NOT NULL,
            origin TEXT NOT NULL,
            deleted_at TEXT NOT NULL,
            PRIMARY KEY (entity, key)
        );
        CREATE INDEX tombstones_seq ON tombstones (seq);
        """
    )


@core()
def m002_connections(db: Database) -> None:
    """Per-connection state: cursors, the id map with each connection's base, secrets."""
    db.executescript(
        """
        -- secrets: a Fernet token of a JSON object {name: value}; secret_names: its names.
        CREATE TABLE connections (
            name TEXT PRIMARY KEY,
            plugin TEXT NOT NULL,
            secrets BLOB,
            secret_names TEXT,
            created_at TEXT NOT NULL
        );

        CREATE TABLE cursors (
            connection TEXT NOT NULL,
            stream TEXT NOT NULL,
            cursor TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (connection, stream)
        );

        -- Which record a connection's item is, and the fields as that connection last held
        -- them (its base, for three-way resolution and echo suppression). diverged = 1 when
        -- the connection holds a value the mirror did not take, so it must be pushed to.
        CREATE TABLE id_map (
            connection TEXT NOT NULL,
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            external_id TEXT,
            base TEXT NOT NULL DEFAULT '{}',
            diverged INTEGER NOT NULL DEFAULT 0,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (connection, entity, key)
        );
        CREATE UNIQUE INDEX id_map_external ON id_map (connection, entity, external_id)
            WHERE external_id IS NOT NULL;
        CREATE INDEX id_map_diverged ON id_map (connection) WHERE diverged = 1;
        """
    )


@core()
def m003_operations(db: Database) -> None:
    """Dead letters, sync runs and the request ledger: what `salync status` reports."""
    db.executescript(
        """
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            connection TEXT NOT NULL,
            stream TEXT NOT NULL,
            page TEXT NOT NULL,
            raw TEXT NOT NULL,
            reason TEXT NOT NULL,
            run_id INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX dead_letters_connection ON dead_letters (connection, created_at);

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            connection TEXT NOT NULL,
            kind TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            stats TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE INDEX runs_connection ON runs (connection, id);

        CREATE TABLE ledger (
            connection TEXT NOT NULL,
            day TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            throttled INTEGER NOT NULL DEFAULT 0,
            retries INTEGER NOT NULL DEFAULT 0,
            bytes_in INTEGER NOT NULL DEFAULT 0,
            bytes_out INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (connection, day)
        );
        """
    )


@core()
def m004_push_and_conflicts(db: Database) -> None:
    """Push cursors, the outbox, change-feed consumers, conflicts and webhook de-duplication."""
    db.executescript(
        """
        CREATE TABLE push_cursors (
            connection TEXT PRIMARY KEY,
            seq INTEGER NOT NULL
        );

        CREATE TABLE consumers (
            name TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            registered_at TEXT NOT NULL
        );

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            connection TEXT NOT NULL,
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            op TEXT NOT NULL,
            fields TEXT NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'acked', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            acked_at TEXT
        );
        CREATE INDEX outbox_pending ON outbox (connection, next_attempt_at)
            WHERE status = 'pending';
        CREATE INDEX outbox_pending_record ON outbox (connection, entity, key)
            WHERE status = 'pending';

        CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY,
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            field TEXT NOT NULL,
            candidates TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
            resolution TEXT,
            created_at TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE UNIQUE INDEX conflicts_open ON conflicts (entity, key, field)
            WHERE status = 'open';

        CREATE TABLE webhook_events (
            connection TEXT NOT NULL,
            event_id TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (connection, event_id)
        );
        """
    )


@core()
def m005_outbox_queued(db: Database) -> None:
    """A write the platform queued (``PushResult`` status ``queued``): its receipt and when it
    was first queued. The row stays ``pending``; ``receipt IS NOT NULL`` means it was sent."""
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN receipt TEXT;
        ALTER TABLE outbox ADD COLUMN queued_at REAL;
        """
    )


@core()
def m006_copy_on_write_base(db: Database) -> None:
    """Each connection's base stored copy-on-write (``store/bases.py``): ``id_map.base`` keeps
    only what differs from ``records.fields`` (``NULL`` when nothing does), and ``id_map``
    becomes a ``WITHOUT ROWID`` table (its rows are small now; no second copy of its key)."""
    from salync_core.store.bases import encode_base

    conn = db.conn
    conn.execute("ALTER TABLE id_map RENAME TO id_map_m005")
    conn.execute(
        """
        CREATE TABLE id_map (
            connection TEXT NOT NULL,
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            external_id TEXT,
            base TEXT, -- NULL: the record's fields; else the differences (store/bases.py)
            diverged INTEGER NOT NULL DEFAULT 0,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (connection, entity, key)
        ) WITHOUT ROWID"""
    )
    rows = conn.execute(
        "SELECT m.connection, m.entity, m.key, m.external_id, m.base, m.diverged, m.seen_at,"
        " r.fields FROM id_map_m005 m LEFT JOIN records r ON r.entity = m.entity AND r.key = m.key"
    )
    conn.executemany(
        "INSERT INTO id_map (connection, entity, key, external_id, base, diverged, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                connection,
                entity,
                key,
                external_id,
                encode_base(orjson.loads(base), None if fields is None else orjson.loads(fields)),
                diverged,
                seen_at,
            )
            for connection, entity, key, external_id, base, diverged, seen_at, fields in rows
        ),
    )
    conn.execute("DROP TABLE id_map_m005")
    conn.execute(
        "CREATE UNIQUE INDEX id_map_external ON id_map (connection, entity, external_id)"
        " WHERE external_id IS NOT NULL"
    )
    conn.execute("CREATE INDEX id_map_diverged ON id_map (connection) WHERE diverged = 1")


@core()
def m007_writer_lease(db: Database) -> None:
    """The writer lease (``store/lease.py``): one row naming the run that may write, until
    when, and the fencing token every write transaction of that run checks. The token grows
    by one at each acquire and never goes back, so an older holder can never match it."""
    db.executescript(
        """
        CREATE TABLE writer_lease (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            holder TEXT,
            token INTEGER NOT NULL,
            expires_at REAL NOT NULL,
            acquired_at TEXT
        );
        INSERT INTO writer_lease (id, holder, token, expires_at) VALUES (1, NULL, 0, 0);
        """
    )
