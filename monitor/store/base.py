"""What both backends share once their database is reachable: :class:`DatabaseStore` is the
:class:`~monitor.store.protocol.Store` made of the batching writer
(:mod:`monitor.store.writer`) and the queries (:mod:`monitor.store.queries`) over a
:class:`~monitor.store.db.Database`; it loads the ledger key, migrates the schema and reads
which migrations the database has. :class:`~monitor.store.sqlite.SqliteStore` and
:class:`~monitor.store.postgres.PostgresStore` open their database and hand it here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from monitor.integrity import Sealer, load_key
from monitor.store.db import Database, Db
from monitor.store.protocol import StoreError
from monitor.store.queries import StoreQueries
from monitor.store.schema import migrate
from monitor.store.writer import BatchWriter

__all__ = ["DatabaseStore"]


class DatabaseStore(BatchWriter, StoreQueries):
    """:class:`Store` on an opened :class:`Database`: see :mod:`monitor.store`.

    ``commit_interval`` (0.01-1.0 s) is how often the writer commits; ``max_batch`` pending
    rows make it commit sooner. Call :meth:`start` (or use ``with``) for the writer to run.

    While writes fail (a full or failing disk, a database out of reach) the writer retries
    with a backoff up to ``MAX_RETRY_S`` and logs the failure once, then every
    ``FAIL_LOG_EVERY_S``; the readings waiting in memory are bounded by
    ``max_pending_readings``: past it the oldest unwritten readings are dropped and counted
    (``readings_dropped``), never alarm events, sessions or operator actions.
    ``stats()["failing"]`` says what is wrong while it lasts.

    ``retention_days`` (None: keep every reading) prunes older readings from the writer
    thread, a bounded step every ``prune_interval_s`` (None: only when :meth:`prune_once` is
    called), aged by the clock ``now``: see :mod:`monitor.store.retention`.
    """

    def _open(self, database: Database, audit_key_file: str | os.PathLike[str], *,
              commit_interval: float, max_batch: int, max_pending_readings: int,
              retention_days: float | None = None, prune_interval_s: float | None = 60.0,
              now: Callable[[], float] = time.time) -> None:
        self._init_writer(commit_interval, max_batch, max_pending_readings, retention_days,
                          prune_interval_s, now)
        self.database, self.path = database, database.name
        self.audit_key_file = audit_key_file
        self._conn: Db | None = database.connect()
        try:
            try:
                self._key = load_key(self.audit_key_file)
            except OSError as exc:
                raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            self._migrate(self._conn)
            tables = self._conn.tables()
            self._sealer = Sealer(self._key) if "integrity_ledger" in tables else None
            # False only on a database whose MIGRATIONS stop before 2, 5 or 4 (tests of old files)
            self._chained = "hash" in self._conn.columns("operator_actions")
            self._onsets = "onset_at" in self._conn.columns("alarms")
            self._keeps_seqs = "device_seqs" in tables
            self._keeps_receipts = "message_receipts" in tables
        except BaseException:
            self._conn.close()
            database.close()
            raise

    def _migrate(self, conn: Db) -> None:
        migrate(conn, self.path, self._key)

    def __enter__(self) -> DatabaseStore:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
