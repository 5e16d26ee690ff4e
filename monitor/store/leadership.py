"""Which of two Chairside processes serving one bay leads: a session-level PostgreSQL advisory
lock on a connection of its own (issue 16, the warm standby).

Exactly one process holds the bay's lock at any time; PostgreSQL itself decides, so there is
no split vote and nothing to configure. Losing the connection loses the lock (the server
releases a session lock when its session ends: a process killed with SIGKILL, a cut
network, ``pg_terminate_backend``); a leader that cannot reach the database any more steps
down by itself, because it can no longer show that it holds the lock. The connection uses
TCP keepalives and a user timeout, so a silent network cut is noticed within seconds
rather than at the kernel's default of hours.

:class:`Leadership` runs one thread: while a follower it tries to take the lock every
``check_s``; while the leader it checks the lock's connection every ``check_s``.
``on_change(True)`` / ``on_change(False)`` are called on that thread when this process
becomes the leader or stops being it (the caller starts or stops reading devices, judging
alarms and writing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from monitor.store.db import DbError, PgDatabase, PgDb

__all__ = ["LEADER_LOCK_CLASS", "Leadership"]

log = logging.getLogger("monitor.leadership")

#: The first key of the two-key advisory lock (the second: the bay's hash): "CHSD".
LEADER_LOCK_CLASS = 0x43485344

#: libpq settings of the lock's connection: a silent network cut noticed within ~5 s.
KEEPALIVE: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 2, "keepalives_interval": 1,
                             "keepalives_count": 3, "tcp_user_timeout": 5000}


class Leadership:
    """One leader per bay among the processes given the same bay and database."""

    def __init__(self, database: PgDatabase, on_change: Callable[[bool], None] = lambda leads: None, *,
                 check_s: float = 1.0, name: str = "") -> None:
        self.database = database
        self.on_change = on_change
        self.check_s = check_s
        self.name = name or database.bay
        self._conn: PgDb | None = None
        self._leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.changes = 0  # how often leadership changed here (health, tests)
        self.attempts = 0  # how often it tried to take the lock
        self.last_error: str | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop, and hand the lock over at once (a clean stop: the standby takes over within
        ``check_s``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._release()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._leader:
                if not self._still_held():
                    self._set(False)
            elif self._try_take():
                self._set(True)
            self._stop.wait(self.check_s)

    def _set(self, leads: bool) -> None:
        self._leader = leads
        self.changes += 1
        log.warning("bay %s: this server %s", self.name, "now LEADS" if leads else "no longer leads")
        try:
            self.on_change(leads)
        except Exception:
            log.exception("bay %s: reacting to the leadership change failed", self.name)

    def _try_take(self) -> bool:
        self.attempts += 1
        try:
            if self._conn is None or self._conn.broken:
                self._drop()
                self._conn = self.database.connect(**KEEPALIVE)
            row = self._conn.execute("SELECT pg_try_advisory_lock(?, hashtext(?))",
                                     (LEADER_LOCK_CLASS, self.database.bay)).fetchone()
            self.last_error = None
            return bool(row[0])
        except DbError as exc:
            self._note(exc)
            self._drop()
            return False

    def _still_held(self) -> bool:
        """The lock's session is alive, and it still holds the lock (it cannot lose it but
        with the session; checked all the same)."""
        if self._conn is None:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND classid = ? AND granted", (LEADER_LOCK_CLASS,)).fetchone()
            return bool(row[0])
        except DbError as exc:
            self._note(exc)
            self._drop()
            return False

    def _note(self, exc: DbError) -> None:
        if exc.reason != self.last_error:
            log.error("bay %s: leadership: %s", self.name, exc.reason)
        self.last_error = exc.reason

    def _release(self) -> None:
        if self._conn is not None and self._leader:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(?, hashtext(?))",
                                   (LEADER_LOCK_CLASS, self.database.bay))
            except DbError as exc:
                self._note(exc)
        was = self._leader
        self._leader = False
        self._drop()
        if was:
            self.changes += 1
            log.warning("bay %s: this server handed leadership over (stopping)", self.name)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
