"""The store's schema as numbered migrations.

:class:`cti.store.Store` applies, in order, each migration whose number is not yet in the
``schema_version`` table, each in its own transaction. A released migration is never
edited: change the schema by appending a new number.
"""

from __future__ import annotations

from typing import TypeAlias

#: One schema step: its number (1, 2, ...) and the SQL statements it runs.
Migration: TypeAlias = tuple[int, str]

MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        """
        CREATE TABLE customers (
            id        INTEGER PRIMARY KEY,
            name      TEXT NOT NULL,
            value     REAL,
            segment   TEXT,
            language  TEXT,
            time_zone TEXT,
            email     TEXT
        );
        CREATE TABLE customer_phones (
            customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
            raw         TEXT,
            e164        TEXT NOT NULL,
            kind        TEXT
        );
        CREATE INDEX idx_customer_phones_e164 ON customer_phones (e164);
        CREATE INDEX idx_customer_phones_customer ON customer_phones (customer_id);
        """,
    ),
    (
        2,
        """
        CREATE TABLE interactions (
            id          INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
            at          REAL NOT NULL,
            channel     TEXT NOT NULL DEFAULT 'call',
            disposition TEXT NOT NULL DEFAULT '',
            agent_id    TEXT NOT NULL DEFAULT '',
            note        TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX idx_interactions_customer_at ON interactions (customer_id, at);
        """,
    ),
    (
        3,
        """
        CREATE TABLE call_records (
            id           INTEGER PRIMARY KEY,
            call_id      TEXT NOT NULL UNIQUE,
            queue        TEXT NOT NULL,
            ani          TEXT NOT NULL,
            caller_kind  TEXT NOT NULL,
            customer_id  INTEGER,  -- no foreign key: a record outlives its customer
            segment      TEXT NOT NULL,
            value        REAL NOT NULL,
            arrived_at   REAL NOT NULL,
            offered_at   REAL,
            answered_at  REAL,
            ended_at     REAL NOT NULL,
            agent_id     TEXT,
            outcome      TEXT NOT NULL,
            disposition  TEXT NOT NULL DEFAULT '',
            wrap_up_s    REAL NOT NULL DEFAULT 0,
            offers       INTEGER NOT NULL DEFAULT 0,
            started_wall REAL NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        4,
        """
        ALTER TABLE call_records ADD COLUMN note TEXT NOT NULL DEFAULT '';
        """,
    ),
    (
        5,
        """
        ALTER TABLE call_records ADD COLUMN kind TEXT NOT NULL DEFAULT 'inbound';
        ALTER TABLE call_records ADD COLUMN exit_action TEXT NOT NULL DEFAULT '';
        ALTER TABLE call_records ADD COLUMN callback_requested_at REAL;
        """,
    ),
)

JOURNAL_MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        """
        CREATE TABLE router_journal (
            seq   INTEGER PRIMARY KEY,
            at    REAL NOT NULL,   -- engine time the input was handled at
            input TEXT NOT NULL    -- queue_engine.inputs.INPUT as JSON
        );
        CREATE TABLE call_lines (
            call_id TEXT PRIMARY KEY,
            line    TEXT NOT NULL
        );
        CREATE TABLE engine_meta (
            key   TEXT PRIMARY KEY,
            value TEXT
        );
        """,
    ),
)
"""The engine journal's schema (:mod:`cti.journal`), a file of its own beside the store.

Numbered and applied like :data:`MIGRATIONS`, in the journal file's own
``schema_version`` table.
"""
