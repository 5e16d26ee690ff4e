"""Queries: the store's read side. A small pool of read-only connections (WAL lets them
read while the writer writes) and every query the core, the exports and the dashboard run:
recent readings as arrays for the ring buffers, device sequences for a restart, readings
streamed for an export, sessions, alarms, alarm events and operator actions as records.

:class:`StoreQueries` is the read half of :class:`monitor.store.sqlite.SqliteStore`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from monitor.readings import Reading
from monitor.records import Alarm, AlarmEvent, OperatorAction, Session, SessionEvent
from monitor.store.db import Database, Db
from monitor.store.protocol import DeviceSeqs, RecentSeries, StoreError
from monitor.store.rows import ALARM_FIELDS, READING_COLS, TABLES, make_record

__all__ = ["StoreQueries"]


class StoreQueries:
    """The read side of the store, on the database's pool of read connections."""

    # set by the class that opens the database (SqliteStore, PostgresStore)
    path: str
    database: Database
    _lock: threading.Lock
    _closed: bool
    _onsets: bool  # alarms have onset_at (migration 5)
    _keeps_receipts: bool  # message_receipts (migration 8)

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Db]:
        with self._lock:
            if self._closed:
                raise StoreError(f"store {self.path} is closed")
        with self.database.reader() as db:
            yield db

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reader() as conn:
            return conn.execute(sql, params).fetchall()

    def readings_high_water(self) -> int:
        """The id of the newest stored reading (0: none yet): where a follower of the store
        (a standby's warm buffers) reads on from (:meth:`readings_after`)."""
        return int(self._query("SELECT coalesce(max(id), 0) FROM readings")[0][0])

    def readings_after(self, after_id: int, since: float,
                       limit: int = 200_000) -> tuple[int, list[RecentSeries]]:
        """The readings stored after id ``after_id`` (at most ``limit``, in id order) with
        device_time >= since, as :meth:`recent_readings` gives them, and the id to read on
        from next time (the newest one read; ``after_id`` when there was none). Ids grow in
        commit order (one writer per bay), so reading on from there misses nothing."""
        rows = self._query("SELECT chair, parameter, device_time, value, flags, id FROM readings "
                           "WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        if not rows:
            return after_id, []
        top = int(rows[-1][5])
        chairs, params, times, values, flags, _ = zip(*rows, strict=True)
        del rows
        chair_names, chair_of = np.unique(np.array(chairs, dtype=str), return_inverse=True)
        param_names, param_of = np.unique(np.array(params, dtype=str), return_inverse=True)
        t = np.array(times, dtype=np.float64)
        v = np.array(values, dtype=np.float64)  # None becomes NaN
        f = np.array(flags, dtype=np.uint16)
        key = chair_of * len(param_names) + param_of
        series: list[RecentSeries] = []
        for k in np.unique(key[t >= since]):
            mask = (key == k) & (t >= since)
            order = np.argsort(t[mask], kind="stable")
            series.append((str(chair_names[k // len(param_names)]), str(param_names[k % len(param_names)]),
                           t[mask][order], v[mask][order], f[mask][order]))
        return top, series

    def recent_readings(self, since: float, through_id: int | None = None) -> Iterator[RecentSeries]:
        """Per (chair, parameter): arrays of device_time (float64), value (float64, NaN for
        none) and flags (uint16), sorted by device_time, of readings with device_time >= since
        (and, given ``through_id``, an id no greater: :meth:`readings_after` reads on).
        """
        with self._reader() as conn:
            chairs: list[str] = []
            row = conn.execute("SELECT min(chair) FROM readings").fetchone()
            while row is not None and row[0] is not None:  # index seeks, not a table scan
                chairs.append(row[0])
                sql = "SELECT chair FROM readings WHERE chair > ? ORDER BY chair LIMIT 1"
                row = conn.execute(sql, (row[0],)).fetchone()
            sql = "SELECT parameter, device_time, value, flags FROM readings "
            sql += "WHERE chair = ? AND device_time >= ? AND id <= ? ORDER BY device_time, id"
            last = 2**63 - 1 if through_id is None else through_id
            for chair in chairs:
                rows = conn.execute(sql, (chair, since, last)).fetchall()
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

    def message_receipts(self, source: str, since: float) -> list[str]:
        """The keys of the messages ``source`` took from ``since`` on (oldest first): see
        :class:`~monitor.records.MessageReceipt`."""
        if not self._keeps_receipts:  # a file of an earlier schema (tests)
            return []
        rows = self._query("SELECT key FROM message_receipts WHERE source = ? AND time >= ? ORDER BY time",
                           (source, since))
        return [key for (key,) in rows]

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
        sql = f"SELECT {READING_COLS} FROM readings WHERE chair = ? AND device_time >= ?"
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
        table, cols, _ = TABLES[cls]
        names = ALARM_FIELDS if cls is Alarm else cols
        if cls is Alarm and not self._onsets:  # a file before migration 5 (tests of old files)
            cols = (*cols[:-1], "NULL")
        sql = f"SELECT {', '.join(cols)} FROM {table} {where} ORDER BY {order}"
        return [make_record(cls, dict(zip(names, row, strict=True))) for row in self._query(sql, params)]

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
        return self._records(Session, "WHERE state != 'ended'", (), "started_at, id")

    def get_session(self, id: str) -> Session | None:
        found = self._records(Session, "WHERE id = ?", (id,), "id")
        return found[0] if found else None

    def sessions(self, chair: str | None = None, limit: int = 100) -> list[Session]:
        """Newest (by started_at) first."""
        where, params = self._where(chair)
        return self._records(
            Session, where, [*params, limit], "started_at DESC, id DESC LIMIT ?"
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
