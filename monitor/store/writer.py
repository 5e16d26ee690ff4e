"""The batching writer: producers queue readings and records under a lock and get a ticket;
one writer thread commits everything pending in one transaction every ``commit_interval``
(sooner past ``max_batch`` rows or when asked to flush), chains operator actions onto the
audit head, seals each batch in the integrity ledger, wakes :meth:`~BatchWriter.wait_durable`
and calls the commit listeners. A failed batch is kept and retried with a backoff. The
design is drawn in :mod:`monitor.store`'s docstring.

:class:`BatchWriter` is the write half of :class:`monitor.store.sqlite.SqliteStore`, which
opens the file and sets the state declared here (:meth:`BatchWriter._init_writer`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from monitor.audit import GENESIS, action_hash
from monitor.integrity import Sealer, reading_rows
from monitor.readings import Reading
from monitor.records import RECEIPTS_KEPT_S, OperatorAction
from monitor.store.db import SITE_CHANNEL, Database, Db
from monitor.store.protocol import Record, StoreError
from monitor.store.retention import PRUNE_BATCH, Pruned, cutoff, prune_prefix
from monitor.store.rows import (
    APPENDS,
    INSERT_ACTION,
    INSERT_RECEIPT,
    UPSERT_ALARM,
    UPSERT_ALARM_V4,
    UPSERT_SEQ,
    UPSERTS,
    Ops,
    record_ops,
)
from monitor.store.schema import AUDIT_HEAD, INSERT_CHAINED, UPSERT_HEAD, run_script

__all__ = ["BatchWriter", "Fenced"]

log = logging.getLogger("monitor.store")

RECEIPTS_PRUNE_EVERY_S = 60.0


class Fenced(StoreError):
    """Another server has taken the bay over (a higher leader epoch): this one's writes are
    refused, so that a server stepping down never writes after its successor started."""


class BatchWriter:
    """The write side of the store: queueing, the writer thread, its transactions."""

    MAX_RETRY_S = 5.0
    FAIL_LOG_EVERY_S = 30.0
    PRUNE_BATCH = PRUNE_BATCH  # readings deleted at most in one retention step

    # set by the class that opens the database (SqliteStore, PostgresStore)
    path: str
    database: Database
    _conn: Db | None  # the writer's connection (None: to be opened again, after it broke)
    _sealer: Sealer | None
    _chained: bool  # operator_actions hash-chained (migration 2)
    _onsets: bool  # alarms have onset_at (migration 5)
    _keeps_seqs: bool  # device_seqs exists (migration 4)
    _keeps_receipts: bool  # message_receipts exists (migration 8)

    def _init_writer(self, commit_interval: float, max_batch: int, max_pending_readings: int,
                     retention_days: float | None = None, prune_interval_s: float | None = 60.0,
                     now: Callable[[], float] = time.time) -> None:
        if not 0.01 <= commit_interval <= 1.0:
            raise ValueError(f"commit_interval must be 0.01-1.0 s, not {commit_interval!r}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, not {max_batch!r}")
        if retention_days is not None and not retention_days > 0:
            raise ValueError(f"retention_days must be positive, not {retention_days!r}")
        # retention (monitor.store.retention): None keeps every reading; prune_interval_s None
        # prunes only when prune_once() is called; now: the clock that ages readings
        self._retention_days, self._prune_interval = retention_days, prune_interval_s
        self._now = now
        self._receipts_pruned = 0.0  # monotonic time receipts were last pruned
        self._epoch: int | None = None  # the leader epoch this writer writes under (fence())
        self._fenced = False
        self._next_prune = 0.0  # time.monotonic() of the next automatic step
        self._more_due = False  # the last step removed nothing yet made progress (a survey)
        self._write_lock = threading.Lock()  # one transaction at a time on the writer's connection
        self._interval, self._max_batch = commit_interval, max_batch
        self._max_pending = max_pending_readings
        self._failing: str | None = None  # what the last failed write said, while failing
        self._fail_logged = 0.0  # time.monotonic() of the last failure logged
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits on this
        self._durable = threading.Condition(self._lock)  # wait_durable waits on this
        self._pending_readings: list[Reading] = []
        self._pending_records: list[Ops] = []
        self._batch_readings: list[Reading] = []  # swapped out; kept while writes fail
        self._batch_records: list[Ops] = []
        self._batch_ticket = self._ticket = self._committed = 0
        self._flush_requested = self._stopping = self._closed = False
        self._stop_deadline = 0.0
        self._fail_streak = 0
        self._listeners: list[Callable[[int], None]] = []
        self._stats: dict[str, Any] = dict.fromkeys(
            ("readings_written", "records_written", "batches", "failed_batches", "readings_dropped",
             "readings_pruned", "prune_steps", "readings_fenced", "records_fenced"), 0
        )
        self._stats["last_commit_seconds"] = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (once)."""
        with self._lock:
            if self._closed:
                raise StoreError(f"store {self.path} is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
                self._thread.start()

    @property
    def retention_days(self) -> float | None:
        """Readings older than this many days are pruned (None: never)."""
        return self._retention_days

    @property
    def committed_ticket(self) -> int:
        return self._committed

    def _submit(self, readings: Sequence[Reading], records: list[Ops]) -> int:
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
        return self._submit((), [record_ops(r) for r in records])

    def add(self, readings: Sequence[Reading], records: Sequence[Record]) -> int:
        """Readings and the records they caused (alarm events), queued as one: they are
        committed in the same transaction, under one ticket."""
        if not isinstance(readings, list | tuple):
            readings = list(readings)
        for r in readings:
            if not isinstance(r, Reading):
                raise TypeError(f"add takes Reading, not {type(r).__name__}")
        return self._submit(readings, [record_ops(r) for r in records])

    def fence(self, server: str) -> int:
        """Before :meth:`start`, as the bay's new leader: take the next leader epoch (under
        the bay's write lock, so after any batch of the previous leader's) and write only
        under it: a batch of an earlier leader's after this is refused (:class:`Fenced`).
        Returns the epoch."""
        conn = self._writer_db()
        with self._write_lock:
            conn.begin()
            try:
                conn.lock_bay_writes(self.database.bay)
                row = conn.execute("SELECT epoch FROM leader_epoch WHERE id = 1").fetchone()
                epoch = (row[0] if row else 0) + 1
                conn.execute("INSERT INTO leader_epoch (id, epoch, server, taken_at) VALUES (1, ?, ?, ?) "
                             "ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, "
                             "server = excluded.server, taken_at = excluded.taken_at",
                             (epoch, server, time.time()))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        self._epoch = epoch
        return epoch

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
        self.database.close()
        if self._conn is not None:
            self._conn.close()

    def _maintain(self) -> None:
        """Housekeeping on the writer thread between commits (a backend's partitions, the
        retention's pruning): quick, one bounded step a call. Retention checks every
        ``prune_interval_s``, and on the next cycle again while a step stopped at its bound."""
        if self._retention_days is None or self._prune_interval is None:
            return
        if time.monotonic() < self._next_prune:
            return
        try:
            pruned = self.prune_once()
        except Exception as exc:
            self._next_prune = time.monotonic() + self._prune_interval
            log.error("store %s: pruning old readings failed (trying again in %.0f s): %s", self.path,
                      self._prune_interval, getattr(exc, "reason", None) or exc)
            return
        behind = (pruned is not None and pruned.behind) or self._more_due
        self._next_prune = time.monotonic() + (0.0 if behind else self._prune_interval)

    def prune_once(self, now: float | None = None) -> Pruned | None:
        """One retention step (:mod:`monitor.store.retention`) as of ``now`` (default the
        store's clock): remove a bounded batch of readings older than ``retention_days``, record
        the ids removed in the integrity ledger and one ``retention_pruned`` operator action in
        the audit trail, all in one transaction. Returns what was removed, None if nothing was
        due (or retention is off). Safe from any thread: it waits for a commit under way."""
        if self._retention_days is None:
            return None
        if self._closed and threading.current_thread() is not self._thread:
            raise StoreError(f"store {self.path} is closed")
        now = self._now() if now is None else now
        before = cutoff(now, self._retention_days)
        with self._write_lock:
            conn = self._writer_db()
            conn.begin()
            self._more_due = False
            try:
                pruned = self._prune_readings(conn, before, now)
                if pruned is None:
                    conn.rollback()
                    return None
                action = OperatorAction(now, "chairside", "retention_pruned", None, None, pruned.detail())
                heads = self._apply(conn, [], [record_ops(action)],
                                    [(pruned.table, lo, hi) for lo, hi in pruned.runs])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        with self._lock:
            self._stats["readings_pruned"] += pruned.rows
            self._stats["prune_steps"] += 1
        log.info("store %s: retention pruned %d readings (ids %s-%s%s) received before %s", self.path,
                 pruned.rows, pruned.first_id, pruned.last_id,
                 f", partition {pruned.partition}" if pruned.partition else "",
                 time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(before)))
        self._log_heads(*heads)
        return pruned

    def _prune_readings(self, db: Db, before: float, now: float) -> Pruned | None:
        """The backend's bounded step, in the caller's transaction (SQLite: the oldest
        prefix of ids; PostgreSQL overrides it with whole partitions)."""
        return prune_prefix(db, before, self.PRUNE_BATCH)

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
                    if not failed and not stopping:
                        self._maintain()
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
            with self._write_lock:
                self._write_batch(readings, records)
        except Fenced as exc:  # never written here: the senders give them to the new leader
            with self._lock:
                self._stats["readings_fenced"] += len(readings)
                self._stats["records_fenced"] += len(records)
                self._batch_readings, self._batch_records = [], []
                first, self._fenced = not self._fenced, True
            if first:
                log.error("store %s: %s; %d readings and %d records not written here (and nothing "
                          "after them)", self.path, exc, len(readings), len(records))
            return True
        except Exception as exc:
            with self._lock:
                self._stats["failed_batches"] += 1
                self._fail_streak += 1
                self._failing = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
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

    def _writer_db(self) -> Db:
        """The writer's connection, opened again after it broke (a database restarted)."""
        if self._conn is not None and self._conn.broken:
            self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = self.database.connect()
        return self._conn

    def _write_batch(self, readings: list[Reading], records: list[Ops]) -> None:
        """One transaction, rolled back on any error."""
        conn = self._writer_db()
        conn.begin()
        try:
            heads = self._apply(conn, readings, records)
            if records and conn.dialect == "postgresql":  # the site view wakes on commit
                conn.execute("SELECT pg_notify(?, ?)", (SITE_CHANNEL, self.database.bay))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        self._log_heads(*heads)

    def _apply(self, conn: Db, readings: list[Reading], records: list[Ops],
               pruned: Sequence[tuple[str, int, int]] = ()) -> tuple[list[Any] | None, list[Any] | None]:
        """Write readings and records in the caller's transaction: actions chained onto the
        audit head, everything sealed in the ledger with the ``pruned`` id runs (table, first,
        last). Returns the new audit head and ledger head (None: unchanged)."""
        conn.lock_bay_writes(self.database.bay)  # first: ids and heads read after it are ours
        if self._epoch is not None:
            row = conn.execute("SELECT epoch, server FROM leader_epoch WHERE id = 1").fetchone()
            if row is None or row[0] != self._epoch:
                raise Fenced(f"store {self.path}: server {row[1] if row else '?'} has taken the bay "
                             f"over (leader epoch {row[0] if row else '?'}, this server's {self._epoch})")
        head: list[Any] | None = None  # [actions, last_id, hash], read once a batch has actions
        sealer, sealed = self._sealer, None
        tops: dict[str, int] = {}  # appended table -> its max id before this batch
        changed: dict[str, list[Any]] = {}  # table -> keys of rows written
        written: dict[str, list[tuple[Any, ...]]] = {}
        receipts = False  # message receipts among the records: older ones pruned now and then
        if readings:  # ids given here, after the highest: the ledger seals them unread
            tops["readings"] = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
            written["readings"] = reading_rows(tops["readings"] + 1, readings)
            conn.insert_readings(written["readings"])
            if self._keeps_seqs:
                last = {r.device: (r.device, r.seq, r.device_time, r.receive_time)
                        for r in readings if r.seq is not None}
                conn.executemany(UPSERT_SEQ, last.values())
        for ops in records:
            for sql, params in ops:
                if sealer is not None:
                    if (table := APPENDS.get(sql)) is not None and table not in tops:
                        tops.update(sealer.tops(conn, (table,)))
                    elif (table := UPSERTS.get(sql)) is not None:
                        changed.setdefault(table, []).append(params[0])
                if sql is INSERT_ACTION and self._chained:
                    if head is None:
                        head = self._audit_head(conn)
                    self._append_action(conn, head, params)
                elif sql is UPSERT_ALARM and not self._onsets:
                    conn.execute(UPSERT_ALARM_V4, params[:-1])
                else:
                    conn.execute(sql, params)
                    receipts = receipts or sql is INSERT_RECEIPT
        if receipts and time.monotonic() - self._receipts_pruned >= RECEIPTS_PRUNE_EVERY_S:
            self._receipts_pruned = time.monotonic()
            conn.execute("DELETE FROM message_receipts WHERE time < ?", (self._now() - RECEIPTS_KEPT_S,))
        if head is not None:
            conn.execute(UPSERT_HEAD, (*head, time.time()))
        if sealer is not None:
            sealed = sealer.seal(conn, tops, changed, written=written, pruned=pruned)
        return head, sealed

    def _log_heads(self, head: list[Any] | None, sealed: list[Any] | None) -> None:
        if head is not None:  # a copy of the head outside the database, for docs/audit.md
            log.info("store %s: audit chain head: %d actions, row %d, hash %s", self.path, *head)
            if sealed is not None:
                log.info("store %s: integrity ledger head: %d entries, entry %d, mac %s",
                         self.path, *sealed)

    def _audit_head(self, conn: Db) -> list[Any]:
        """The chain head, read inside the write transaction (so a second process writing
        the same file cannot fork the chain). A missing head is logged and rebuilt from the
        table's last row rather than failing the batch: readings must keep being written;
        ``chairside audit verify`` reports the tampering."""
        if "audit_head" not in conn.tables():  # the table was dropped
            run_script(conn, AUDIT_HEAD)
            row = None
        else:
            row = conn.execute("SELECT actions, last_id, hash FROM audit_head WHERE id = 1").fetchone()
        if row is None:
            log.error("store %s: audit_head is missing; continuing the chain from the last row",
                      self.path)
            n, last = conn.execute(
                "SELECT count(*), coalesce(max(id), 0) FROM operator_actions").fetchone()
            found = conn.execute("SELECT hash FROM operator_actions WHERE id = ?", (last,)).fetchone()
            row = (n, last, found[0] if found and found[0] else GENESIS)
        return [row[0] or 0, row[1] or 0, row[2] or GENESIS]

    @staticmethod
    def _append_action(conn: Db, head: list[Any], params: tuple[Any, ...]) -> None:
        # after the head's last row, and after any row appended behind the writer's back (a
        # forged row must not make the insert fail; verify reports it)
        top = conn.execute("SELECT coalesce(max(id), 0) FROM operator_actions").fetchone()[0]
        row = (max(head[1], top) + 1, *params)
        digest = action_hash(head[2], row)
        conn.execute(INSERT_CHAINED, (*row, head[2], digest))
        head[:] = [head[0] + 1, row[0], digest]

