"""The two store backends side by side for the shared contract tests: the ``backend``
fixture (parametrised ``sqlite`` / ``postgresql``) gives a :class:`Backend` that opens the
store, runs SQL on its database from outside (as its owner: tampering, checks) and knows its
``[store]`` section. PostgreSQL is a private server started by the tests (tests/pg_support.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
import pytest

from monitor.bay_store import bay_database
from monitor.config_sections import StoreSection
from monitor.store import DatabaseStore, open_store
from monitor.store.db import Database, PgDatabase, SqliteDatabase, pg_sql

__all__ = ["Backend", "backend", "make_backend", "pg_backend"]


@dataclass
class Backend:
    name: str
    section: dict[str, Any]  # the [store] table
    key_file: Path
    bay: str = "bay1"

    def database(self, bay: str | None = None) -> Database:
        return bay_database(StoreSection.model_validate(self.section), bay or self.bay)

    def open(self, bay: str | None = None, **options: Any) -> DatabaseStore:
        options.setdefault("commit_interval", 0.01)
        return open_store(self.database(bay), self.key_file, **options)

    def sql(self, query: str, params: tuple[Any, ...] = (), bay: str | None = None) -> list[tuple[Any, ...]]:
        """Run one statement (SQLite's dialect) outside Chairside, as the database's owner."""
        db = self.database(bay)
        if isinstance(db, PgDatabase):
            password = Path(self.section["password_file"]).read_text().strip()
            with psycopg.connect(self.section["url"], password=password, autocommit=True,
                                 options=f"-c search_path={db.schema},chairside_site") as conn:
                cur = conn.execute(pg_sql(query), params or None)  # type: ignore[arg-type]
                return cur.fetchall() if cur.description else []
        assert isinstance(db, SqliteDatabase)
        conn = db.connect()
        try:
            cur = conn.execute(query, params)
            return cur.fetchall()
        finally:
            conn.close()


def make_backend(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    key = tmp_path / "audit.key"
    if name == "sqlite":
        return Backend(name, {"path": str(tmp_path / "bay.db"), "audit_key_file": str(key)}, key)
    url = urlsplit(request.getfixturevalue("pg_url"))  # as a bay would have it: the password in a file
    password = tmp_path / "db-password"
    password.write_text(unquote(url.password or "") + "\n")
    password.chmod(0o600)
    bare = urlunsplit(url._replace(netloc=url.netloc.split("@", 1)[1]))
    section = {"url": f"{bare.replace('//', f'//{url.username}@', 1)}", "password_file": str(password),
               "audit_key_file": str(key)}
    return Backend(name, section, key, bay=f"b{secrets.token_hex(3)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield make_backend(request.param, tmp_path, request)


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """PostgreSQL alone (tests of what only it has)."""
    return make_backend("postgresql", tmp_path, request)


