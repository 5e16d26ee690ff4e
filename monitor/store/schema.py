"""The store's schema and its migrations: the SQL of every version, the migration list
(:data:`MIGRATIONS`, applied in order at open; the version is ``PRAGMA user_version``) and
:func:`migrate`, which takes a file to the newest version in one transaction. Also the audit
chain's head statements the writer uses (:data:`AUDIT_HEAD`, :data:`UPSERT_HEAD`,
:data:`INSERT_CHAINED`). The table layout is drawn in :mod:`monitor.store`'s docstring.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator

from monitor.audit import ACTION_FIELDS, GENESIS, action_hash
from monitor.integrity import LEDGER_SCHEMA, seal_all
from monitor.store.protocol import StoreError

__all__ = ["AUDIT_HEAD", "INSERT_CHAINED", "MIGRATIONS", "UPSERT_HEAD", "Migration", "migrate",
           "split_statements"]

log = logging.getLogger("monitor.store")

#: A migration is SQL text (one or more statements) or a function given the connection.
Migration = str | Callable[[sqlite3.Connection], None]


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


def _migrate_audit_chain(conn: sqlite3.Connection) -> None:
    """Migration 2: hash-chain operator_actions, rows from before it included, in id order;
    record the chain head; make the table append-only."""
    conn.execute("ALTER TABLE operator_actions ADD COLUMN prev_hash TEXT")
    conn.execute("ALTER TABLE operator_actions ADD COLUMN hash TEXT")
    conn.execute(AUDIT_HEAD)
    prev, count, last_id = GENESIS, 0, 0
    rows = conn.execute(f"SELECT {ACTION_ROW} FROM operator_actions ORDER BY id").fetchall()
    for row in rows:
        digest = action_hash(prev, row)
        conn.execute("UPDATE operator_actions SET prev_hash = ?, hash = ? WHERE id = ?",
                     (prev, digest, row[0]))
        prev, count, last_id = digest, count + 1, row[0]
    conn.execute(UPSERT_HEAD, (count, last_id, prev, time.time()))
    for statement in split_statements(_AUDIT_TRIGGERS):
        conn.execute(statement)
    log.info("audit chain: %d existing operator actions hashed, head %s", count, prev)


def _migrate_integrity(conn: sqlite3.Connection, key: bytes | None = None) -> None:
    """Migration 6: the keyed integrity ledger; every row already stored is sealed (with
    the store's key: :func:`migrate` passes it)."""
    if key is None:
        raise StoreError("the integrity ledger migration needs the audit key")
    for statement in split_statements(LEDGER_SCHEMA):
        conn.execute(statement)
    seal_all(conn, key)


#: Schema migrations, in order; migration i (1-based) takes the file to version i.
#: To change the schema, append one entry, e.g. ``"ALTER TABLE readings ADD COLUMN unit TEXT"``.
MIGRATIONS: list[Migration] = [
    _SCHEMA_V1,  # 1: initial schema
    _migrate_audit_chain,  # 2: operator_actions hash-chained and append-only, audit_head
    # 3: dashboard/API accounts (monitor.users); passwords only as argon2id hashes
    """CREATE TABLE users (
        username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
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


def migrate(conn: sqlite3.Connection, path: str, key: bytes) -> None:
    """Take the file open on ``conn`` to the newest schema version, in one transaction; the
    ledger migration seals existing rows with ``key``. Raises :class:`StoreError` (naming
    ``path``) for a file newer than this code or a migration SQLite refuses."""
    migrations = list(MIGRATIONS)  # looked up at open, so tests can patch the list
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise StoreError(
                f"store {path} has schema version {version}, newer than this "
                f"Chairside knows ({len(migrations)}); refusing to open it"
            )
        for number in range(version + 1, len(migrations) + 1):
            migration = migrations[number - 1]
            if migration is _migrate_integrity:
                migration(conn, key)
            elif callable(migration):
                migration(conn)
            else:
                for statement in split_statements(migration):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
            log.info("store %s: schema migrated to version %d", path, number)
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot open store {path}: schema: {exc}") from exc
        raise
