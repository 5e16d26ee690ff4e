"""Accounts for the dashboard and the API: the ``users`` table (store migration 3).

Passwords are kept only as argon2id hashes (``argon2-cffi``, its RFC 9106 low-memory
profile); a password never reaches the command line's argv or the log. A new password
follows NIST SP 800-63B (:func:`password_problem`): at least 8 characters (12 for an admin),
at most 1024, not one of the common passwords shipped in ``monitor/data``, not the user
name, not one character repeated. Changing a password or disabling an account ends the
account's login sessions (:class:`monitor.logins.SessionStore`). Roles:

    nurse    acknowledge, pause audio, session steps, exports
    charge   what a nurse may, and session limit changes, users, configuration
    admin    the same as charge

In PostgreSQL an account is site-wide (``chairside_site.users``): one login for every bay of
the site. Its role there is the site default; ``chairside_site.bay_roles`` may give it another
role on one bay, or ``none``: no access to that bay (its login refused there as for a disabled
account, its sessions there ended). A :class:`UserStore` answers with the role effective on
its database's bay; a SQLite file holds one bay, so there the account's role is the role.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from monitor.errors import CoreError
from monitor.integrity import Sealer, sealed_with
from monitor.logins import NO_ACCESS, LoginThrottle, SessionStore, user_key
from monitor.store.db import SITE_SCHEMA, Database, Db, DbIntegrityError, PgDatabase, as_database
from monitor.store.protocol import StoreError

__all__ = ["ROLES", "USERNAME_RE", "User", "UserError", "UserStore", "common_passwords", "hash_password",
           "password_problem", "role_permissions"]

USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_PASSWORD = 8
MIN_ADMIN_PASSWORD = 12
MAX_PASSWORD = 1024
COMMON_PASSWORDS = Path(__file__).with_name("data") / "common-passwords.txt.gz"

NURSE = frozenset({"view", "acknowledge", "pause", "sessions", "export"})
CHARGE = NURSE | {"limits", "users", "config"}
ROLES: dict[str, frozenset[str]] = {"nurse": NURSE, "charge": CHARGE, "admin": CHARGE}

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
_DUMMY = _hasher.hash("not a password: equalises the time of an unknown user's login")


def role_permissions(role: str) -> frozenset[str]:
    return ROLES.get(role, frozenset())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common (breached) passwords, lower case."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())


def password_problem(password: str, username: str, role: str) -> str | None:
    """Why ``password`` may not be ``username``'s (in ``role``), or None when it may."""
    least = MIN_ADMIN_PASSWORD if role == "admin" else MIN_PASSWORD
    if len(password) < least:
        return f"password must have at least {least} characters" + (
            "" if role == "admin" else f" ({MIN_ADMIN_PASSWORD} for an admin)")
    if len(password) > MAX_PASSWORD:
        return f"password must have at most {MAX_PASSWORD} characters"
    if len(set(password)) == 1:
        return "password must not be one character repeated"
    folded = password.casefold()
    if username.casefold() in (folded, folded.strip("0123456789!?.,;:-_#*+ ")):
        return "password must not be the user name"
    if folded in common_passwords() or folded.strip() in common_passwords():
        return "password is a commonly used one (on the list of breached passwords); choose another"
    return None


class UserError(CoreError, ValueError):
    """A bad user name, role or password, or no such user."""


@dataclass(frozen=True, slots=True)
class User:
    """An account as one bay sees it: ``role`` is its role on the bay (``none``: no access),
    ``site_role`` the account's own (PostgreSQL: the site default; else ``role``)."""

    username: str
    role: str
    disabled: bool
    created_at: float
    updated_at: float
    site_role: str = ""

    def __post_init__(self) -> None:
        if not self.site_role:
            object.__setattr__(self, "site_role", self.role)

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset() if self.disabled else role_permissions(self.role)


class UserStore:
    """The accounts of a bay: in its SQLite file, or site-wide in PostgreSQL's
    ``chairside_site`` schema (opened, and migrated, on first use)."""

    def __init__(self, where: str | os.PathLike[str] | Database,
                 audit_key_file: str | os.PathLike[str] | None = None) -> None:
        from monitor.store import open_store

        self.database = as_database(where)
        store = open_store(self.database, audit_key_file)  # create, or migrate
        self._sealer = Sealer(store._key)  # every write to users is sealed in the ledger
        store.close()
        self.site = self.database.dialect == "postgresql"
        if self.site:
            self._check_site_key(store._key)
        self.sessions = SessionStore(self.database)

    def _check_site_key(self, key: bytes) -> None:
        """The site's accounts are sealed in one ledger, so every bay of the site must seal
        with the same key (else verify on one bay would see the others' seals as forged)."""
        conn = self._conn()
        try:
            same = sealed_with(conn, key)
        finally:
            conn.close()
        if not same:
            raise StoreError(f"{self.database.name}: the site's accounts are sealed with another audit "
                             "key than this bay's: every bay of a PostgreSQL site needs the same key "
                             "([store] audit_key_file; copy the first bay's key file)")

    def _conn(self) -> Db:
        if self.database.dialect == "postgresql":  # site-wide: sealed in the site's ledger
            return self.database.connect(schema=SITE_SCHEMA)  # type: ignore[call-arg]
        return self.database.connect()

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        conn = self._conn()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def _write(self, username: str, sql: str, params: tuple[object, ...],
               table: str = "users") -> None:
        """Change ``username``'s row (or a row of ``table`` keyed by it) and seal it in the
        integrity ledger, in one transaction."""
        conn = self._conn()
        try:
            conn.begin()
            conn.execute(sql, params)
            self._sealer.seal(conn, {}, {table: [username]})
            conn.commit()
        finally:
            conn.rollback()
            conn.close()

    def _select(self, where: str, params: tuple[object, ...], bay: str | None) -> list[tuple[object, ...]]:
        """Accounts as ``bay`` (default: this database's) sees them: (username, role there,
        disabled, created_at, updated_at, own role)."""
        if not self.site:
            return self._run("SELECT username, role, disabled, created_at, updated_at, role FROM users u "
                             + where, params)
        return self._run("SELECT u.username, coalesce(r.role, u.role), u.disabled, u.created_at, "
                         "u.updated_at, u.role FROM users u LEFT JOIN bay_roles r ON r.username = "
                         "u.username AND r.bay = ? " + where, (bay or self.database.bay, *params))

    @staticmethod
    def _user(row: tuple[object, ...]) -> User:
        return User(str(row[0]), str(row[1]), bool(row[2]), float(row[3]), float(row[4]),  # type: ignore[arg-type]
                    str(row[5]))

    @staticmethod
    def _check(username: str, role: str | None = None, password: str | None = None) -> None:
        if not USERNAME_RE.fullmatch(username):
            raise UserError("user name must be 1-64 letters, digits, '_', '.', '@' or '-' "
                            f"(got {username!r})")
        if role is not None and role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if password is not None:
            problem = password_problem(password, username, role or "nurse")
            if problem:
                raise UserError(problem)

    def add(self, username: str, role: str, password: str) -> User:
        self._check(username, role, password)
        now = time.time()
        try:
            self._write(username, "INSERT INTO users (username, role, password_hash, disabled, "
                        "created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?)",
                        (username, role, hash_password(password), now, now))
        except DbIntegrityError:
            raise UserError(f"user {username!r} exists") from None
        return self.require(username)

    def set_password(self, username: str, password: str) -> User:
        """A new password; every session of the account ends (a copied cookie with it)."""
        self._check(username)
        self._check(username, self.require(username).role, password)
        self._write(username, "UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?",
                    (hash_password(password), time.time(), username))
        self.end_sessions(username, "password_changed")
        return self.require(username)

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        """Disable (every session ends) or enable an account."""
        self.require(username)
        self._write(username, "UPDATE users SET disabled = ?, updated_at = ? WHERE username = ?",
                    (int(disabled), time.time(), username))
        if disabled:
            self.end_sessions(username, "disabled")
        return self.require(username)

    def end_sessions(self, username: str, reason: str = "ended_by_admin", now: float | None = None) -> int:
        """End every login session of ``username`` at once: how many were open."""
        return self.sessions.end_all(username, time.time() if now is None else now, reason)

    def unlock(self, username: str) -> int:
        """Forget the account's failed logins (and so its lock): how many there were."""
        self.require(username)
        old = LoginThrottle(self.database).clear(user_key(username))
        return old.failures if old else 0

    def locked_until(self, now: float | None = None) -> dict[str, float]:
        """The accounts locked now after failed logins, with when their lock ends."""
        locked = LoginThrottle(self.database).locked(time.time() if now is None else now)
        return {k.removeprefix("user:"): v for k, v in locked.items() if k.startswith("user:")}

    def set_role(self, username: str, role: str) -> User:
        self._check(username, role)
        self.require(username)
        self._write(username, "UPDATE users SET role = ?, updated_at = ? WHERE username = ?",
                    (role, time.time(), username))
        return self.require(username)

    def set_bay_role(self, username: str, bay: str, role: str | None) -> User:
        """PostgreSQL: the account's role on ``bay`` (``none``: no access there; its sessions
        there end), or None for the site default again. Returns the account as ``bay`` sees it."""
        self._check(username)
        if role is not None and role != NO_ACCESS:
            self._check(username, role)
        if not self.site:
            raise UserError("per-bay roles need the PostgreSQL store: a SQLite store holds one bay, "
                            "so set the account's role itself")
        self.require(username)
        bays = [str(b) for (b,) in self._run("SELECT id FROM bays ORDER BY id")]
        if bay not in bays:
            raise UserError(f"no bay {bay!r} in this site (bays: {', '.join(bays) or 'none yet'})")
        if role is None:
            self._write(f"{bay}/{username}", "DELETE FROM bay_roles WHERE username = ? AND bay = ?",
                        (username, bay), "bay_roles")
        else:
            self._write(f"{bay}/{username}", "INSERT INTO bay_roles (username, bay, role) VALUES (?, ?, ?) "
                        "ON CONFLICT (username, bay) DO UPDATE SET role = excluded.role",
                        (username, bay, role), "bay_roles")
        if role == NO_ACCESS:
            self._end_bay_sessions(username, bay)
        return self.require(username, bay)

    def _end_bay_sessions(self, username: str, bay: str) -> int:
        if bay == self.database.bay:
            return self.end_sessions(username, "bay_access_removed")
        assert isinstance(self.database, PgDatabase)
        other = self.database.for_bay(bay)
        conn = other.connect()
        try:
            if "auth_sessions" not in conn.tables():  # the bay never ran this far: no sessions
                return 0
        finally:
            conn.close()
        sessions = SessionStore(other)
        try:
            return sessions.end_all(username, time.time(), "bay_access_removed")
        finally:
            sessions.close()

    def get(self, username: str, bay: str | None = None) -> User | None:
        """The account as ``bay`` (default: this database's) sees it, or None."""
        rows = self._select("WHERE u.username = ?", (username,), bay)
        return self._user(rows[0]) if rows else None

    def require(self, username: str, bay: str | None = None) -> User:
        user = self.get(username, bay)
        if user is None:
            raise UserError(f"no user {username!r}")
        return user

    def list(self) -> list[User]:
        return [self._user(r) for r in self._select("ORDER BY u.username", (), None)]

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password is right and the account enabled; else None (an
        unknown, empty or malformed name costs the same hashing as a wrong password)."""
        valid = USERNAME_RE.fullmatch(username) is not None
        rows = self._run("SELECT password_hash FROM users WHERE username = ?", (username,)) if valid else []
        if not rows:
            with contextlib.suppress(VerificationError):
                _hasher.verify(_DUMMY, password + "x")
            return None
        stored = str(rows[0][0])
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if _hasher.check_needs_rehash(stored):
            self._write(username, "UPDATE users SET password_hash = ? WHERE username = ?",
                        (hash_password(password), username))
        user = self.get(username)  # its role on this bay: none refuses as a disabled account
        return user if user is not None and not user.disabled and user.role != NO_ACCESS else None
