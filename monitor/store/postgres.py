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
import threading
import time

from monitor.store.base import DatabaseStore
from monitor.store.db import SITE_SCHEMA, DbError, PgDatabase, PgDb
from monitor.store.protocol import StoreError
from monitor.store.queries import StoreQueries
from monitor.store.schema import SITE_MIGRATIONS, migrate

__all__ = ["BayReader", "PostgresStore", "month_bounds", "partition_name"]

log = logging.getLogger("monitor.store")


def month_bounds(year: int, month: int) -> tuple[float, float]:
    """The month as [start, end) in Unix seconds (UTC)."""
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
    return start.timestamp(), end.timestamp()


def partition_name(year: int, month: int) -> str:
    return f"readings_{year:04d}_{month:02d}"


class PostgresStore(DatabaseStore):
    """:class:`Store` on a bay's schema in PostgreSQL; see :mod:`monitor.store.postgres`.
    ``url``: a libpq URL; the password from ``password_file`` or as libpq finds it."""

    PARTITIONS_AHEAD = 2  # months created ahead of the current one
    MAINTAIN_EVERY_S = 3600.0

    def __init__(
        self, url: str | PgDatabase, *, bay: str, audit_key_file: str | os.PathLike[str],
        password_file: str | os.PathLike[str] | None = None, bay_name: str = "", bay_url: str = "",
        commit_interval: float = 0.2, max_batch: int = 50_000, max_pending_readings: int = 1_000_000,
    ) -> None:  # fmt: skip
        database = url if isinstance(url, PgDatabase) else \
            PgDatabase(url, bay=bay, password_file=password_file)
        self._prepare(database, bay, bay_name or bay, bay_url)
        self._open(database, audit_key_file, commit_interval=commit_interval, max_batch=max_batch,
                   max_pending_readings=max_pending_readings)
        try:
            assert self._conn is not None
            self.ensure_partitions(self._conn)
        except BaseException:
            self._conn.close() if self._conn is not None else None
            database.close()
            raise
        self._maintained = time.monotonic()

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
        today = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
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
        if time.monotonic() - self._maintained < self.MAINTAIN_EVERY_S:
            return
        self._maintained = time.monotonic()
        try:
            self.ensure_partitions(self._writer_db())
        except DbError as exc:
            log.error("store %s: cannot create the next readings partitions: %s", self.path, exc.reason)


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
