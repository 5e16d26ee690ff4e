"""One small database interface over SQLite and PostgreSQL, so that the store, the accounts,
the login sessions and the audit checks are written once for both backends.

A :class:`Database` is where the data lives (a SQLite file, or a PostgreSQL database and the
bay's schema in it); :meth:`Database.connect` gives a :class:`Db`, a connection with the few
operations Chairside uses. SQL is written once, in SQLite's dialect with ``?`` placeholders;
:class:`PgDb` translates it for PostgreSQL (``%s`` placeholders, the reserved column name
``user`` quoted) and cached per statement. What differs beyond that (types in DDL, the
append-only triggers, bulk loading, table listings, the schema version) is a method here
or a per-dialect entry of the migrations (:mod:`monitor.store.schema`).

Driver errors become :class:`DbError` (and :class:`DbIntegrityError` for a violated
constraint) naming the database, so callers catch one family whatever the backend.

PostgreSQL layout: one schema per bay (``bay_<id>``: everything of one bay, invisible to
another bay's screen and API) and one shared schema (``chairside_site``: the bays, site-wide
accounts and their per-bay roles). A bay's connections have ``search_path = bay_<id>``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from monitor.integrity import private_file
from monitor.store.protocol import StoreError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["SITE_CHANNEL", "SITE_SCHEMA", "WRITES_LOCK_CLASS", "Cursor", "Database", "Db", "DbError",
           "DbIntegrityError", "PgDatabase", "PgDb", "SqliteDatabase", "SqliteDb", "as_database",
           "bay_schema", "pg_sql", "redact"]

log = logging.getLogger("monitor.store")

SITE_SCHEMA = "chairside_site"
#: The first key of the two-key advisory lock a bay's writer takes in each batch ("CHSW").
WRITES_LOCK_CLASS = 0x43485357
#: NOTIFY channel: a bay's writer sends its id on it with each commit of alarms or sessions
SITE_CHANNEL = "chairside_site"


class DbError(StoreError):
    """A database statement or connection failed; the message names the database,
    ``reason`` is what the database said."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.reason = reason


class DbIntegrityError(DbError):
    """A statement violated a constraint (a duplicate key, say)."""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int) -> list[Any]: ...
    def close(self) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...


def bay_schema(bay: str) -> str:
    """The PostgreSQL schema of a bay: ``bay_`` + its id, lower case, ``-`` as ``_``."""
    return "bay_" + bay.lower().replace("-", "_")


def redact(url: str) -> str:
    """A libpq URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Db:
    """A connection: SQL in SQLite's dialect, explicit transactions (no implicit BEGIN)."""

    dialect: str
    name: str  # the database, for messages

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def script(self, sql: str) -> None:
        """Run DDL, several statements, as it is (no placeholders)."""
        raise NotImplementedError

    def lock_bay_writes(self, bay: str) -> None:
        """(In a write transaction.) One writer of the bay at a time, until the transaction
        ends: two servers of one bay (a leader stepping down, the standby taking over) never
        interleave their batches. SQLite's BEGIN IMMEDIATE does it already."""

    def begin(self) -> None:
        """Start a write transaction (SQLite: take the write lock now)."""
        raise NotImplementedError

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction, if any; never raises."""
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def tables(self) -> set[str]:
        raise NotImplementedError

    def columns(self, table: str) -> set[str]:
        raise NotImplementedError

    def triggers(self) -> set[str]:
        raise NotImplementedError

    @property
    def broken(self) -> bool:
        """The connection is lost (a PostgreSQL server restarted): open another."""
        return False

    def version(self) -> int:
        """The schema version (0: a new database)."""
        raise NotImplementedError

    def set_version(self, version: int) -> None:
        raise NotImplementedError

    def insert_readings(self, rows: Sequence[Sequence[Any]]) -> None:
        """Readings as (id, chair, parameter, value, device_time, receive_time, device, seq,
        flags) by the backend's bulk path."""
        self.executemany("INSERT INTO readings (id, chair, parameter, value, device_time, "
                         "receive_time, device, seq, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        raise NotImplementedError

    def _error(self, exc: Exception) -> DbError:
        return DbError(self.name, str(exc))

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SqliteDb(Db):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn, self.name = conn, name

    def _error(self, exc: Exception) -> DbError:
        cls = DbIntegrityError if isinstance(exc, sqlite3.IntegrityError) else DbError
        return cls(self.name, str(exc))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def script(self, sql: str) -> None:
        from monitor.store.schema import split_statements

        for statement in split_statements(sql):
            self.execute(statement)

    def begin(self) -> None:
        self.execute("BEGIN IMMEDIATE")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def tables(self) -> set[str]:
        return {n for (n,) in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.execute(f"PRAGMA table_info({table})")}

    def triggers(self) -> set[str]:
        return {n for (n,) in self.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}

    def version(self) -> int:
        return int(self.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version = {int(version):d}")

    def close(self) -> None:
        self.conn.close()


_USER = re.compile(r"""(?<![\w"'])user(?![\w"'])""")


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """A statement in SQLite's dialect as PostgreSQL takes it: ``?`` -> ``%s`` (a literal
    ``%`` doubled), the column ``user`` (a reserved word there) quoted."""
    return _USER.sub('"user"', sql.replace("%", "%%").replace("?", "%s"))


class PgDb(Db):
    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], name: str, schema: str) -> None:
        self.conn, self.name, self.schema = conn, name, schema

    def _error(self, exc: Exception) -> DbError:
        import psycopg

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.IntegrityError):
            return DbIntegrityError(self.name, reason)
        if isinstance(exc, psycopg.OperationalError) and self.broken:  # the server went away
            return DbError(self.name, f"database unreachable ({reason})")
        return DbError(self.name, reason)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        import psycopg

        try:
            return self.conn.execute(pg_sql(sql), params or None)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        import psycopg

        try:
            with self.conn.cursor() as cur:
                cur.executemany(pg_sql(sql), rows)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def script(self, sql: str) -> None:
        import psycopg

        try:
            self.conn.execute(sql.encode())  # bytes: sent as is, several statements allowed
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def begin(self) -> None:
        self.execute("BEGIN")

    def lock_bay_writes(self, bay: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (WRITES_LOCK_CLASS, bay))

    def rollback(self) -> None:
        import psycopg

        if not self.conn.closed:
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.conn.info.transaction_status != TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self.conn.closed or self.conn.broken

    def tables(self) -> set[str]:
        return {n for (n,) in self.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = ? UNION "
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND c.relkind = 'p'", (self.schema, self.schema))}

    def columns(self, table: str) -> set[str]:
        return {n for (n,) in self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ?", (self.schema, table))}

    def triggers(self) -> set[str]:
        return {n for (n,) in self.execute(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN "
            "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND NOT t.tgisinternal",
            (self.schema,))}

    def version(self) -> int:
        if "schema_version" not in self.tables():
            return 0
        row = self.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def set_version(self, version: int) -> None:
        self.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        self.execute("DELETE FROM schema_version")
        self.execute("INSERT INTO schema_version (version) VALUES (?)", (int(version),))

    def insert_readings(self, rows: Sequence[Sequence[Any]]) -> None:
        """COPY: PostgreSQL's bulk path, one round trip for the batch."""
        import psycopg

        try:
            with self.conn.cursor() as cur, cur.copy(
                    "COPY readings (id, chair, parameter, value, device_time, receive_time, device, "
                    "seq, flags) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def notify(self, channel: str, payload: str) -> None:
        """Queue a notification, sent when the transaction commits."""
        self.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def close(self) -> None:
        self.conn.close()


class Database:
    """Where a bay's data lives; :meth:`connect` opens a connection to it, :meth:`reader` lends
    a pooled one for a read."""

    dialect: str
    name: str
    bay: str

    def connect(self, read_only: bool = False) -> Db:
        raise NotImplementedError

    @contextlib.contextmanager
    def reader(self) -> Iterator[Db]:
        db = self.connect()
        try:
            yield db
        finally:
            db.close()

    def close(self) -> None:
        """Close pooled connections (a later use opens new ones)."""


class SqliteDatabase(Database):
    """A bay's SQLite file: WAL, ``synchronous=FULL``, foreign keys on; created private
    (``file_mode``) from its first byte."""

    dialect = "sqlite"
    _MAX_IDLE_READERS = 4

    def __init__(self, path: str | os.PathLike[str], *, file_mode: int = 0o600, bay: str = "") -> None:
        self.path = os.fspath(path)
        self.name, self.bay, self.file_mode = self.path, bay, file_mode
        self._idle: list[SqliteDb] = []
        self._lock = threading.Lock()

    def connect(self, read_only: bool = False) -> SqliteDb:
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
            if not read_only:  # a new file is private from its first byte (its -wal, -shm likewise)
                private_file(path, self.file_mode)
            if read_only:  # (works for an account that may only read the file)
                conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=5.0,
                                       isolation_level=None, check_same_thread=False)
                return SqliteDb(conn, path)
            conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot open store {path}: journal_mode is {mode}, not wal")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            return SqliteDb(conn, path)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open store {path}: {exc}") from exc
            raise

    @contextlib.contextmanager
    def reader(self) -> Iterator[Db]:
        """A read-only connection from a small pool, used by one thread at a time (a pool
        rather than one per thread, so servers that start a thread per request don't leak)."""
        with self._lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = self.connect(read_only=True)
        try:
            yield db
        finally:
            with self._lock:
                keep = len(self._idle) < self._MAX_IDLE_READERS
                if keep:
                    self._idle.append(db)
            if not keep:
                db.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()


def as_database(where: str | os.PathLike[str] | Database) -> Database:
    """A :class:`Database`, or a SQLite file's path as one."""
    return where if isinstance(where, Database) else SqliteDatabase(where)


class PgDatabase(Database):
    """A bay's schema in a PostgreSQL database: ``url`` is a libpq URL (TLS settings such as
    ``sslmode`` and ``sslrootcert`` pass through to libpq), the password from
    ``password_file`` (or the URL, ``PGPASSWORD``, ``~/.pgpass`` as libpq finds it).
    Readers share a psycopg_pool pool; the writer and the listeners open their own."""

    dialect = "postgresql"
    CONNECT_TIMEOUT_S = 3

    def __init__(self, url: str, *, bay: str, password_file: str | os.PathLike[str] | None = None,
                 schema: str | None = None, pool_size: int = 4) -> None:
        self.url, self.bay = url, bay
        self.schema = schema or bay_schema(bay)
        self.name = f"{redact(url)} (schema {self.schema})"
        self._password = None
        if password_file is not None:
            try:
                self._password = Path(password_file).read_text("utf-8").strip()
            except OSError as exc:
                raise StoreError(f"cannot read the database password file {password_file}: "
                                 f"{exc.strerror or exc}") from None
        self._pool_size = pool_size
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()

    def for_bay(self, bay: str, schema: str | None = None) -> PgDatabase:
        """Another bay's schema in the same database, with the same credentials."""
        other = PgDatabase(self.url, bay=bay, schema=schema, pool_size=2)
        other._password = self._password
        return other

    def _kwargs(self, schema: str, read_only: bool = False) -> dict[str, Any]:
        options = f"-c search_path={schema},{SITE_SCHEMA}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": self.CONNECT_TIMEOUT_S,
                                  "options": options,
                                  "application_name": f"chairside {self.bay}"[:63]}
        if self._password is not None:
            kwargs["password"] = self._password
        return kwargs

    def connect(self, read_only: bool = False, schema: str | None = None, **libpq: Any) -> PgDb:
        """A connection to the bay's schema (``search_path``: it, then the site schema), or
        to ``schema``; ``libpq``: more connection settings (keepalives, say)."""
        import psycopg

        schema = schema or self.schema
        try:
            conn = psycopg.connect(self.url, **self._kwargs(schema, read_only), **libpq)
        except psycopg.Error as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DbError(self.name, f"database unreachable ({reason})") from exc
        return PgDb(conn, self.name, schema)

    def _get_pool(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(self.url, min_size=0, max_size=self._pool_size,
                                            kwargs=self._kwargs(self.schema), open=True,
                                            check=ConnectionPool.check_connection,  # after a restart
                                            timeout=self.CONNECT_TIMEOUT_S * 2,
                                            name=f"chairside-{self.bay}")
            return self._pool

    @contextlib.contextmanager
    def reader(self) -> Iterator[Db]:
        from psycopg_pool import PoolTimeout

        try:
            with self._get_pool().connection() as conn:
                yield PgDb(conn, self.name, self.schema)
        except PoolTimeout as exc:  # no connection within the pool's timeout: the server is away
            raise DbError(self.name, f"database unreachable ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
