"""The durable store: readings and records in one SQLite file, written by one thread.

Modules (each one responsibility; the public names are re-exported here)::

    protocol   Store (the Protocol callers type against), Record, DeviceSeqs, StoreError
    schema     the SQL of each version, MIGRATIONS, migrate()
    rows       row mapping: records <-> SQL parameters and columns
    writer     BatchWriter: queue, tickets, the writer thread, one transaction a batch
    queries    StoreQueries: the read-only connection pool and every query
    retention  readings older than retention_days pruned in bounded steps on the writer thread,
               each run in the integrity ledger and the audit trail (sessions, alarms, events
               and actions are never pruned)
    sqlite     SqliteStore = BatchWriter + StoreQueries on one opened, migrated file

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

Schema (version in ``PRAGMA user_version``; the migrations of :mod:`monitor.store.schema`
applied in order at open)::

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

A PostgreSQL backend would implement :class:`Store` (:mod:`monitor.store.protocol`) with the
same semantics; the core, the exports and the API type against it, not :class:`SqliteStore`.
"""

import os
from typing import Any

from monitor.store.base import DatabaseStore
from monitor.store.db import Database, PgDatabase, SqliteDatabase
from monitor.store.protocol import DeviceSeqs, RecentSeries, Record, Store, StoreError
from monitor.store.schema import MIGRATIONS, Migration
from monitor.store.sqlite import SqliteStore

__all__ = ["MIGRATIONS", "DatabaseStore", "DeviceSeqs", "Migration", "RecentSeries", "Record",
           "SqliteStore", "Store", "StoreError", "open_store"]


def open_store(database: Database, audit_key_file: str | os.PathLike[str] | None = None,
               **options: Any) -> DatabaseStore:
    """The store on ``database``: SQLite or PostgreSQL (see :mod:`monitor.store.postgres`)."""
    if isinstance(database, PgDatabase):
        from monitor.store.postgres import PostgresStore

        if audit_key_file is None:
            raise StoreError(f"{database.name}: a PostgreSQL store needs [store] audit_key_file")
        return PostgresStore(database, bay=database.bay, audit_key_file=audit_key_file, **options)
    assert isinstance(database, SqliteDatabase)
    return SqliteStore(database.path, audit_key_file=audit_key_file, file_mode=database.file_mode,
                       **options)
