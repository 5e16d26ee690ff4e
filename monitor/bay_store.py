"""A bay's store from its configuration: :func:`bay_database` (where the data lives: the
SQLite file, or the bay's schema in PostgreSQL), :func:`open_bay_store` (the store on it,
opened with the ``[store]`` section's settings) and :func:`store_where` (the database, for
messages). Apart from :mod:`monitor.config_sections`, so that reading a configuration
(as the adapters do) does not load the store.
"""

from __future__ import annotations

from typing import Any

from monitor.config_sections import StoreSection
from monitor.store import DatabaseStore, open_store
from monitor.store.db import Database, PgDatabase, SqliteDatabase, redact

__all__ = ["bay_database", "open_bay_store", "store_where"]


def bay_database(store: StoreSection, bay: str) -> Database:
    """Where the bay's data lives: the SQLite file, or its schema in PostgreSQL."""
    if store.url is not None:
        return PgDatabase(store.url, bay=bay, password_file=store.password_file)
    return SqliteDatabase(store.path, file_mode=store.file_mode, bay=bay)


def open_bay_store(store: StoreSection, bay: str, **options: Any) -> DatabaseStore:
    """The bay's store, opened (and migrated) with the section's settings; ``options``
    override them (tests: a shorter commit interval)."""
    options = {"commit_interval": store.commit_interval_ms / 1000,
               "max_pending_readings": store.max_pending_readings,
               "retention_days": store.retention_days, **options}
    if store.url is None:  # the bay's name and address are for the site's registry
        options.pop("bay_name", None)
        options.pop("bay_url", None)
    return open_store(bay_database(store, bay), store.key_file, **options)


def store_where(store: StoreSection) -> str:
    """The database, for messages: the file, or the URL without a password."""
    return str(store.path) if store.url is None else redact(store.url)
