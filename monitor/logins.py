"""Login sessions kept on the server, and the throttling of failed logins (store migration 6).

Sessions. A login makes a random token; the session cookie carries the token, the store keeps
only its SHA-256 (``auth_sessions``) with the user, when it began, when it was last used and
when it must end whatever happens (``session_max_hours``). Every request checks the record,
so ending it (logout, password change, account disabled, an admin's "end sessions") makes
every copy of the cookie worthless at once, also in another process (``chairside user``).

Throttling. Failed logins are counted per account (also for names that do not exist, so the
answers do not tell which ones do) and per client address (``login_failures``). After
``free`` failures in a row each further attempt must wait a delay that doubles per failure
(capped); after ``lockout`` failures the key is locked for ``lockout_s``. An attempt that
comes too early is refused at once (HTTP 429 with Retry-After), without checking the
password: nobody sleeps on a server thread, and a right password does not help while locked.
Counters are forgotten ``lockout_s`` after the last failure, at a lock's end, on a successful
login and when an admin unlocks. The decisions are the pure functions :func:`wait_s` and
:func:`after_failure`; :class:`LoginThrottle` keeps their state in the store.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass

from monitor.store.db import Cursor, Database, Db, as_database

__all__ = ["NO_ACCESS", "CheckGate", "Failures", "LoginThrottle", "OpenSession", "SessionCheck",
           "SessionStore", "ThrottlePolicy", "address_key", "after_failure", "user_key", "wait_s"]


def _connect(database: Database) -> Db:
    return database.connect()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class OpenSession:
    """An open login session (never its token: only the store's key for it)."""

    key: str
    username: str
    created_at: float
    last_active: float
    expires_at: float
    remote: str


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """A request's session as :meth:`SessionStore.verify` found it, with its account's row.
    ``status``: ``"ok"``; ``"disabled"`` (the account); ``"none"`` (PostgreSQL: the account's
    role on this bay is ``none``, no access); ``"inactivity"`` or ``"lifetime"``
    when this check ended it; ``"ended"`` when it was over already (or has no account)."""

    status: str
    role: str = ""
    disabled: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    last_active: float = 0.0


#: A per-bay role (PostgreSQL): the site-wide account may not use this bay.
NO_ACCESS = "none"
#: The account's row joined to a login session (``{role}``, ``{join}``: per backend).
_VERIFY = ("SELECT s.username, s.last_active, s.expires_at, s.ended_at, {role}, u.disabled, u.created_at, "
           "u.updated_at FROM auth_sessions s JOIN users u ON u.username = s.username {join}WHERE s.id = ?")
#: PostgreSQL: the account's role on the bay (``chairside_site.bay_roles``), given first.
_BAY_ROLE = "LEFT JOIN bay_roles r ON r.username = u.username AND r.bay = ? "


class SessionStore:
    """The ``auth_sessions`` table of a bay's database (already migrated): its SQLite file, or
    its schema in PostgreSQL (the accounts there site-wide, with per-bay roles).

    The per-request check (:meth:`verify`, :meth:`touch`) runs on one connection kept per
    thread, one indexed query each, so that a busy API opens no connection per request; it
    reads the committed rows every time, so a revocation (also by another process) applies
    to the very next request."""

    TOUCH_S = 1.0  # last_active is written when it moves by at least this much

    def __init__(self, where: str | os.PathLike[str] | Database) -> None:
        self.database = as_database(where)
        self._local = threading.local()
        self._kept: list[Db] = []
        self._kept_lock = threading.Lock()

    def _conn(self) -> Db:
        """This thread's kept connection (made on its first use)."""
        conn: Db | None = getattr(self._local, "conn", None)
        if conn is not None and conn.broken:
            conn = None
        if conn is None:
            conn = self.database.connect()
            self._local.conn = conn
            with self._kept_lock:
                self._kept.append(conn)
        return conn

    def close(self) -> None:
        """Close the kept connections (at the server's end; a later use opens new ones)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        self._local = threading.local()
        for conn in kept:
            conn.close()

    def verify(self, token: str, username: str, now: float, idle_s: float) -> SessionCheck:
        """The check every request makes: the session's record and its account's in one
        query (by primary keys) on this thread's kept connection. Ends a session past its
        lifetime or idle too long (as :meth:`check`)."""
        conn = self._conn()
        key = _digest(token)
        if conn.dialect == "postgresql":  # a site-wide account: its role on this bay, if it has one
            rows = conn.execute(_VERIFY.format(role="coalesce(r.role, u.role)", join=_BAY_ROLE),
                                (self.database.bay, key)).fetchall()
        else:
            rows = conn.execute(_VERIFY.format(role="u.role", join=""), (key,)).fetchall()
        row = rows[0] if rows else None  # (fetchall: no read transaction left open)
        if row is None or row[3] is not None or row[0] != username:
            return SessionCheck("ended")
        if row[5]:
            return SessionCheck("disabled")
        if row[4] == NO_ACCESS:
            return SessionCheck(NO_ACCESS)
        reason = "lifetime" if now >= row[2] else "inactivity" if now - row[1] > idle_s else "ok"
        if reason != "ok":
            cur = conn.execute("UPDATE auth_sessions SET ended_at = ?, end_reason = ? "
                               "WHERE id = ? AND ended_at IS NULL", (now, reason, key))
            return SessionCheck(reason if cur.rowcount == 1 else "ended")  # a parallel request was first
        return SessionCheck("ok", str(row[4]), False, float(row[6]), float(row[7]), float(row[1]))

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> Cursor:
        conn = _connect(self.database)
        try:
            cur = conn.execute(sql, params)
            if getattr(cur, "description", None) is not None:  # (psycopg refuses a fetch after DML)
                cur.fetchall()
            return cur
        finally:
            conn.close()

    def create(self, username: str, now: float, max_age_s: float, remote: str = "") -> str:
        """A new session for ``username``: its token (for the cookie only)."""
        token = secrets.token_urlsafe(32)
        self._run("INSERT INTO auth_sessions (id, username, created_at, last_active, expires_at, remote) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  (_digest(token), username, now, now, now + max_age_s, remote[:64]))
        self._run("DELETE FROM auth_sessions WHERE coalesce(ended_at, expires_at) < ?", (now - 30 * 86400,))
        return token

    def check(self, token: str, username: str, now: float, idle_s: float) -> str:
        """``"ok"`` when the session is open and in use; else why not: ``"inactivity"`` or
        ``"lifetime"`` when this call ended it, ``"ended"`` when it was already over."""
        conn = _connect(self.database)
        try:
            row = conn.execute("SELECT username, last_active, expires_at, ended_at FROM auth_sessions "
                               "WHERE id = ?", (_digest(token),)).fetchone()
            if row is None or row[3] is not None or row[0] != username:
                return "ended"
            reason = "lifetime" if now >= row[2] else "inactivity" if now - row[1] > idle_s else "ok"
            if reason == "ok":
                return reason
            cur = conn.execute("UPDATE auth_sessions SET ended_at = ?, end_reason = ? "
                               "WHERE id = ? AND ended_at IS NULL", (now, reason, _digest(token)))
            return reason if cur.rowcount == 1 else "ended"  # a parallel request ended it first
        finally:
            conn.close()

    def touch(self, token: str, now: float) -> None:
        """The user did something: the inactivity timer starts again (never the lifetime)."""
        self._conn().execute("UPDATE auth_sessions SET last_active = ? WHERE id = ? AND ended_at IS NULL "
                             "AND last_active <= ?", (now, _digest(token), now - self.TOUCH_S))

    def end(self, token: str, now: float, reason: str) -> bool:
        cur = self._run("UPDATE auth_sessions SET ended_at = ?, end_reason = ? WHERE id = ? "
                        "AND ended_at IS NULL", (now, reason, _digest(token)))
        return cur.rowcount == 1

    def end_all(self, username: str, now: float, reason: str) -> int:
        """End every open session of ``username``: how many there were."""
        cur = self._run("UPDATE auth_sessions SET ended_at = ?, end_reason = ? WHERE username = ? "
                        "AND ended_at IS NULL", (now, reason, username))
        return cur.rowcount

    def open_sessions(self, username: str | None = None, now: float | None = None) -> list[OpenSession]:
        """Sessions not ended (and, given ``now``, not past their lifetime), oldest first."""
        conn = _connect(self.database)
        try:
            # (conditions only for what is given: PostgreSQL cannot type a bare "? IS NULL")
            where = "".join((" AND username = ?" if username is not None else "",
                             " AND expires_at > ?" if now is not None else ""))
            rows = conn.execute(
                "SELECT id, username, created_at, last_active, expires_at, coalesce(remote, '') "
                f"FROM auth_sessions WHERE ended_at IS NULL{where} ORDER BY created_at",
                tuple(v for v in (username, now) if v is not None)).fetchall()
        finally:
            conn.close()
        return [OpenSession(*r) for r in rows]


# --- throttling ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """When failed logins slow down and lock a key (``[auth]`` in the configuration)."""

    free: int = 3  # failures in a row before delays begin
    delay_s: float = 1.0  # the first delay, doubled for each further failure
    max_delay_s: float = 60.0
    lockout: int = 10  # failures in a row that lock the key (0: never)
    lockout_s: float = 900.0  # how long a lock lasts; failures older than this are forgotten


@dataclass(frozen=True, slots=True)
class Failures:
    """A key's failed logins in a row, and the attempts refused since its last failure."""

    failures: int
    first_at: float
    last_at: float
    locked_until: float | None = None
    refused: int = 0

    def stale(self, policy: ThrottlePolicy, now: float) -> bool:
        """Over: the lock has run out, or the last failure is old enough to forget."""
        if self.locked_until is not None:
            return now >= self.locked_until
        return now - self.last_at >= policy.lockout_s


def wait_s(f: Failures | None, policy: ThrottlePolicy, now: float) -> float:
    """Seconds before the key's next login attempt may be checked (0: now)."""
    if f is None or f.stale(policy, now):
        return 0.0
    if f.locked_until is not None:
        return f.locked_until - now
    extra = f.failures - policy.free
    if extra <= 0:
        return 0.0
    delay = min(policy.max_delay_s, policy.delay_s * 2.0 ** min(extra - 1, 64))
    return max(0.0, f.last_at + delay - now)


def after_failure(f: Failures | None, policy: ThrottlePolicy, now: float) -> Failures:
    """The key's state after one more failed (checked) attempt at ``now``."""
    if f is None or f.stale(policy, now):
        f = Failures(0, now, now)
    count = f.failures + 1
    locked = now + policy.lockout_s if policy.lockout and count >= policy.lockout else None
    return Failures(count, f.first_at, now, locked, f.refused)


def user_key(username: str) -> str:
    return f"user:{username}"


def address_key(address: str) -> str:
    return f"addr:{address}"


class LoginThrottle:
    """Failed-login counters in the ``login_failures`` table; each key has its policy
    (``user:<name>`` accounts, ``addr:<ip>`` client addresses)."""

    def __init__(self, where: str | os.PathLike[str] | Database, account: ThrottlePolicy | None = None,
                 address: ThrottlePolicy | None = None) -> None:
        self.database = as_database(where)
        self.account = account or ThrottlePolicy()
        self.address = address or ThrottlePolicy(free=10, lockout=30)

    def policy(self, key: str) -> ThrottlePolicy:
        return self.address if key.startswith("addr:") else self.account

    @staticmethod
    def _get(conn: Db, key: str) -> Failures | None:
        row = conn.execute("SELECT failures, first_at, last_at, locked_until, refused FROM login_failures "
                           "WHERE key = ?", (key,)).fetchone()
        return Failures(*row) if row else None

    def get(self, key: str) -> Failures | None:
        conn = _connect(self.database)
        try:
            return self._get(conn, key)
        finally:
            conn.close()

    def wait(self, keys: list[str], now: float) -> float:
        """How long the attempt on ``keys`` must wait (the longest of theirs; 0: go ahead)."""
        conn = _connect(self.database)
        try:
            return max((wait_s(self._get(conn, k), self.policy(k), now) for k in keys), default=0.0)
        finally:
            conn.close()

    def refuse(self, keys: list[str]) -> None:
        """Count an attempt refused for coming too early (summed up in one audit record)."""
        conn = _connect(self.database)
        try:
            conn.executemany("UPDATE login_failures SET refused = refused + 1 WHERE key = ?",
                             [(k,) for k in keys])
        finally:
            conn.close()

    def fail(self, keys: list[str], now: float) -> list[tuple[str, Failures, Failures | None]]:
        """Record a failed attempt on each key: (key, its new state, its state before when
        that was over and is now forgotten, with refusals to report)."""
        out = []
        conn = _connect(self.database)
        try:
            conn.begin()
            for key in keys:
                old = self._get(conn, key)
                policy = self.policy(key)
                new = after_failure(old, policy, now)
                gone = old if old is not None and old.stale(policy, now) else None
                conn.execute("INSERT INTO login_failures (key, failures, first_at, last_at, "
                             "locked_until, refused) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO "
                             "UPDATE SET failures = excluded.failures, first_at = excluded.first_at, "
                             "last_at = excluded.last_at, locked_until = excluded.locked_until, "
                             "refused = excluded.refused",
                             (key, new.failures, new.first_at, new.last_at, new.locked_until, new.refused))
                out.append((key, new, gone))
            conn.execute("DELETE FROM login_failures WHERE last_at < ? AND coalesce(locked_until, 0) < ?",
                         (now - 86400, now))
            conn.commit()
        finally:
            conn.close()
        return out

    def clear(self, key: str) -> Failures | None:
        """Forget the key's failures (a successful login, an admin's unlock): what they were."""
        conn = _connect(self.database)
        try:
            conn.begin()
            old = self._get(conn, key)
            conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))
            conn.commit()
            return old
        finally:
            conn.close()

    def locked(self, now: float) -> dict[str, float]:
        """Keys locked at ``now``, with when their lock ends."""
        conn = _connect(self.database)
        try:
            rows = conn.execute("SELECT key, locked_until FROM login_failures WHERE locked_until > ?",
                                (now,)).fetchall()
        finally:
            conn.close()
        return {str(k): float(u) for k, u in rows}


class CheckGate:
    """Bounds the slow password checks (argon2 takes a core for a tenth of a second by
    design) so that logins never hold more than ``parallel + waiting`` of the web server's
    few threads: the rest stay free for the bay screen and /healthz. ``enter()`` is False
    when the gate is full (the caller answers "busy, retry" at once)."""

    def __init__(self, parallel: int = 1, waiting: int = 2, wait_s: float = 2.0) -> None:
        self._room = threading.BoundedSemaphore(parallel + waiting)
        self._slots = threading.BoundedSemaphore(parallel)
        self.wait_s = wait_s

    def enter(self) -> bool:
        if not self._room.acquire(blocking=False):
            return False
        if self._slots.acquire(timeout=self.wait_s):
            return True
        self._room.release()
        return False

    def leave(self) -> None:
        self._slots.release()
        self._room.release()
