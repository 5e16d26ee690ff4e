"""The durable store: readings and records in one SQLite file, written by one thread.

Design::

    producers (adapters, core, dashboard)          writer thread (owns the write connection)
    ------------------------------------           ------------------------------------------
    add_readings(rs) -+                             every commit_interval s, or sooner when
    add_records(rs)  -+-> pending lists (lock) ---> > max_batch rows wait or flush() asks:
          |                ticket += 1              take pending, BEGIN IMMEDIATE,
          v                                         executemany(readings), records, COMMIT;
       ticket N                                     committed_ticket = N; notify waiters;
          |                                         call commit listeners fn(N)
    wait_durable(N) / flush() <---- Condition ------+
    readers: a small pool of read-only connections (WAL lets them read while the writer writes)

Producers never touch the disk: a submission appends to a list under a lock and returns a
*ticket*, a monotonically increasing int. Everything submitted with ticket <= N is durable
(WAL, ``synchronous=FULL``) once ``committed_ticket >= N``. Submission order is kept: a batch
is everything pending when the writer wakes, written in one transaction, in submission order.
A batch whose write fails is logged, kept and retried on the next cycle with newer
submissions appended; nothing accepted is dropped unless ``close()`` times out on a disk
that keeps failing (logged as an error with the count lost).

Records are converted to SQL parameters on the caller's thread (cheap; a record that cannot
be stored, e.g. a detail dict that is not JSON, raises there instead of poisoning a batch).

Schema (version in ``PRAGMA user_version``; :data:`MIGRATIONS` applied in order at open)::

    readings         id PK, chair, parameter, value NULL, device_time, receive_time, device,
                     seq NULL, flags                   index (chair, device_time)
    alarms           id PK, all Alarm fields ("limit" is limit_value), one row per alarm,
                     upserted from each AlarmEvent     partial index on open alarms
    alarm_events     id PK, time, chair, alarm_id -> alarms, old_state, new_state, user,
                     note, alarm (JSON snapshot of the Alarm after the change)
    sessions         id PK (text), all Session fields, baseline and limit_overrides as JSON
    session_events   id PK, session_id, chair, time, kind, user, detail, data (JSON)
    operator_actions id PK, time, user, action, chair, target, detail (JSON), prev_hash, hash
                     append-only (triggers), hash-chained: see :mod:`monitor.audit`
    audit_head       one row (id 1): actions, last_id, hash, updated_at: the chain's head,
                     updated in the transaction that appends actions
    users            accounts (monitor.users); auth_sessions, login_failures (monitor.logins)
    integrity_ledger id PK, time, tbl, first_id, last_id, row_key, digest, mac: keyed (HMAC)
    integrity_head   entries sealing every batch of readings, events and actions and every
                     write of alarms, sessions and users: see :mod:`monitor.integrity`

The file is created with mode 0600 (``file_mode``; SQLite gives its -wal and -shm the same);
the ledger's key lives in a file beside it (``audit_key_file``, default ``<path>.audit-key``).

A PostgreSQL backend would implement :class:`Store` with the same semantics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from enum import Enum
from typing import Any, NamedTuple, Protocol

import numpy as np

from monitor.audit import ACTION_FIELDS, GENESIS, action_hash, canonical_json
from monitor.integrity import (
    LEDGER_SCHEMA,
    Sealer,
    default_key_path,
    load_key,
    private_file,
    reading_rows,
    seal_all,
)
from monitor.readings import Reading
from monitor.records import (
    Alarm,
    AlarmEvent,
    AlarmKind,
    AlarmState,
    OperatorAction,
    Priority,
    Session,
    SessionEvent,
    SessionEventKind,
    SessionState,
)

__all__ = ["MIGRATIONS", "DeviceSeqs", "Migration", "Record", "SqliteStore", "Store", "StoreError"]

log = logging.getLogger(__name__)

Record = AlarmEvent | Session | SessionEvent | OperatorAction


class DeviceSeqs(NamedTuple):
    """Where a device's sequence stood in the store (see :meth:`SqliteStore.device_seqs`)."""

    last_seq: int
    last_time: float
    recent: tuple[tuple[int, float], ...]  # (seq, device time), oldest first
RecentSeries = tuple[str, str, np.ndarray, np.ndarray, np.ndarray]
#: A migration is SQL text (one or more statements) or a function given the connection.
Migration = str | Callable[[sqlite3.Connection], None]


class StoreError(Exception):
    """The store cannot do what was asked; the message names the file."""


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

_AUDIT_HEAD = """CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY, actions INTEGER,
    last_id INTEGER, hash TEXT, updated_at REAL)"""
_AUDIT_TRIGGERS = """
CREATE TRIGGER operator_actions_no_update BEFORE UPDATE ON operator_actions
BEGIN SELECT RAISE(ABORT, 'operator_actions is append-only'); END;
CREATE TRIGGER operator_actions_no_delete BEFORE DELETE ON operator_actions
BEGIN SELECT RAISE(ABORT, 'operator_actions is append-only'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END;
"""
_ACTION_ROW = ", ".join(ACTION_FIELDS)
_INSERT_CHAINED = (f"INSERT INTO operator_actions ({_ACTION_ROW}, prev_hash, hash) "
                   f"VALUES ({', '.join('?' * (len(ACTION_FIELDS) + 2))})")
_UPSERT_HEAD = (
    "INSERT INTO audit_head (id, actions, last_id, hash, updated_at) VALUES (1, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET actions = excluded.actions, last_id = excluded.last_id, "
    "hash = excluded.hash, updated_at = excluded.updated_at"
)


def _migrate_audit_chain(conn: sqlite3.Connection) -> None:
    """Migration 2: hash-chain operator_actions, rows from before it included, in id order;
    record the chain head; make the table append-only."""
    conn.execute("ALTER TABLE operator_actions ADD COLUMN prev_hash TEXT")
    conn.execute("ALTER TABLE operator_actions ADD COLUMN hash TEXT")
    conn.execute(_AUDIT_HEAD)
    prev, count, last_id = GENESIS, 0, 0
    rows = conn.execute(f"SELECT {_ACTION_ROW} FROM operator_actions ORDER BY id").fetchall()
    for row in rows:
        digest = action_hash(prev, row)
        conn.execute("UPDATE operator_actions SET prev_hash = ?, hash = ? WHERE id = ?",
                     (prev, digest, row[0]))
        prev, count, last_id = digest, count + 1, row[0]
    conn.execute(_UPSERT_HEAD, (count, last_id, prev, time.time()))
    for statement in _statements(_AUDIT_TRIGGERS):
        conn.execute(statement)
    log.info("audit chain: %d existing operator actions hashed, head %s", count, prev)


def _migrate_integrity(conn: sqlite3.Connection, key: bytes | None = None) -> None:
    """Migration 6: the keyed integrity ledger; every row already stored is sealed (with
    the store's key: :meth:`SqliteStore._migrate` passes it)."""
    if key is None:
        raise StoreError("the integrity ledger migration needs the audit key")
    for statement in _statements(LEDGER_SCHEMA):
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
_UPSERT_SEQ = (
    "INSERT INTO device_seqs (device, seq, device_time, receive_time) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, device_time = excluded.device_time, "
    "receive_time = excluded.receive_time"
)

_READING_COLS = "chair, parameter, value, device_time, receive_time, device, seq, flags"
_INSERT_READING = f"INSERT INTO readings ({_READING_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_ALARM_FIELDS = tuple(f.name for f in fields(Alarm))
_ALARM_COLS = tuple("limit_value" if f == "limit" else f for f in _ALARM_FIELDS)
_EVENT_COLS = ("time", "chair", "alarm_id", "old_state", "new_state", "user", "note", "alarm")
_Ops = tuple[tuple[str, tuple[Any, ...]], ...]  # the statements one record becomes


def _insert(table: str, cols: Sequence[str], upsert: bool = False) -> str:
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    if upsert:  # not INSERT OR REPLACE: that deletes the row alarm_events refer to
        sql += f" ON CONFLICT ({cols[0]}) DO UPDATE SET "
        sql += ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    return sql


def _enc(value: Any) -> Any:
    """A field as a column value: enums by value, dicts and tuples as JSON."""
    if isinstance(value, Enum):
        return value.value
    return json.dumps(value) if isinstance(value, dict | tuple | list) else value


def _make(cls: type, values: dict[str, Any]) -> Any:
    """A record from column values keyed by field name."""
    for name, conv in _TABLES[cls][2].items():
        if values[name] is not None:
            values[name] = conv(values[name])
    return cls(**values)


def _alarm_json(text: str) -> Alarm:
    return _make(Alarm, json.loads(text))


def _cols(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


# record type -> (table, columns in field order, converters from column value to field)
_TABLES: dict[type, tuple[str, tuple[str, ...], dict[str, Callable[[Any], Any]]]] = {
    Alarm: ("alarms", _ALARM_COLS, {"kind": AlarmKind, "priority": Priority, "state": AlarmState}),
    AlarmEvent: ("alarm_events", _EVENT_COLS,
                 {"old_state": AlarmState, "new_state": AlarmState, "alarm": _alarm_json}),
    Session: ("sessions", _cols(Session), {"state": SessionState, "baseline": json.loads,
              "limit_overrides": lambda text: tuple(json.loads(text))}),
    SessionEvent: ("session_events", _cols(SessionEvent),
                   {"kind": SessionEventKind, "data": json.loads}),
    OperatorAction: ("operator_actions", _cols(OperatorAction), {"detail": json.loads}),
}  # fmt: skip
_UPSERT_ALARM = _insert("alarms", _ALARM_COLS, upsert=True)
assert _ALARM_COLS[-1] == "onset_at"  # the column migration 5 added, last
_UPSERT_ALARM_V4 = _insert("alarms", _ALARM_COLS[:-1], upsert=True)
_SQL = {cls: _insert(t, cols, upsert=cls is Session) for cls, (t, cols, _) in _TABLES.items()}
_INSERT_ACTION = _SQL[OperatorAction]  # the writer chains these (see _write_batch)
# what the writer seals per batch (monitor.integrity): appended tables, and rows that change
_APPENDS = {_SQL[AlarmEvent]: "alarm_events", _SQL[SessionEvent]: "session_events",
            _INSERT_ACTION: "operator_actions"}
_UPSERTS = {_UPSERT_ALARM: "alarms", _UPSERT_ALARM_V4: "alarms", _SQL[Session]: "sessions"}
assert _ALARM_COLS[0] == "id" and _cols(Session)[0] == "id"  # the key is params[0]


def _action_params(rec: OperatorAction) -> tuple[Any, ...]:
    """An action's column values exactly as SQLite will give them back (the hash is computed
    from these): time a finite float, text fields str or None. Checked here, on the caller's
    thread, so an action can never fail the writer's batch."""
    t = rec.time
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise TypeError(f"operator action time must be a number, not {type(t).__name__}")
    if not math.isfinite(t):
        raise ValueError(f"operator action time must be finite, not {t!r}")
    text = tuple(None if v is None else str(v) for v in (rec.user, rec.action, rec.chair, rec.target))
    params = (float(t), *text, _enc(rec.detail))
    canonical_json((0, *params)).encode("utf-8")  # raises for what cannot be hashed
    return params


def _record_ops(rec: Record) -> _Ops:
    """SQL statements for one record. Raises TypeError/ValueError for what cannot be stored."""
    if type(rec) not in _TABLES or isinstance(rec, Alarm):
        raise TypeError(f"cannot store a {type(rec).__name__}")
    if isinstance(rec, AlarmEvent):
        if rec.alarm_id != rec.alarm.id:
            raise ValueError(f"alarm event for alarm {rec.alarm_id} carries alarm {rec.alarm.id}")
        alarm = {f: _enc(getattr(rec.alarm, f)) for f in _ALARM_FIELDS}
        event = (*(_enc(getattr(rec, f)) for f in _EVENT_COLS[:-1]), json.dumps(alarm))
        return ((_UPSERT_ALARM, tuple(alarm.values())), (_SQL[AlarmEvent], event))
    if isinstance(rec, OperatorAction):
        return ((_INSERT_ACTION, _action_params(rec)),)
    return ((_SQL[type(rec)], tuple(_enc(getattr(rec, f)) for f in _TABLES[type(rec)][1])),)


def _statements(sql: str) -> Iterator[str]:
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


class Store(Protocol):
    """What the rest of Chairside needs from a durable store (SQLite now, PostgreSQL later).
    See :class:`SqliteStore` for the semantics."""

    @property
    def committed_ticket(self) -> int: ...
    def start(self) -> None: ...
    def close(self, timeout: float = 10.0) -> None: ...
    def add_readings(self, readings: Sequence[Reading]) -> int: ...
    def add_records(self, records: Sequence[Record]) -> int: ...
    def add(self, readings: Sequence[Reading], records: Sequence[Record]) -> int: ...
    def add_commit_listener(self, fn: Callable[[int], None]) -> None: ...
    def wait_durable(self, ticket: int, timeout: float) -> bool: ...
    def flush(self, timeout: float = 5.0) -> bool: ...
    def stats(self) -> dict[str, Any]: ...
    def recent_readings(self, since: float) -> Iterator[RecentSeries]: ...
    def device_seqs(self, recent_rows: int = 50_000) -> dict[str, DeviceSeqs]: ...
    def iter_readings(
        self, chair: str, start: float, end: float | None, batch: int = 5000
    ) -> Iterator[Reading]: ...
    def count_readings(self, chair: str | None = None) -> int: ...
    def open_sessions(self) -> list[Session]: ...
    def get_session(self, id: str) -> Session | None: ...
    def sessions(self, chair: str | None = None, limit: int = 100) -> list[Session]: ...
    def session_events(self, session_id: str) -> list[SessionEvent]: ...
    def open_alarms(self) -> list[Alarm]: ...
    def alarms(self, limit: int = 500) -> list[Alarm]: ...
    def get_alarm(self, id: int) -> Alarm | None: ...
    def alarm_events(
        self, chair: str | None = None, since: float | None = None,
        until: float | None = None, limit: int | None = None,
    ) -> list[AlarmEvent]: ...  # fmt: skip
    def max_alarm_id(self) -> int: ...
    def operator_actions(
        self, chair: str | None = None, since: float | None = None
    ) -> list[OperatorAction]: ...


class SqliteStore:
    """:class:`Store` on one SQLite file in WAL mode; see the module docstring.

    ``commit_interval`` (0.01-1.0 s) is how often the writer commits; ``max_batch`` pending
    rows make it commit sooner. Call :meth:`start` (or use ``with``) for the writer to run.

    While writes fail (a full or failing disk) the writer retries with a backoff up to
    ``MAX_RETRY_S`` and logs the failure once, then every ``FAIL_LOG_EVERY_S``; the readings
    waiting in memory are bounded by ``max_pending_readings``: past it the oldest unwritten
    readings are dropped and counted (``readings_dropped``), never alarm events, sessions or
    operator actions. ``stats()["failing"]`` says what is wrong while it lasts.
    """

    MAX_RETRY_S = 5.0
    FAIL_LOG_EVERY_S = 30.0

    _MAX_IDLE_READERS = 4

    def __init__(
        self, path: str | os.PathLike[str], *, commit_interval: float = 0.2,
        max_batch: int = 50_000, max_pending_readings: int = 1_000_000,
        audit_key_file: str | os.PathLike[str] | None = None, file_mode: int = 0o600,
    ) -> None:  # fmt: skip
        if not 0.01 <= commit_interval <= 1.0:
            raise ValueError(f"commit_interval must be 0.01-1.0 s, not {commit_interval!r}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, not {max_batch!r}")
        self.path = os.fspath(path)
        self._interval, self._max_batch = commit_interval, max_batch
        self._max_pending = max_pending_readings
        self._failing: str | None = None  # what the last failed write said, while failing
        self._fail_logged = 0.0  # time.monotonic() of the last failure logged
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits on this
        self._durable = threading.Condition(self._lock)  # wait_durable waits on this
        self._pending_readings: list[Reading] = []
        self._pending_records: list[_Ops] = []
        self._batch_readings: list[Reading] = []  # swapped out; kept while writes fail
        self._batch_records: list[_Ops] = []
        self._batch_ticket = self._ticket = self._committed = 0
        self._flush_requested = self._stopping = self._closed = False
        self._stop_deadline = 0.0
        self._fail_streak = 0
        self._listeners: list[Callable[[int], None]] = []
        self._stats: dict[str, Any] = dict.fromkeys(
            ("readings_written", "records_written", "batches", "failed_batches", "readings_dropped"), 0
        )
        self._stats["last_commit_seconds"] = 0.0
        self._thread: threading.Thread | None = None
        self._idle_readers: list[sqlite3.Connection] = []
        if file_mode & ~0o640:
            raise ValueError(f"file_mode must be 0600 or 0640, not {file_mode:04o}")
        self._file_mode = file_mode
        self.audit_key_file = default_key_path(self.path) if audit_key_file is None else audit_key_file
        self._conn = self._connect(write=True)
        try:
            try:
                self._key = load_key(self.audit_key_file)
            except OSError as exc:
                raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            self._migrate(self._conn)
            self._sealer = Sealer(self._key) if self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'integrity_ledger'").fetchone() else None
            # False only on a file whose MIGRATIONS stop before 2 (tests simulating an old one)
            self._chained = any(c[1] == "hash" for c in self._conn.execute(
                "PRAGMA table_info(operator_actions)"))
            # False only on files whose MIGRATIONS stop before 5 or 4 (likewise)
            self._onsets = any(c[1] == "onset_at" for c in self._conn.execute(
                "PRAGMA table_info(alarms)"))
            self._keeps_seqs = bool(self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'device_seqs'").fetchone())
        except BaseException:
            self._conn.close()
            raise

    # ---- opening ---------------------------------------------------------------------
    def _connect(self, write: bool) -> sqlite3.Connection:
        path = self.path
        if path == ":memory:" or path.startswith("file:"):
            raise StoreError(f"store needs a file path, not {path!r}")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StoreError(f"cannot open store {path}: directory {directory} does not exist")
        if os.path.isdir(path):
            raise StoreError(f"cannot open store {path}: it is a directory")
        if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"cannot open store {path}: file is not readable and writable")
        conn = None
        try:
            if write:  # a new file is private from its first byte (and its -wal, -shm likewise)
                private_file(path, self._file_mode)
            conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
            if not write:
                conn.execute("PRAGMA query_only=ON")
                return conn
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot open store {path}: journal_mode is {mode}, not wal")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open store {path}: {exc}") from exc
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrations = list(MIGRATIONS)  # looked up at open, so tests can patch the list
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(migrations):
                raise StoreError(
                    f"store {self.path} has schema version {version}, newer than this "
                    f"Chairside knows ({len(migrations)}); refusing to open it"
                )
            for number in range(version + 1, len(migrations) + 1):
                migration = migrations[number - 1]
                if migration is _migrate_integrity:
                    migration(conn, self._key)
                elif callable(migration):
                    migration(conn)
                else:
                    for statement in _statements(migration):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number:d}")
                log.info("store %s: schema migrated to version %d", self.path, number)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open store {self.path}: schema: {exc}") from exc
            raise

    # ---- writing ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (once)."""
        with self._lock:
            if self._closed:
                raise StoreError(f"store {self.path} is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
                self._thread.start()

    def __enter__(self) -> SqliteStore:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def committed_ticket(self) -> int:
        return self._committed

    def _submit(self, readings: Sequence[Reading], records: list[_Ops]) -> int:
        with self._lock:
            if self._stopping:
                raise StoreError(f"store {self.path} is closed")
            if not readings and not records:
                return self._ticket
            before = len(self._pending_readings) + len(self._pending_records)
            self._pending_readings.extend(readings)
            self._pending_records.extend(records)
            self._ticket += 1
            if before <= self._max_batch < before + len(readings) + len(records):
                self._wake.notify()
            return self._ticket

    def add_readings(self, readings: Sequence[Reading]) -> int:
        """Queue readings for the next commit and return their ticket. No I/O here."""
        if not isinstance(readings, list | tuple):
            readings = list(readings)
        for r in readings:
            if not isinstance(r, Reading):
                raise TypeError(f"add_readings takes Reading, not {type(r).__name__}")
        return self._submit(readings, [])

    def add_records(self, records: Sequence[Record]) -> int:
        """Queue records for the next commit and return their ticket. No I/O here; a record
        that cannot be stored raises TypeError or ValueError here."""
        return self._submit((), [_record_ops(r) for r in records])

    def add(self, readings: Sequence[Reading], records: Sequence[Record]) -> int:
        """Readings and the records they caused (alarm events), queued as one: they are
        committed in the same transaction, under one ticket."""
        if not isinstance(readings, list | tuple):
            readings = list(readings)
        for r in readings:
            if not isinstance(r, Reading):
                raise TypeError(f"add takes Reading, not {type(r).__name__}")
        return self._submit(readings, [_record_ops(r) for r in records])

    def add_commit_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(committed_ticket)`` on the writer thread after each commit. ``fn`` must
        be quick and must not wait on this store (flush, wait_durable would wait on itself)."""
        with self._lock:
            self._listeners.append(fn)

    def wait_durable(self, ticket: int, timeout: float) -> bool:
        """True once everything with a ticket <= ``ticket`` is committed."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._committed < ticket:
                remaining = deadline - time.monotonic()
                writer_gone = self._closed and not (self._thread and self._thread.is_alive())
                if remaining <= 0 or writer_gone:
                    return False
                self._durable.wait(remaining)
            return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Commit everything submitted so far, now; True if done within ``timeout``."""
        with self._lock:
            ticket = self._ticket
            self._flush_requested = True
            self._wake.notify()
        return self.wait_durable(ticket, timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            pending = len(self._pending_readings) + len(self._pending_records)
            pending += len(self._batch_readings) + len(self._batch_records)
            alive = bool(self._thread and self._thread.is_alive())
            return {**self._stats, "pending": pending, "ticket": self._ticket,
                    "committed_ticket": self._committed, "writer_alive": alive,
                    "failing": self._failing}  # fmt: skip

    def close(self, timeout: float = 10.0) -> None:
        """Write everything pending (retrying failed writes for up to ``timeout`` s), stop
        the writer and close the connections. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = self._stopping = True
            self._stop_deadline = time.monotonic() + timeout
            thread = self._thread
            self._wake.notify()
        if thread is not None:
            thread.join()
        elif not self._cycle():  # never started: write what is pending here
            log.error("store %s: closed with %d unwritten rows", self.path, self.stats()["pending"])
        with self._lock:
            self._durable.notify_all()
            idle, self._idle_readers = self._idle_readers, []
        for conn in idle:
            conn.close()
        self._conn.close()

    def _due(self) -> bool:
        pending = len(self._pending_readings) + len(self._pending_records)
        return self._stopping or self._flush_requested or pending > self._max_batch

    def _run(self) -> None:
        failed = False
        try:
            while True:
                with self._lock:
                    # after a failure, wait before retrying: longer while it keeps failing
                    wait = min(self.MAX_RETRY_S, self._interval * 2 ** min(self._fail_streak, 10)) \
                        if failed else self._interval
                    deadline = time.monotonic() + wait
                    while (left := deadline - time.monotonic()) > 0 and (failed or not self._due()):
                        self._wake.wait(left)
                    self._flush_requested = False
                    stopping = self._stopping
                try:
                    failed = not self._cycle()
                except Exception:
                    log.exception("store %s: writer error", self.path)
                    failed = True
                if stopping and (pending := self.stats()["pending"]):
                    if time.monotonic() > self._stop_deadline:
                        log.error("store %s: closed with %d rows that could not be written",
                                  self.path, pending)  # fmt: skip
                        return
                elif stopping:
                    return
        finally:
            if not self._stopping:
                log.critical("store %s: writer thread stopped unexpectedly", self.path)

    def _cycle(self) -> bool:
        """Swap pending out and write it after any failed batch; False if the write failed."""
        with self._lock:
            if self._pending_readings or self._pending_records:
                self._batch_readings.extend(self._pending_readings)
                self._batch_records.extend(self._pending_records)
                self._pending_readings, self._pending_records = [], []
                self._batch_ticket = self._ticket
            self._bound_batch()
            readings, records = self._batch_readings, self._batch_records
            ticket = self._batch_ticket
        if not readings and not records:
            return True
        t0 = time.perf_counter()
        try:
            self._write_batch(readings, records)
        except Exception as exc:
            with self._lock:
                self._stats["failed_batches"] += 1
                self._fail_streak += 1
                self._failing = str(exc) or type(exc).__name__
            first, now = self._fail_streak == 1, time.monotonic()
            if first or now - self._fail_logged >= self.FAIL_LOG_EVERY_S:
                self._fail_logged = now
                log.error("store %s: writing %d readings and %d records failed (%d in a row), "
                          "retrying every %.0f s at most: %s", self.path, len(readings), len(records),
                          self._fail_streak, self.MAX_RETRY_S, exc, exc_info=first)  # fmt: skip
            return False
        elapsed = time.perf_counter() - t0
        if self._fail_streak:
            log.warning("store %s: written after %d failures", self.path, self._fail_streak)
        with self._lock:
            self._fail_streak, self._failing = 0, None
            self._batch_readings, self._batch_records = [], []
            self._committed = ticket
            self._stats["readings_written"] += len(readings)
            self._stats["records_written"] += len(records)
            self._stats["batches"] += 1
            self._stats["last_commit_seconds"] = elapsed
            self._durable.notify_all()
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(ticket)
            except Exception:
                log.exception("store %s: commit listener %r failed", self.path, fn)
        return True

    def _bound_batch(self) -> None:
        """(Under the lock.) Keep at most ``max_pending_readings`` unwritten readings: drop
        the oldest, count and log them. Records are never dropped."""
        excess = len(self._batch_readings) - self._max_pending
        if excess > 0:
            del self._batch_readings[:excess]
            self._stats["readings_dropped"] += excess
            log.error("store %s: %d unwritten readings dropped (the oldest; %d in all) to keep at "
                      "most %d in memory while writing fails", self.path, excess,
                      self._stats["readings_dropped"], self._max_pending)

    def _write_batch(self, readings: list[Reading], records: list[_Ops]) -> None:
        """One transaction, rolled back on any error."""
        conn = self._conn
        head: list[Any] | None = None  # [actions, last_id, hash], read once a batch has actions
        sealer, sealed = self._sealer, None
        tops: dict[str, int] = {}  # appended table -> its max id before this batch
        changed: dict[str, list[Any]] = {}  # table -> keys of rows written
        conn.execute("BEGIN IMMEDIATE")
        try:
            if readings:
                if sealer is not None:
                    tops.update(sealer.tops(conn, ("readings",)))
                conn.executemany(_INSERT_READING, readings)
                if self._keeps_seqs:
                    last = {r.device: (r.device, r.seq, r.device_time, r.receive_time)
                            for r in readings if r.seq is not None}
                    conn.executemany(_UPSERT_SEQ, last.values())
            for ops in records:
                for sql, params in ops:
                    if sealer is not None:
                        if (table := _APPENDS.get(sql)) is not None and table not in tops:
                            tops.update(sealer.tops(conn, (table,)))
                        elif (table := _UPSERTS.get(sql)) is not None:
                            changed.setdefault(table, []).append(params[0])
                    if sql is _INSERT_ACTION and self._chained:
                        if head is None:
                            head = self._audit_head(conn)
                        self._append_action(conn, head, params)
                    elif sql is _UPSERT_ALARM and not self._onsets:
                        conn.execute(_UPSERT_ALARM_V4, params[:-1])
                    else:
                        conn.execute(sql, params)
            if head is not None:
                conn.execute(_UPSERT_HEAD, (*head, time.time()))
            if sealer is not None:
                written = {"readings": reading_rows(tops["readings"] + 1, readings)} if readings else None
                sealed = sealer.seal(conn, tops, changed, written=written)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        if head is not None:  # a copy of the head outside the database, for docs/audit.md
            log.info("store %s: audit chain head: %d actions, row %d, hash %s", self.path, *head)
            if sealed is not None:
                log.info("store %s: integrity ledger head: %d entries, entry %d, mac %s",
                         self.path, *sealed)

    def _audit_head(self, conn: sqlite3.Connection) -> list[Any]:
        """The chain head, read inside the write transaction (so a second process writing
        the same file cannot fork the chain). A missing head is logged and rebuilt from the
        table's last row rather than failing the batch: readings must keep being written;
        ``chairside audit verify`` reports the tampering."""
        try:
            row = conn.execute("SELECT actions, last_id, hash FROM audit_head WHERE id = 1").fetchone()
        except sqlite3.OperationalError:  # the table was dropped
            conn.execute(_AUDIT_HEAD)
            row = None
        if row is None:
            log.error("store %s: audit_head is missing; continuing the chain from the last row",
                      self.path)
            n, last = conn.execute(
                "SELECT count(*), coalesce(max(id), 0) FROM operator_actions").fetchone()
            found = conn.execute("SELECT hash FROM operator_actions WHERE id = ?", (last,)).fetchone()
            row = (n, last, found[0] if found and found[0] else GENESIS)
        return [row[0] or 0, row[1] or 0, row[2] or GENESIS]

    @staticmethod
    def _append_action(conn: sqlite3.Connection, head: list[Any], params: tuple[Any, ...]) -> None:
        # after the head's last row, and after any row appended behind the writer's back (a
        # forged row must not make the insert fail; verify reports it)
        top = conn.execute("SELECT coalesce(max(id), 0) FROM operator_actions").fetchone()[0]
        row = (max(head[1], top) + 1, *params)
        digest = action_hash(head[2], row)
        conn.execute(_INSERT_CHAINED, (*row, head[2], digest))
        head[:] = [head[0] + 1, row[0], digest]

    # ---- reading ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection from a small pool, used by one thread at a time (a pool
        rather than one per thread, so servers that start a thread per request don't leak)."""
        with self._lock:
            if self._closed:
                raise StoreError(f"store {self.path} is closed")
            conn = self._idle_readers.pop() if self._idle_readers else None
        if conn is None:
            conn = self._connect(write=False)
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed and len(self._idle_readers) < self._MAX_IDLE_READERS
                if keep:
                    self._idle_readers.append(conn)
            if not keep:
                conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reader() as conn:
            return conn.execute(sql, params).fetchall()

    def recent_readings(self, since: float) -> Iterator[RecentSeries]:
        """Per (chair, parameter): arrays of device_time (float64), value (float64, NaN for
        none) and flags (uint16), sorted by device_time, of readings with device_time >= since.
        """
        with self._reader() as conn:
            chairs: list[str] = []
            row = conn.execute("SELECT min(chair) FROM readings").fetchone()
            while row is not None and row[0] is not None:  # index seeks, not a table scan
                chairs.append(row[0])
                sql = "SELECT chair FROM readings WHERE chair > ? ORDER BY chair LIMIT 1"
                row = conn.execute(sql, (row[0],)).fetchone()
            sql = "SELECT parameter, device_time, value, flags FROM readings "
            sql += "WHERE chair = ? AND device_time >= ? ORDER BY device_time, id"
            for chair in chairs:
                rows = conn.execute(sql, (chair, since)).fetchall()
                if not rows:
                    continue
                params, times, values, flags = zip(*rows, strict=True)
                del rows
                names, which = np.unique(np.array(params, dtype=str), return_inverse=True)
                t = np.array(times, dtype=np.float64)
                v = np.array(values, dtype=np.float64)  # None becomes NaN
                f = np.array(flags, dtype=np.uint16)
                for i, name in enumerate(names):
                    mask = which == i
                    yield chair, str(name), t[mask], v[mask], f[mask]

    def device_seqs(self, recent_rows: int = 50_000) -> dict[str, DeviceSeqs]:
        """Per device: the last seq stored (in arrival order) with its device time, and the
        distinct (seq, device time) pairs among the newest ``recent_rows`` readings, oldest
        first: what a restarted monitor needs to recognise a redelivered message and to see
        a gap in a device's sequence."""
        with self._reader() as conn:
            last = conn.execute("SELECT device, seq, device_time FROM device_seqs").fetchall()
            top = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
            rows = conn.execute(
                "SELECT device, seq, device_time FROM readings WHERE id > ? AND seq IS NOT NULL "
                "ORDER BY id", (top - recent_rows,)).fetchall()
        seen: dict[str, dict[int, float]] = {}
        for device, seq, t in rows:
            pairs = seen.setdefault(device, {})
            pairs.pop(seq, None)  # keep arrival order: a seq seen again moves to the end
            pairs[seq] = t
        return {device: DeviceSeqs(seq, t, tuple(seen.get(device, {}).items()))
                for device, seq, t in last}

    def iter_readings(
        self, chair: str, start: float, end: float | None, batch: int = 5000
    ) -> Iterator[Reading]:
        """A chair's readings with start <= device_time < end (None: no end), streamed in
        device_time order, ``batch`` rows at a time."""
        sql = f"SELECT {_READING_COLS} FROM readings WHERE chair = ? AND device_time >= ?"
        params: list[Any] = [chair, start]
        if end is not None:
            sql += " AND device_time < ?"
            params.append(end)
        with self._reader() as conn:
            cur = conn.execute(sql + " ORDER BY device_time, id", params)
            try:
                while rows := cur.fetchmany(batch):
                    yield from map(Reading._make, rows)
            finally:
                cur.close()

    def count_readings(self, chair: str | None = None) -> int:
        if chair is None:
            return self._query("SELECT count(*) FROM readings")[0][0]
        return self._query("SELECT count(*) FROM readings WHERE chair = ?", (chair,))[0][0]

    def _records(
        self, cls: type, where: str = "", params: Sequence[Any] = (), order: str = "time, id"
    ) -> list[Any]:
        table, cols, _ = _TABLES[cls]
        names = _ALARM_FIELDS if cls is Alarm else cols
        if cls is Alarm and not self._onsets:  # a file before migration 5 (tests of old files)
            cols = (*cols[:-1], "NULL")
        sql = f"SELECT {', '.join(cols)} FROM {table} {where} ORDER BY {order}"
        return [_make(cls, dict(zip(names, row, strict=True))) for row in self._query(sql, params)]

    @staticmethod
    def _where(
        chair: str | None, since: float | None = None, until: float | None = None
    ) -> tuple[str, list[Any]]:
        terms, params = [], []
        for term, value in (("chair = ?", chair), ("time >= ?", since), ("time < ?", until)):
            if value is not None:
                terms.append(term)
                params.append(value)
        return ("WHERE " + " AND ".join(terms) if terms else ""), params

    def open_sessions(self) -> list[Session]:
        return self._records(Session, "WHERE state != 'ended'", (), "started_at, rowid")

    def get_session(self, id: str) -> Session | None:
        found = self._records(Session, "WHERE id = ?", (id,), "rowid")
        return found[0] if found else None

    def sessions(self, chair: str | None = None, limit: int = 100) -> list[Session]:
        """Newest (by started_at) first."""
        where, params = self._where(chair)
        return self._records(
            Session, where, [*params, limit], "started_at DESC, rowid DESC LIMIT ?"
        )

    def session_events(self, session_id: str) -> list[SessionEvent]:
        return self._records(SessionEvent, "WHERE session_id = ?", (session_id,))

    def open_alarms(self) -> list[Alarm]:
        return self._records(Alarm, "WHERE state != 'cleared'", (), "id")

    def alarms(self, limit: int = 500) -> list[Alarm]:
        """The newest ``limit`` alarms in any state, each as it stands now, oldest first."""
        found = self._records(Alarm, "WHERE id > coalesce((SELECT max(id) FROM alarms), 0) - ?",
                              (limit,), "id")
        return found[-limit:]

    def get_alarm(self, id: int) -> Alarm | None:
        found = self._records(Alarm, "WHERE id = ?", (id,), "id")
        return found[0] if found else None

    def max_alarm_id(self) -> int:
        return self._query("SELECT coalesce(max(id), 0) FROM alarms")[0][0]

    def alarm_events(
        self, chair: str | None = None, since: float | None = None,
        until: float | None = None, limit: int | None = None,
    ) -> list[AlarmEvent]:  # fmt: skip
        """Events with since <= time < until, in time order; with ``limit``, the latest
        ``limit`` of them (still in time order)."""
        where, params = self._where(chair, since, until)
        if limit is not None:
            where = f"WHERE id IN (SELECT id FROM alarm_events {where} "
            where += "ORDER BY time DESC, id DESC LIMIT ?)"
            params.append(limit)
        return self._records(AlarmEvent, where, params)

    def operator_actions(
        self, chair: str | None = None, since: float | None = None
    ) -> list[OperatorAction]:
        """Actions with time >= since, in time order."""
        return self._records(OperatorAction, *self._where(chair, since))
