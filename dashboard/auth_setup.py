"""What login needs before its first request: the key that signs session cookies (made on
first run, mode 0600), the failed-login throttle the ``[auth]`` section configures, and an app's
login state (:class:`AuthState`), kept in the Flask config by :func:`dashboard.auth.install_auth`."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard.live import LiveBay
from monitor.bay_store import bay_database
from monitor.config import AuthSection, BayConfig
from monitor.logins import CheckGate, LoginThrottle, SessionStore, ThrottlePolicy
from monitor.users import UserStore

if TYPE_CHECKING:
    from dashboard.auth_access import LoginUser
    from monitor.store.db import Database

__all__ = ["AuthState", "secret_key", "throttle_for"]

log = logging.getLogger("chairside.auth")


class AuthState:
    """An app's login state: the ``[auth]`` section, the accounts, the server-side sessions,
    the failed-login throttle, the gate on parallel password checks, and the check of a
    session cookie (``verify``, set by :func:`dashboard.auth.install_auth`)."""

    def __init__(self, config: BayConfig, live: LiveBay) -> None:
        self.config = config.auth
        self.live = live
        database = bay_database(config.store, config.bay.id)
        self.users = UserStore(database, config.store.key_file) if self.config.enabled else None
        self.sessions = SessionStore(database)
        self.throttle = throttle_for(config.auth, database)
        self.checks = CheckGate(config.auth.login_parallel)
        self.verify: Callable[[object, str], LoginUser | None] = lambda token, name: None


def throttle_for(auth: AuthSection, path: Path | Database) -> LoginThrottle:
    """The failed-login throttle the ``[auth]`` section configures."""
    def policy(free: int, lockout: int) -> ThrottlePolicy:
        return ThrottlePolicy(free, auth.login_delay_seconds, auth.login_max_delay_seconds, lockout,
                              auth.lockout_minutes * 60)
    return LoginThrottle(path, policy(auth.login_free_failures, auth.lockout_failures),
                         policy(auth.address_free_failures, auth.address_lockout_failures))


def secret_key(path: Path) -> bytes:
    """The key that signs session cookies: made on first use (mode 0600), read after."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd < 0:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("secret key %s had mode %o; set to 0600", path, mode)
            path.chmod(0o600)
        key = path.read_text("ascii").strip()
        if len(key) < 64:
            raise RuntimeError(f"secret key file {path} is too short; delete it to make a new one")
        return key.encode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        key = secrets.token_hex(32)
        fh.write(key + "\n")
    log.info("made a new secret key in %s", path)
    return key.encode("ascii")
