"""Bays of one PostgreSQL site for the tests: :class:`PgHarness` is tests/conftest.py's
Harness (a real core, a clock the test moves) on a bay's schema of a private server's database
(tests/pg_support.py), and :func:`login` logs an account in on a bay's dashboard app."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from conftest import T0, Harness, bay_config

from monitor.bay_store import bay_database
from monitor.clock import ManualClock
from monitor.core import Monitor
from monitor.store import open_store

__all__ = ["PgHarness", "login", "store_section"]


class PgHarness(Harness):
    """A real core on bay ``bay``'s schema of the database ``url``, sealed with ``key``."""

    def __init__(self, tmp_path: Path, url: str, bay: str, key: Path, **sections: Any) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.tmp_path, self.bay, self.key = tmp_path, bay, key
        self.config = bay_config(tmp_path, store=store_section(url, key, tmp_path), bay={"id": bay},
                                 **sections)
        self.clock = ManualClock(T0)
        self.monitor = self._open()

    def _open(self) -> Monitor:
        store = open_store(bay_database(self.config.store, self.bay), self.key, commit_interval=0.02)
        monitor = Monitor(self.config, store=store, clock=self.clock)
        monitor.start()
        return monitor


def store_section(url: str, key: Path, folder: Path) -> dict[str, str]:
    """A ``[store]`` table for the database ``url``: its password (a configured URL may not
    carry one) in a file in ``folder``."""
    parts = urlsplit(url)
    password = folder / "db.password"
    password.write_text(unquote(parts.password or "") + "\n")
    password.chmod(0o600)
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    return {"url": urlunsplit(parts._replace(netloc=netloc)), "password_file": str(password),
            "audit_key_file": str(key)}


def login(server: Any, username: str, password: str) -> tuple[Any, Any]:
    """A test client of the Flask ``server`` after a JSON login, and the login's answer."""
    client = server.test_client()
    return client, client.post("/login", json={"username": username, "password": password})
