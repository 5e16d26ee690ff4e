"""The store's schema and its migrations, one source of truth for SQLite and PostgreSQL:
the SQL of every version, the migration list (:data:`MIGRATIONS`, applied in order at open;
the version is ``PRAGMA user_version`` in SQLite, the ``schema_version`` table of the bay's
schema in PostgreSQL) and :func:`migrate`, which takes a database to the newest version in
one transaction. Migration *i* means the same on both backends: its SQL is written once in
SQLite's dialect and translated for PostgreSQL (:func:`pg_ddl`: 64-bit integers, double
precision), or, where the two differ (the readings table partitioned by month, the
append-only triggers in PL/pgSQL, accounts site-wide), given per dialect (:class:`Dialects`).
The shared ``chairside_site`` schema of PostgreSQL has its own list, :data:`SITE_MIGRATIONS`.
Also the audit chain's head statements the writer uses (:data:`AUDIT_HEAD`,
:data:`UPSERT_HEAD`, :data:`INSERT_CHAINED`). The layout is drawn in :mod:`monitor.store`.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from monitor.audit import ACTION_FIELDS, GENESIS, action_hash
from monitor.integrity import LEDGER_SCHEMA, seal_all
from monitor.store.db import Db, DbError
from monitor.store.protocol import StoreError

__all__ = ["AUDIT_HEAD", "INSERT_CHAINED", "MIGRATIONS", "SITE_MIGRATIONS", "UPSERT_HEAD", "Dialects",
           "Migration", "migrate", "pg_ddl", "run_script", "split_statements"]

log = logging.getLogger("monitor.store")


class Dialects(NamedTuple):
    """A migration whose SQL differs between the backends."""

    sqlite: str | Callable[[Db], None]
    postgresql: str | Callable[[Db], None]


#: A migration is SQL text (one or more statements, SQLite's dialect), a function given the
#: connection (:class:`monitor.store.db.Db`), or one of each per backend.
Migration = str | Callable[[Db], None] | Dialects

_PG_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGSERIAL PRIMARY KEY"),
             (re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
             (re.compile(r"""(?<![\w"'])user(?![\w"'])"""), '"user"'))


def pg_ddl(sql: str) -> str:
    """DDL in SQLite's dialect as PostgreSQL takes it: integers 64-bit (an ``INTEGER PRIMARY
    KEY`` a ``BIGSERIAL``), ``REAL`` double precision, the column ``user`` quoted."""
    for pattern, replacement in _PG_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


def run_script(db: Db, sql: str) -> None:
    """Run DDL (several statements) on either backend."""
    db.script(pg_ddl(sql) if db.dialect == "postgresql" else sql)


# No NOT NULL or CHECK constraints: a row the database refused would fail its whole batch
# on every retry. The foreign key holds by construction (alarm upserted before its event).
_SCHEMA_V1 = """
CREATE TABLE readings (id INTEGER PRIMARY KEY, chair TEXT, parameter TEXT, value REAL,
    device_time REAL, receive_time REAL, device TEXT, seq INTEGER, flags INTEGER);
CREATE INDEX readings_chair_time ON readings (chair, device_time);
CREATE TABLE alarms (id INTEGER PRIMARY KEY, chair TEXT, code TEXT, rule TEXT, kind TEXT,
    priority INTEGER, state TEXT, message TEXT, raised_at REAL, updated_at REAL,
    parameter TEXT, value REAL, limit_value REAL, paused_until REAL, acknowledged_by TEXT,
    acknowledged_at REAL, cleared_at REAL);
CREATE INDEX alarms_open ON alarms (id) WHERE state != 'cleared';
CREATE TABLE alarm_events (id INTEGER PRIMARY KEY, time REAL, chair TEXT,
    alarm_id INTEGER REFERENCES alarms (id), old_state TEXT, new_state TEXT, user TEXT,
    note TEXT, alarm TEXT);
CREATE INDEX alarm_events_time ON alarm_events (time);
CREATE INDEX alarm_events_chair_time ON alarm_events (chair, time);
CREATE TABLE sessions (id TEXT PRIMARY KEY, chair TEXT, patient TEXT, protocol TEXT,
    drug TEXT, dose TEXT, planned_minutes REAL, nibp_interval_s REAL,
    observation_minutes REAL, state TEXT, started_at REAL, started_by TEXT,
    infusion_started_at REAL, infusion_stopped_at REAL, observation_started_at REAL,
    ended_at REAL, ended_by TEXT, baseline TEXT, baseline_source TEXT, limit_overrides TEXT,
    updated_at REAL);
CREATE INDEX sessions_chair_started ON sessions (chair, started_at);
CREATE INDEX sessions_open ON sessions (started_at) WHERE state != 'ended';
CREATE TABLE session_events (id INTEGER PRIMARY KEY, session_id TEXT, chair TEXT,
    time REAL, kind TEXT, user TEXT, detail TEXT, data TEXT);
CREATE INDEX session_events_session ON session_events (session_id, time);
CREATE TABLE operator_actions (id INTEGER PRIMARY KEY, time REAL, user TEXT, action TEXT,
    chair TEXT, target TEXT, detail TEXT);
CREATE INDEX operator_actions_time ON operator_actions (time);
"""

# PostgreSQL: readings partitioned by the month they were received (the server's clock, not a
# device's: retention drops whole months); ids given by the writer (no sequence), indexed per
# partition; a default partition takes what no month holds (created ahead by the service).
_PG_READINGS = """
CREATE TABLE readings (id BIGINT NOT NULL, chair TEXT, parameter TEXT, value DOUBLE PRECISION,
    device_time DOUBLE PRECISION, receive_time DOUBLE PRECISION, device TEXT, seq BIGINT,
    flags BIGINT) PARTITION BY RANGE (receive_time);
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE INDEX readings_chair_time ON readings (chair, device_time);
CREATE INDEX readings_id ON readings (id);
"""
_READINGS_V1 = _SCHEMA_V1[:_SCHEMA_V1.index("CREATE TABLE alarms")]
_PG_SCHEMA_V1 = _PG_READINGS + _SCHEMA_V1[len(_READINGS_V1):]

AUDIT_HEAD = """CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY, actions INTEGER,
    last_id INTEGER, hash TEXT, updated_at REAL)"""
_AUDIT_TRIGGERS = """
CREATE TRIGGER operator_actions_no_update BEFORE UPDATE ON operator_actions
BEGIN SELECT RAISE(ABORT, 'operator_actions is append-only'); END;
CREATE TRIGGER operator_actions_no_delete BEFORE DELETE ON operator_actions
BEGIN SELECT RAISE(ABORT, 'operator_actions is append-only'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END;
"""
ACTION_ROW = ", ".join(ACTION_FIELDS)
INSERT_CHAINED = (f"INSERT INTO operator_actions ({ACTION_ROW}, prev_hash, hash) "
                   f"VALUES ({', '.join('?' * (len(ACTION_FIELDS) + 2))})")
UPSERT_HEAD = (
    "INSERT INTO audit_head (id, actions, last_id, hash, updated_at) VALUES (1, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET actions = excluded.actions, last_id = excluded.last_id, "
    "hash = excluded.hash, updated_at = excluded.updated_at"
)


_PG_AUDIT_TRIGGERS = """
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
CREATE FUNCTION head_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% cannot be deleted', TG_TABLE_NAME; END $$;
CREATE TRIGGER operator_actions_no_update BEFORE UPDATE ON operator_actions
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER operator_actions_no_delete BEFORE DELETE ON operator_actions
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER operator_actions_no_truncate BEFORE TRUNCATE ON operator_actions
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION head_kept();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION head_kept();
"""


def _migrate_audit_chain(conn: Db) -> None:
    """Migration 2: hash-chain operator_actions, rows from before it included, in id order;
    record the chain head; make the table append-only."""
    conn.execute("ALTER TABLE operator_actions ADD COLUMN prev_hash TEXT")
    conn.execute("ALTER TABLE operator_actions ADD COLUMN hash TEXT")
    run_script(conn, AUDIT_HEAD)
    prev, count, last_id = GENESIS, 0, 0
    rows = conn.execute(f"SELECT {ACTION_ROW} FROM operator_actions ORDER BY id").fetchall()
    for row in rows:
        digest = action_hash(prev, row)
        conn.execute("UPDATE operator_actions SET prev_hash = ?, hash = ? WHERE id = ?",
                     (prev, digest, row[0]))
        prev, count, last_id = digest, count + 1, row[0]
    conn.execute(UPSERT_HEAD, (count, last_id, prev, time.time()))
    run_script(conn, _PG_AUDIT_TRIGGERS if conn.dialect == "postgresql" else _AUDIT_TRIGGERS)
    log.info("audit chain: %d existing operator actions hashed, head %s", count, prev)


def _migrate_integrity(conn: Db, key: bytes | None = None) -> None:
    """Migration 6: the keyed integrity ledger; every row already stored is sealed (with
    the store's key: :func:`migrate` passes it)."""
    if key is None:
        raise StoreError("the integrity ledger migration needs the audit key")
    run_script(conn, LEDGER_SCHEMA)
    seal_all(conn, key)


_USERS = """CREATE TABLE users (
        username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL)"""


#: Schema migrations, in order; migration i (1-based) takes the file to version i.
#: To change the schema, append one entry, e.g. ``"ALTER TABLE readings ADD COLUMN unit TEXT"``.
MIGRATIONS: list[Migration] = [
    Dialects(_SCHEMA_V1, _PG_SCHEMA_V1),  # 1: initial schema
    _migrate_audit_chain,  # 2: operator_actions hash-chained and append-only, audit_head
    # 3: dashboard/API accounts (monitor.users); passwords only as argon2id hashes. In
    # PostgreSQL accounts are site-wide: the users table is in chairside_site (SITE_MIGRATIONS)
    Dialects(_USERS, ""),
    # 4: the last seq stored per device, written in the transaction of its readings, so a
    # restarted monitor knows where each device's sequence stood (gaps, redeliveries)
    """CREATE TABLE device_seqs (device TEXT PRIMARY KEY, seq INTEGER, device_time REAL,
        receive_time REAL);
    INSERT INTO device_seqs (device, seq, device_time, receive_time)
        SELECT device, seq, device_time, receive_time FROM readings
        WHERE id IN (SELECT max(id) FROM readings WHERE seq IS NOT NULL GROUP BY device)""",
    # 5: when an alarm's condition began (raised_at: when it was annunciated)
    "ALTER TABLE alarms ADD COLUMN onset_at REAL",
    # 6: the keyed integrity ledger (monitor.integrity); existing rows are sealed here
    _migrate_integrity,
    # 7: server-side login sessions (id: sha256 of the cookie's token) and failed-login
    # counters per account and per client address (monitor.logins)
    """CREATE TABLE auth_sessions (id TEXT PRIMARY KEY, username TEXT NOT NULL,
        created_at REAL NOT NULL, last_active REAL NOT NULL, expires_at REAL NOT NULL,
        remote TEXT, ended_at REAL, end_reason TEXT);
    CREATE INDEX auth_sessions_open ON auth_sessions (username) WHERE ended_at IS NULL;
    CREATE TABLE login_failures (key TEXT PRIMARY KEY, failures INTEGER NOT NULL,
        first_at REAL NOT NULL, last_at REAL NOT NULL, locked_until REAL,
        refused INTEGER NOT NULL DEFAULT 0)""",
    # 8: the messages each source took lately (monitor.records.MessageReceipt), written with
    # their readings, so a message sent again after a crash or takeover is recognised
    """CREATE TABLE message_receipts (time REAL NOT NULL, source TEXT NOT NULL, key TEXT NOT NULL);
    CREATE INDEX message_receipts_source_time ON message_receipts (source, time);
    CREATE INDEX message_receipts_time ON message_receipts (time)""",
    # 9: the bay's leader epoch (high availability): a new leader takes the next one, and a
    # writer writes only under its own (monitor.store.writer.BatchWriter.fence)
    """CREATE TABLE leader_epoch (id INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, server TEXT,
        taken_at REAL)""",
]


#: The shared ``chairside_site`` schema of a PostgreSQL site: the bays that write to the
#: database, the site-wide accounts with their per-bay roles, and the ledger sealing them.
SITE_MIGRATIONS: list[Migration] = [
    """CREATE TABLE bays (id TEXT PRIMARY KEY, name TEXT NOT NULL, schema_name TEXT NOT NULL UNIQUE,
        url TEXT, updated_at REAL NOT NULL)""",
    _USERS + """;
    CREATE TABLE bay_roles (username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        bay TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (username, bay));
    """ + LEDGER_SCHEMA,
    # 3: a per-bay role's key in the site ledger (monitor.integrity ROW_TABLES: one column)
    "ALTER TABLE bay_roles ADD COLUMN role_key TEXT GENERATED ALWAYS AS (bay || '/' || username) STORED",
]


def split_statements(sql: str) -> Iterator[str]:
    """Split SQL text into complete statements (semicolons in literals/triggers are kept)."""
    buf = ""
    for part in sql.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                yield buf.strip()
            buf = ""
    if buf.strip(" \n\t;"):  # incomplete (e.g. an open quote): let SQLite say why
        yield buf.strip()


def migrate(conn: Db, name: str, key: bytes, migrations: list[Migration] | None = None) -> None:
    """Take the database open on ``conn`` (the bay's schema in PostgreSQL) to the newest
    schema version, in one transaction; the ledger migration seals existing rows with
    ``key``. Raises :class:`StoreError` (naming ``name``) for a database newer than this code
    or a migration the database refuses."""
    migrations = list(MIGRATIONS if migrations is None else migrations)  # looked up at open,
    try:                                                                # so tests can patch it
        conn.begin()
        if conn.dialect == "postgresql":  # one migrator at a time per schema, across processes
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
        version = conn.version()
        if version > len(migrations):
            raise StoreError(
                f"store {name} has schema version {version}, newer than this "
                f"Chairside knows ({len(migrations)}); refusing to open it"
            )
        for number in range(version + 1, len(migrations) + 1):
            migration = migrations[number - 1]
            if isinstance(migration, Dialects):
                migration = getattr(migration, conn.dialect)
            if migration is _migrate_integrity:
                migration(conn, key)
            elif callable(migration):
                migration(conn)
            elif migration:
                run_script(conn, migration)
            conn.set_version(number)
            log.info("store %s: schema migrated to version %d", name, number)
        conn.commit()
    except BaseException as exc:
        conn.rollback()
        if isinstance(exc, DbError):
            raise StoreError(f"cannot open store {name}: schema: {exc.reason}") from exc
        raise
