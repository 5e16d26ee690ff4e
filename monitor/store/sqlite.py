"""The SQLite store: :class:`SqliteStore` opens one file (private mode, WAL,
``synchronous=FULL``, schema migrated, ledger key loaded) and is the :class:`Store` made of
the batching writer (:mod:`monitor.store.writer`) and the queries
(:mod:`monitor.store.queries`). The design is drawn in :mod:`monitor.store`'s docstring.
"""

from __future__ import annotations

import os
import sqlite3

from monitor.integrity import Sealer, default_key_path, load_key, private_file
from monitor.store.protocol import StoreError
from monitor.store.queries import StoreQueries
from monitor.store.schema import migrate
from monitor.store.writer import BatchWriter

__all__ = ["SqliteStore"]


class SqliteStore(BatchWriter, StoreQueries):
    """:class:`Store` on one SQLite file in WAL mode; see :mod:`monitor.store`.

    ``commit_interval`` (0.01-1.0 s) is how often the writer commits; ``max_batch`` pending
    rows make it commit sooner. Call :meth:`start` (or use ``with``) for the writer to run.

    While writes fail (a full or failing disk) the writer retries with a backoff up to
    ``MAX_RETRY_S`` and logs the failure once, then every ``FAIL_LOG_EVERY_S``; the readings
    waiting in memory are bounded by ``max_pending_readings``: past it the oldest unwritten
    readings are dropped and counted (``readings_dropped``), never alarm events, sessions or
    operator actions. ``stats()["failing"]`` says what is wrong while it lasts.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, commit_interval: float = 0.2,
        max_batch: int = 50_000, max_pending_readings: int = 1_000_000,
        audit_key_file: str | os.PathLike[str] | None = None, file_mode: int = 0o600,
    ) -> None:  # fmt: skip
        self._init_writer(commit_interval, max_batch, max_pending_readings)
        self.path = os.fspath(path)
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
        migrate(conn, self.path, self._key)

    def __enter__(self) -> SqliteStore:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
