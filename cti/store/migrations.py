"""The store's schema as numbered migrations.

:class:`cti.store.database.Store` applies, in order, each migration whose number is not yet in the
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
    # 6-19: the customer base (cti.customers.base).
    (
        6,
        """
        -- Contacts: company, address, the agent the customer's numbers are assigned to,
        -- phone extensions, every e-mail address (position 0 is customers.email).
        ALTER TABLE customers ADD COLUMN company TEXT NOT NULL DEFAULT '';
        ALTER TABLE customers ADD COLUMN address TEXT NOT NULL DEFAULT '';
        ALTER TABLE customers ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        ALTER TABLE customer_phones ADD COLUMN extension TEXT NOT NULL DEFAULT '';
        CREATE INDEX idx_customers_owner ON customers (owner) WHERE owner <> '';
        CREATE TABLE customer_emails (
            customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
            position    INTEGER NOT NULL,
            email       TEXT NOT NULL,
            email_key   TEXT NOT NULL,  -- lower case, for lookups
            PRIMARY KEY (customer_id, position)
        ) WITHOUT ROWID;
        CREATE INDEX idx_customer_emails_key ON customer_emails (email_key);
        INSERT INTO customer_emails (customer_id, position, email, email_key)
            SELECT id, 0, email, lower(email) FROM customers WHERE coalesce(email, '') <> '';
        """,
    ),
    (
        7,
        """
        -- Search. name_key: the name folded (case, accents, width) for exact and prefix
        -- matches; search_text: name, company and e-mails folded, indexed by an FTS5
        -- trigram table for substrings of 3+ characters; customer_name_grams: every CJK
        -- character and pair of a name, for 1- and 2-character Chinese queries. The
        -- program fills name_key and search_text (NULL: not indexed yet, see Store.open).
        ALTER TABLE customers ADD COLUMN name_key TEXT;
        ALTER TABLE customers ADD COLUMN search_text TEXT;
        CREATE INDEX idx_customers_name_key ON customers (name_key);
        CREATE INDEX idx_customers_unindexed ON customers (id) WHERE name_key IS NULL;
        CREATE VIRTUAL TABLE customer_search USING fts5 (
            search_text, content = 'customers', content_rowid = 'id', tokenize = 'trigram'
        );
        CREATE TRIGGER customer_search_insert AFTER INSERT ON customers BEGIN
            INSERT INTO customer_search (rowid, search_text) VALUES (new.id, new.search_text);
        END;
        CREATE TRIGGER customer_search_delete AFTER DELETE ON customers BEGIN
            INSERT INTO customer_search (customer_search, rowid, search_text)
                VALUES ('delete', old.id, old.search_text);
        END;
        CREATE TRIGGER customer_search_update AFTER UPDATE OF search_text ON customers BEGIN
            INSERT INTO customer_search (customer_search, rowid, search_text)
                VALUES ('delete', old.id, old.search_text);
            INSERT INTO customer_search (rowid, search_text) VALUES (new.id, new.search_text);
        END;
        CREATE TABLE customer_name_grams (
            gram        TEXT NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
            PRIMARY KEY (gram, customer_id)
        ) WITHOUT ROWID;
        CREATE INDEX idx_customer_name_grams_customer ON customer_name_grams (customer_id);
        """,
    ),
    (
        8,
        """
        -- History: the call an interaction was and the script's answers (JSON object);
        -- orders, the source of value; service items (tickets) with escalation.
        ALTER TABLE interactions ADD COLUMN call_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE interactions ADD COLUMN script_answers TEXT NOT NULL DEFAULT '{}';
        CREATE TABLE orders (
            id          INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
            ordered_at  REAL NOT NULL,   -- wall-clock epoch seconds
            amount      REAL NOT NULL,
            currency    TEXT NOT NULL DEFAULT '',
            reference   TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX idx_orders_customer_at ON orders (customer_id, ordered_at);
        CREATE UNIQUE INDEX idx_orders_reference ON orders (customer_id, reference)
            WHERE reference <> '';
        CREATE TABLE service_items (
            id               INTEGER PRIMARY KEY,
            customer_id      INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
            title            TEXT NOT NULL,
            detail           TEXT NOT NULL DEFAULT '',
            status           TEXT NOT NULL DEFAULT 'open',
            priority         TEXT NOT NULL DEFAULT 'normal',
            created_at       REAL NOT NULL,
            updated_at       REAL NOT NULL,
            due_at           REAL,
            assignee         TEXT NOT NULL DEFAULT '',
            escalation_level INTEGER NOT NULL DEFAULT 0,
            escalated_at     REAL,
            escalated_to     TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX idx_service_items_customer ON service_items (customer_id, status);
        CREATE INDEX idx_service_items_open_due ON service_items (due_at)
            WHERE status IN ('open', 'in_progress', 'waiting');
        """,
    ),
    (
        9,
        """
        -- What the value score was computed from (cti.scoring.ValueInputs), so the
        -- screen-pop explains the stored score without reading the orders again.
        ALTER TABLE customers ADD COLUMN scored_at REAL;
        ALTER TABLE customers ADD COLUMN last_order_at REAL;
        ALTER TABLE customers ADD COLUMN window_orders INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE customers ADD COLUMN window_spent REAL NOT NULL DEFAULT 0;
        ALTER TABLE customers ADD COLUMN window_contacts INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        10,
        """
        -- The search index's triggers again, deleting a row's old text only if it had
        -- some: a customer stored before migration 7 (search_text NULL) was never in
        -- the index, and FTS5 must not be asked to delete what it does not hold.
        DROP TRIGGER customer_search_delete;
        DROP TRIGGER customer_search_update;
        CREATE TRIGGER customer_search_delete AFTER DELETE ON customers
        WHEN old.search_text IS NOT NULL BEGIN
            INSERT INTO customer_search (customer_search, rowid, search_text)
                VALUES ('delete', old.id, old.search_text);
        END;
        CREATE TRIGGER customer_search_update AFTER UPDATE OF search_text ON customers BEGIN
            INSERT INTO customer_search (customer_search, rowid, search_text)
                SELECT 'delete', old.id, old.search_text WHERE old.search_text IS NOT NULL;
            INSERT INTO customer_search (rowid, search_text)
                SELECT new.id, new.search_text WHERE new.search_text IS NOT NULL;
        END;
        """,
    ),
    (
        11,
        """
        -- Who looked at, searched or changed which customer, and what was refused
        -- (issue 17; written by the engine's customer desk, read by `cti customers audit`).
        CREATE TABLE customer_audit (
            id          INTEGER PRIMARY KEY,
            at          REAL NOT NULL,            -- wall-clock epoch
            agent_id    TEXT NOT NULL,
            action      TEXT NOT NULL,            -- search, show, choose, create, item, escalate
            customer_id INTEGER,                  -- NULL: a search, or none was named
            allowed     INTEGER NOT NULL,         -- 0: refused
            detail      TEXT NOT NULL DEFAULT ''  -- the query and what it found, the reason
        );
        CREATE INDEX idx_customer_audit_customer ON customer_audit (customer_id, at);
        CREATE INDEX idx_customer_audit_agent ON customer_audit (agent_id, at);
        -- An agent's recent calls, for what they may read.
        CREATE INDEX idx_call_records_agent ON call_records (agent_id, started_wall);
        """,
    ),
    (
        12,
        """
        -- The customer base's generation: bumped by every change a lookup by number can
        -- see (customers, their phones and e-mails), so the screen-pop reader's cache of
        -- hot numbers (cti.store.customers_read) knows when to drop, whichever process
        -- wrote. A bulk load (cti.store.customers_bulk) holds a row of customer_bulk_load
        -- inside its own transaction (never seen by others): these triggers and the search
        -- index's skip its rows, and it bumps the generation and fills the index itself.
        CREATE TABLE customer_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            n  INTEGER NOT NULL
        );
        INSERT INTO customer_generation (id, n) VALUES (1, 0);
        CREATE TABLE customer_bulk_load (id INTEGER PRIMARY KEY);
        CREATE TRIGGER customer_generation_customer_insert AFTER INSERT ON customers
        WHEN NOT EXISTS (SELECT 1 FROM customer_bulk_load) BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_customer_update AFTER UPDATE ON customers
        WHEN NOT EXISTS (SELECT 1 FROM customer_bulk_load) BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_customer_delete AFTER DELETE ON customers BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_phone_insert AFTER INSERT ON customer_phones
        WHEN NOT EXISTS (SELECT 1 FROM customer_bulk_load) BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_phone_update AFTER UPDATE ON customer_phones BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_phone_delete AFTER DELETE ON customer_phones BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_email_insert AFTER INSERT ON customer_emails
        WHEN NOT EXISTS (SELECT 1 FROM customer_bulk_load) BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_email_update AFTER UPDATE ON customer_emails BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        CREATE TRIGGER customer_generation_email_delete AFTER DELETE ON customer_emails BEGIN
            UPDATE customer_generation SET n = n + 1;
        END;
        DROP TRIGGER customer_search_insert;
        CREATE TRIGGER customer_search_insert AFTER INSERT ON customers
        WHEN NOT EXISTS (SELECT 1 FROM customer_bulk_load) BEGIN
            INSERT INTO customer_search (rowid, search_text) VALUES (new.id, new.search_text);
        END;
        """,
    ),
    (
        13,
        """
        -- A large bulk load (cti.store.customers_bulk) drops the name, e-mail and gram
        -- indexes and leaves the search index for later; this row says so until it has
        -- built them again (Store.open finishes a load that died half-way).
        CREATE TABLE customer_bulk_pending (
            id         INTEGER PRIMARY KEY CHECK (id = 1),
            started_at REAL NOT NULL
        );
        """,
    ),
    (
        14,
        """
        -- The per-row insert triggers such a load drops with the indexes (it fills the
        -- search index and bumps the generation itself), kept here to be created again.
        CREATE TABLE customer_bulk_triggers (
            name TEXT PRIMARY KEY,
            sql  TEXT NOT NULL
        );
        """,
    ),
    (
        15,
        """
        -- The CJK grams of a customer's name and company (for 1- and 2-character Chinese
        -- queries) move from customer_name_grams, a row per gram (3.4 a customer, each
        -- a B-tree insert into two indexes), to a column of the customer's own row, the
        -- grams separated by spaces, indexed by an FTS5 table (the ascii tokenizer:
        -- every non-ASCII character is a token character, so a gram is one token;
        -- columnsize=0: no sizes kept, a name without grams costs nothing there). The
        -- triggers are the search index's; a bulk load fills it by batch.
        ALTER TABLE customers ADD COLUMN grams TEXT NOT NULL DEFAULT '';
        INSERT INTO customer_bulk_load (id) VALUES (1);  -- no generation bump per row
        UPDATE customers SET grams = g.grams
            FROM (SELECT customer_id, group_concat(gram, ' ') AS grams
                  FROM customer_name_grams GROUP BY customer_id) AS g
            WHERE g.customer_id = customers.id;
        DELETE FROM customer_bulk_load;
        UPDATE customer_generation SET n = n + 1;
        DROP TABLE customer_name_grams;
        CREATE VIRTUAL TABLE customer_grams USING fts5 (
            grams, content = 'customers', content_rowid = 'id', tokenize = 'ascii',
            columnsize = 0
        );
        INSERT INTO customer_grams (customer_grams) VALUES ('rebuild');
        CREATE TRIGGER customer_grams_insert AFTER INSERT ON customers
        WHEN NOT EXISTS (SELECT 1 FROM customer_bulk_load) BEGIN
            INSERT INTO customer_grams (rowid, grams) VALUES (new.id, new.grams);
        END;
        CREATE TRIGGER customer_grams_delete AFTER DELETE ON customers BEGIN
            INSERT INTO customer_grams (customer_grams, rowid, grams)
                VALUES ('delete', old.id, old.grams);
        END;
        CREATE TRIGGER customer_grams_update AFTER UPDATE OF grams ON customers BEGIN
            INSERT INTO customer_grams (customer_grams, rowid, grams)
                VALUES ('delete', old.id, old.grams);
            INSERT INTO customer_grams (rowid, grams) VALUES (new.id, new.grams);
        END;
        """,
    ),
    (
        16,
        """
        -- The search index without its documents' sizes (columnsize=0): nothing reads
        -- them (a search takes MATCH's rowids, never a rank), and their row a customer
        -- was some 40% of the index's rebuild after a large import (issue 23). Rebuilt
        -- from the customers' search_text here, once.
        DROP TABLE customer_search;
        CREATE VIRTUAL TABLE customer_search USING fts5 (
            search_text, content = 'customers', content_rowid = 'id', tokenize = 'trigram',
            columnsize = 0
        );
        INSERT INTO customer_search (customer_search) VALUES ('rebuild');
        """,
    ),
    # 20-29: call scripts. Keep the numbers rising down this tuple (the store checks).
    (
        20,
        """
        -- The script a call ran (same call_id as its call_records row), and the work
        -- scripts leave for other systems (do-not-call, follow-up e-mail).
        CREATE TABLE script_runs (
            call_id       TEXT PRIMARY KEY,
            agent_id      TEXT NOT NULL,
            customer_id   INTEGER,
            script        TEXT NOT NULL,
            version       TEXT NOT NULL,
            sha256        TEXT NOT NULL DEFAULT '',
            answers       TEXT NOT NULL DEFAULT '{}',  -- JSON object: answer name -> value
            path          TEXT NOT NULL DEFAULT '[]',  -- JSON array of node ids
            actions       TEXT NOT NULL DEFAULT '[]',  -- JSON array of {node, action, args}
            recorded_wall REAL NOT NULL
        );
        CREATE TABLE outbox (
            id           INTEGER PRIMARY KEY,
            call_id      TEXT NOT NULL,
            customer_id  INTEGER,
            action       TEXT NOT NULL,  -- add_to_dnc | send_email
            args         TEXT NOT NULL DEFAULT '{}',
            created_wall REAL NOT NULL,
            done_wall    REAL
        );
        CREATE INDEX idx_outbox_call ON outbox (call_id);
        CREATE INDEX idx_outbox_pending ON outbox (created_wall) WHERE done_wall IS NULL;
        """,
    ),
    (
        21,
        """
        -- The mailer's state of a send_email row (cti/engine/mail.py): state pending |
        -- sent | failed; attempts made; next_wall: not tried again before (the backoff);
        -- error: why the last attempt failed (why it failed, once failed). done_wall:
        -- when it was sent or given up.
        ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
        ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE outbox ADD COLUMN next_wall REAL NOT NULL DEFAULT 0;
        ALTER TABLE outbox ADD COLUMN error TEXT NOT NULL DEFAULT '';
        """,
    ),
    # 30-39: outbound campaigns (the dialer: cti/store/campaigns.py).
    (
        30,
        """
        CREATE TABLE campaigns (
            id           INTEGER PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            mode         TEXT NOT NULL,          -- preview | progressive | power | predictive
            queue        TEXT NOT NULL,          -- the router queue of its answered calls
            script       TEXT NOT NULL DEFAULT '',
            settings     TEXT NOT NULL,          -- JSON: CampaignSettings (pacing, rules)
            state        TEXT NOT NULL DEFAULT 'stopped',  -- running | paused | stopped
            created_wall REAL NOT NULL
        );
        CREATE TABLE lead_lists (
            id          INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
            name        TEXT NOT NULL,
            state       TEXT NOT NULL DEFAULT 'active',  -- active | paused
            added_wall  REAL NOT NULL,
            recycled    INTEGER NOT NULL DEFAULT 0,
            UNIQUE (campaign_id, name)
        );
        CREATE TABLE leads (
            id           INTEGER PRIMARY KEY,
            list_id      INTEGER NOT NULL REFERENCES lead_lists (id) ON DELETE CASCADE,
            campaign_id  INTEGER NOT NULL,
            line_no      INTEGER NOT NULL,       -- its line in the imported file
            number       TEXT NOT NULL,          -- as the file gave it
            e164         TEXT NOT NULL,
            name         TEXT NOT NULL DEFAULT '',
            time_zone    TEXT NOT NULL DEFAULT '',
            region       TEXT NOT NULL DEFAULT '',
            zones        TEXT NOT NULL,          -- JSON array: the zones its hours are kept in
            fields       TEXT NOT NULL DEFAULT '{}',
            customer_id  INTEGER,                -- joined by e164 on import
            state        TEXT NOT NULL DEFAULT 'pending',
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_at      REAL NOT NULL DEFAULT 0,
            last_outcome TEXT NOT NULL DEFAULT '',
            callback_at  REAL
        );
        CREATE INDEX idx_leads_campaign ON leads (campaign_id, state);
        CREATE INDEX idx_leads_e164 ON leads (e164);
        CREATE TABLE dial_attempts (
            id           INTEGER PRIMARY KEY,
            campaign_id  INTEGER NOT NULL,
            lead_id      INTEGER NOT NULL,
            attempt      INTEGER NOT NULL,
            call_id      TEXT NOT NULL,
            e164         TEXT NOT NULL,
            zones        TEXT NOT NULL,
            dialled_wall REAL NOT NULL,
            outcome      TEXT NOT NULL DEFAULT '',  -- '' while under way
            ended_wall   REAL,
            agent_id     TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX idx_dial_attempts_campaign ON dial_attempts (campaign_id, dialled_wall);
        CREATE TABLE do_not_call (
            e164        TEXT NOT NULL,
            campaign_id INTEGER NOT NULL DEFAULT 0,  -- 0: the global list
            added_wall  REAL NOT NULL,
            reason      TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (e164, campaign_id)
        );
        """,
    ),
    # 60-69: durability (call records never dropped: cti/store/database.py).
    (
        60,
        """
        -- A record whose call id another record holds already is kept in call_records
        -- under a suffixed id (stored_as); this says whose id it claimed, and when.
        CREATE TABLE call_record_conflicts (
            stored_as     TEXT PRIMARY KEY,
            call_id       TEXT NOT NULL,
            detected_wall REAL NOT NULL
        );
        CREATE INDEX idx_call_record_conflicts_call ON call_record_conflicts (call_id);
        """,
    ),
    (
        70,
        """
        -- voice (70-79): a call's recording, beside its call record (same call_id; either
        -- may be written first). paused: JSON [[from_s, to_s], ...]; error: why it failed
        -- ('' if it did not); deleted_wall: when the file was deleted (the row stays).
        CREATE TABLE call_recordings (
            call_id       TEXT PRIMARY KEY,
            path          TEXT NOT NULL DEFAULT '',
            duration_s    REAL NOT NULL DEFAULT 0,
            paused        TEXT NOT NULL DEFAULT '[]',
            error         TEXT NOT NULL DEFAULT '',
            finished_wall REAL NOT NULL,
            deleted_wall  REAL,
            deleted_by    TEXT NOT NULL DEFAULT ''
        );
        """,
    ),
    (
        71,
        """
        -- Voicemail (issue 20): a row is a recording, keyed by its id (its file's name: a
        -- call's recording is its call id, a message '<call_id>.message'); kind: call or
        -- message. A message is attached to the callback that will return it.
        ALTER TABLE call_recordings RENAME COLUMN call_id TO recording_id;
        ALTER TABLE call_recordings ADD COLUMN call_id TEXT NOT NULL DEFAULT '';
        UPDATE call_recordings SET call_id = recording_id;
        ALTER TABLE call_recordings ADD COLUMN kind TEXT NOT NULL DEFAULT 'call';
        CREATE INDEX idx_call_recordings_call ON call_recordings (call_id);
        CREATE TABLE callback_messages (
            callback_id   TEXT PRIMARY KEY,   -- the callback's call id in the router
            recording_id  TEXT NOT NULL,      -- call_recordings.recording_id (either first)
            attached_wall REAL NOT NULL
        );
        CREATE INDEX idx_callback_messages_recording ON callback_messages (recording_id);
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
"""The engine journal's schema (:mod:`cti.store.journal`), a file of its own beside the store.

Numbered and applied like :data:`MIGRATIONS`, in the journal file's own
``schema_version`` table.
"""
