"""The SQLite store: :class:`SqliteStore` opens one file (private mode, WAL,
``synchronous=FULL``, schema migrated, ledger key loaded: :mod:`monitor.store.base`). The
design is drawn in :mod:`monitor.store`'s docstring.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from monitor.integrity import default_key_path
from monitor.store.base import DatabaseStore
from monitor.store.db import SqliteDatabase

__all__ = ["SqliteStore"]


class SqliteStore(DatabaseStore):
    """:class:`Store` on one SQLite file in WAL mode; see :class:`DatabaseStore` and
    :mod:`monitor.store`."""

    def __init__(
        self, path: str | os.PathLike[str], *, commit_interval: float = 0.2,
        max_batch: int = 50_000, max_pending_readings: int = 1_000_000,
        audit_key_file: str | os.PathLike[str] | None = None, file_mode: int = 0o600,
        retention_days: float | None = None, prune_interval_s: float | None = 60.0,
        now: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if file_mode & ~0o640:
            raise ValueError(f"file_mode must be 0600 or 0640, not {file_mode:04o}")
        path = os.fspath(path)
        key_file = default_key_path(path) if audit_key_file is None else audit_key_file
        self._open(SqliteDatabase(path, file_mode=file_mode), key_file, commit_interval=commit_interval,
                   max_batch=max_batch, max_pending_readings=max_pending_readings,
                   retention_days=retention_days, prune_interval_s=prune_interval_s, now=now)
