"""Retention: which readings are old enough to go, and removing them one bounded step at a time.

The store grows about 640 KB per chair-hour in SQLite, 1.9 MB in PostgreSQL
(docs/scaling.md); ``[store] retention_days`` (default 400) bounds
it. Only readings are pruned: sessions, session events, alarms, alarm events and operator
actions are the medical record and the audit trail, kept by their own, longer rule (the
site's records policy), never by ``retention_days``.

A reading is old when its ``receive_time`` (the monitor's clock when it arrived, not the
device's) is before the *cutoff*, ``now - retention_days * 86400``; one received exactly at
the cutoff is kept. The writer thread calls one step between commits (every minute, and again
at once while it is behind), so ingest commits interleave with pruning:

- SQLite (:func:`prune_prefix`): the oldest readings by id, at most ``limit`` (20,000) a
  transaction, and only a prefix of the ids (ids grow with arrival, so this is oldest first;
  a reading stamped with a receive time in the future holds back the ones after it until it
  too is old);
- PostgreSQL (:meth:`monitor.store.postgres.PostgresStore.drop_partition`): a whole monthly
  partition of ``readings`` whose upper bound is at or before the cutoff is detached and
  dropped (one a step; never the default partition, never the current month's); old rows
  in ``readings_default`` are deleted in batches like SQLite's (:func:`prune_rows`).

Freed space: SQLite reuses the pages of pruned readings for new ones (the file keeps its
high-water size); PostgreSQL gives a dropped partition's files back to the system at once.

Every step reports the exact id runs it removed (:class:`Pruned`); the writer records them in
the integrity ledger (``row_key = 'pruned'``, so :func:`monitor.integrity.verify_ledger`
tells pruning from deletion) and appends one ``retention_pruned`` operator action, in the
transaction that removed them (:meth:`monitor.store.writer.BatchWriter.prune_once`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.store.db import Db

__all__ = ["DAY_S", "PRUNE_BATCH", "Pruned", "cutoff", "id_runs", "prune_prefix", "prune_rows"]

DAY_S = 86_400.0
#: At most this many readings deleted in one transaction (SQLite, and PostgreSQL's default
#: partition): a few tens of milliseconds, so ingest commits go on between steps.
PRUNE_BATCH = 20_000


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one step removed: ``rows`` readings, as the id ``runs`` (inclusive, ascending),
    all received before ``before``; ``partition`` the table dropped (PostgreSQL);
    ``behind``: more may be due now (the step stopped at its bound)."""

    table: str
    rows: int
    runs: tuple[tuple[int, int], ...]
    before: float
    partition: str | None = None
    behind: bool = False

    @property
    def first_id(self) -> int | None:
        return self.runs[0][0] if self.runs else None

    @property
    def last_id(self) -> int | None:
        return self.runs[-1][1] if self.runs else None

    def detail(self) -> dict[str, Any]:
        """The operator action's detail."""
        detail = {"table": self.table, "rows": self.rows, "first_id": self.first_id,
                  "last_id": self.last_id, "before": self.before}
        if self.partition is not None:
            detail["partition"] = self.partition
        return detail


def cutoff(now: float, retention_days: float) -> float:
    """Readings received before this are old."""
    return now - retention_days * DAY_S


def id_runs(ids: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted ids as runs of consecutive ids: ``[1, 2, 3, 7]`` -> ``((1, 3), (7, 7))``."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return tuple((lo, hi) for lo, hi in runs)


def prune_prefix(db: Db, before: float, limit: int = PRUNE_BATCH) -> Pruned | None:
    """Delete the longest prefix (by id, at most ``limit`` rows) of readings received before
    ``before``; None if the oldest reading is not old. In the caller's transaction."""
    ids = []
    cur = db.execute("SELECT id, receive_time FROM readings ORDER BY id LIMIT ?", (limit,))
    try:
        for row_id, received in cur:
            if received is None or received >= before:
                break
            ids.append(row_id)
    finally:
        cur.close()
    if not ids:
        return None
    db.execute("DELETE FROM readings WHERE id BETWEEN ? AND ?", (ids[0], ids[-1]))
    return Pruned("readings", len(ids), id_runs(ids), before, behind=len(ids) == limit)


def prune_rows(db: Db, table: str, before: float, limit: int = PRUNE_BATCH) -> Pruned | None:
    """Delete the oldest (by id) ``limit`` rows of ``table`` (a partition of readings)
    received before ``before``, wherever they are; None if there are none."""
    ids = [r[0] for r in db.execute(f"SELECT id FROM {table} WHERE receive_time < ? ORDER BY id "
                                    "LIMIT ?", (before, limit))]
    if not ids:
        return None
    for lo, hi in id_runs(ids):
        db.execute(f"DELETE FROM {table} WHERE id BETWEEN ? AND ? AND receive_time < ?", (lo, hi, before))
    return Pruned("readings", len(ids), id_runs(ids), before, behind=len(ids) == limit)
