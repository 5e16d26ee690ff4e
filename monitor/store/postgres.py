"""The PostgreSQL store: :class:`PostgresStore` keeps one bay in its own schema
(``bay_<id>``) of a shared database, the site's bays and accounts in ``chairside_site``.
Opening it creates both schemas when missing (the application role needs CREATE on the
database, nothing more: docs/deploy-postgresql.md), migrates them (:mod:`monitor.store.schema`,
the same migrations as SQLite), registers the bay, and creates the monthly partitions of
the readings table ahead of time (again every hour, from the writer thread). Readings go in
by COPY; each commit that carries alarm events or session changes sends ``NOTIFY
chairside_site, '<bay>'`` for the site view. The rest is :class:`DatabaseStore`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Callable

from monitor.store.base import DatabaseStore
from monitor.store.db import SITE_SCHEMA, Db, DbError, PgDatabase, PgDb
from monitor.store.protocol import StoreError
from monitor.store.queries import StoreQueries
from monitor.store.retention import Pruned, prune_rows
from monitor.store.schema import SITE_MIGRATIONS, migrate

__all__ = ["BayReader", "PostgresStore", "month_bounds", "partition_month", "partition_name"]

log = logging.getLogger("monitor.store")


def month_bounds(year: int, month: int) -> tuple[float, float]:
    """The month as [start, end) in Unix seconds (UTC)."""
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
    return start.timestamp(), end.timestamp()


def partition_name(year: int, month: int) -> str:
    return f"readings_{year:04d}_{month:02d}"


_PARTITION = re.compile(r"^readings_(\d{4})_(\d{2})$")


def partition_month(name: str) -> tuple[int, int] | None:
    """``readings_2025_03`` -> (2025, 3); None for any other name (the default partition)."""
    m = _PARTITION.match(name)
    return (int(m[1]), int(m[2])) if m and 1 <= int(m[2]) <= 12 else None


class PostgresStore(DatabaseStore):
    """:class:`Store` on a bay's schema in PostgreSQL; see :mod:`monitor.store.postgres`.
    ``url``: a libpq URL; the password from ``password_file`` or as libpq finds it."""

    PARTITIONS_AHEAD = 2  # months created ahead of the current one
    LOCK_TIMEOUT_MS = 2000  # retention's wait for the lock that detaches a partition
    SURVEY_IDS = 250_000  # ids of a partition to be dropped counted per retention step
    MAINTAIN_EVERY_S = 3600.0

    def __init__(
        self, url: str | PgDatabase, *, bay: str, audit_key_file: str | os.PathLike[str],
        password_file: str | os.PathLike[str] | None = None, bay_name: str = "", bay_url: str = "",
        commit_interval: float = 0.2, max_batch: int = 50_000, max_pending_readings: int = 1_000_000,
        retention_days: float | None = None, prune_interval_s: float | None = 60.0,
        now: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        database = url if isinstance(url, PgDatabase) else \
            PgDatabase(url, bay=bay, password_file=password_file)
        self._prepare(database, bay, bay_name or bay, bay_url)
        self._open(database, audit_key_file, commit_interval=commit_interval, max_batch=max_batch,
                   max_pending_readings=max_pending_readings, retention_days=retention_days,
                   prune_interval_s=prune_interval_s, now=now)
        try:
            assert self._conn is not None
            self.ensure_partitions(self._conn)
        except BaseException:
            self._conn.close() if self._conn is not None else None
            database.close()
            raise
        self._maintained = time.monotonic()
        self._survey: _Survey | None = None  # the partition retention is about to drop

    @staticmethod
    def _prepare(database: PgDatabase, bay: str, name: str, url: str) -> None:
        """The site schema (created, migrated), the bay's schema (created) and its row in
        ``chairside_site.bays``; one process at a time (an advisory lock)."""
        db = database.connect(schema=SITE_SCHEMA)
        try:
            db.begin()
            db.execute("SELECT pg_advisory_xact_lock(hashtext('chairside_site'))")
            db.execute(f"CREATE SCHEMA IF NOT EXISTS {SITE_SCHEMA}")
            db.commit()
            migrate(db, f"{database.name.rsplit(' (', 1)[0]} (schema {SITE_SCHEMA})", b"",
                    SITE_MIGRATIONS)
            db.begin()
            db.execute("SELECT pg_advisory_xact_lock(hashtext('chairside_site'))")
            owner = db.execute("SELECT id FROM bays WHERE schema_name = ?", (database.schema,)).fetchone()
            if owner is not None and owner[0] != bay:
                raise StoreError(f"bay {bay!r} would share the schema {database.schema} with bay "
                                 f"{owner[0]!r} in {database.name}: give one of them another id")
            db.execute(f"CREATE SCHEMA IF NOT EXISTS {database.schema}")
            db.execute("INSERT INTO bays (id, name, schema_name, url, updated_at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, "
                       "updated_at = excluded.updated_at", (bay, name, database.schema, url, time.time()))
            db.commit()
        except DbError as exc:
            raise StoreError(f"cannot open store {database.name}: {exc.reason}") from exc
        finally:
            db.rollback()
            db.close()

    def ensure_partitions(self, db: PgDb, now: float | None = None) -> list[str]:
        """Create this month's partition of readings and the next ``PARTITIONS_AHEAD``
        months' (the ones missing); returns the names created."""
        today = dt.datetime.fromtimestamp(self._now() if now is None else now, dt.UTC)
        have = db.tables()
        made = []
        for k in range(self.PARTITIONS_AHEAD + 1):
            year, month = today.year + (today.month - 1 + k) // 12, (today.month - 1 + k) % 12 + 1
            name = partition_name(year, month)
            if name in have:
                continue
            lo, hi = month_bounds(year, month)
            db.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF readings "
                       f"FOR VALUES FROM ({lo!r}) TO ({hi!r})")
            made.append(name)
        if made:
            log.info("store %s: readings partitions created: %s", self.path, ", ".join(made))
        return made

    def _maintain(self) -> None:
        if time.monotonic() - self._maintained >= self.MAINTAIN_EVERY_S:
            self._maintained = time.monotonic()
            try:
                self.ensure_partitions(self._writer_db())
            except DbError as exc:
                log.error("store %s: cannot create the next readings partitions: %s", self.path,
                          exc.reason)
        super()._maintain()

    def _prune_readings(self, db: Db, before: float, now: float) -> Pruned | None:
        """Retention's step (:mod:`monitor.store.retention`): drop the oldest due monthly
        partition; when none is due, delete a batch of old rows from the default partition."""
        return self.drop_partition(db, before, now) or \
            prune_rows(db, "readings_default", before, self.PRUNE_BATCH)

    def drop_partition(self, db: Db, before: float, now: float) -> Pruned | None:
        """Detach and drop the oldest monthly partition of readings whose upper bound is at
        or before ``before`` (never the default partition, never ``now``'s month); None if
        none is due, or while its ids are still being counted. In the caller's transaction.

        Before the drop, the partition's ids are surveyed (the exact runs the ledger records
        as pruned) ``SURVEY_IDS`` ids a call, so that a month of many millions of readings
        holds the writer for a bounded time per step, like SQLite's deletes; the survey goes
        on at the next step (``_more_due``) and the partition is dropped once it is done."""
        today = dt.datetime.fromtimestamp(now, dt.UTC)
        due = []
        for oid, name in db.execute(
                "SELECT c.oid, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
                "WHERE p.relname = 'readings' AND n.nspname = current_schema()").fetchall():
            month = partition_month(name)
            if month is not None and month != (today.year, today.month) \
                    and month_bounds(*month)[1] <= before:
                due.append((month, oid, name))
        if not due:
            self._survey = None
            return None
        _, oid, name = min(due)
        survey = self._survey
        if survey is None or survey.name != name or survey.oid != oid:
            survey = self._survey = _Survey(db, oid, name)
        if not survey.step(db, self.SURVEY_IDS):
            self._more_due = True
            return None
        # detaching locks the whole readings table: rather than wait behind a long read (an
        # export) with every later query queued behind us, give up and try again next time
        db.execute(f"SET LOCAL lock_timeout = '{self.LOCK_TIMEOUT_MS}ms'")
        db.execute(f"ALTER TABLE readings DETACH PARTITION {name}")
        db.execute(f"DROP TABLE {name}")
        self._survey = None
        log.info("store %s: retention dropped the readings partition %s (%d readings)", db.name,
                 name, survey.count)
        return Pruned("readings", survey.count, tuple(survey.runs), before, partition=name,
                      behind=len(due) > 1)


class _Survey:
    """The ids of a partition about to be dropped, counted a slice at a time: its row count
    and its ids as runs (what the ledger records as pruned). Ids grow with arrival, so a
    month's are one run but for the few of the month before or after interleaved at its
    edges (found through the other partitions' id indexes); only a slice with ids missing as
    well (deleted before) has its exact runs computed."""

    def __init__(self, db: Db, oid: int, name: str) -> None:
        self.oid, self.name = oid, name
        self.lo, self.hi = db.execute(f"SELECT min(id), max(id) FROM {name}").fetchone()
        self.next = self.lo
        self.count = 0
        self.runs: list[tuple[int, int]] = []

    def step(self, db: Db, ids: int) -> bool:
        """Survey up to ``ids`` more ids; True once the whole partition is surveyed."""
        if self.lo is None or self.next > self.hi:  # empty, or surveyed already
            return True
        a = self.next
        b = min(self.hi, a + ids - 1)
        (n,) = db.execute(f"SELECT count(*) FROM {self.name} WHERE id BETWEEN ? AND ?", (a, b)).fetchone()
        others = [r[0] for r in db.execute(
            "SELECT id FROM readings WHERE id BETWEEN ? AND ? AND tableoid <> CAST(? AS oid) ORDER BY id",
            (a, b, self.oid))]
        if n + len(others) == b - a + 1:
            runs, start = [], a
            for other in others:
                if other > start:
                    runs.append((start, other - 1))
                start = other + 1
            if start <= b:
                runs.append((start, b))
        else:
            runs = [(x, y) for x, y in db.execute(
                f"SELECT min(id), max(id) FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS g "
                f"FROM {self.name} WHERE id BETWEEN ? AND ?) s GROUP BY g ORDER BY 1", (a, b))]
        for x, y in runs:  # joined to the last run when they touch
            if self.runs and x == self.runs[-1][1] + 1:
                self.runs[-1] = (self.runs[-1][0], y)
            else:
                self.runs.append((x, y))
        self.count += n
        self.next = b + 1
        return self.next > self.hi


class BayReader(StoreQueries):
    """Another bay's records, read only (the site view): the read side of the store on a
    bay's schema, with no writer, no migration and no registration."""

    def __init__(self, database: PgDatabase) -> None:
        self.database, self.path = database, database.name
        self._lock = threading.Lock()
        self._closed = False
        self._onsets = True

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.database.close()
