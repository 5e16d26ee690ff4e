"""Session export: CSV in the columns of PROTOCOLS.md section 6, streamed from the store.

Rows are produced one by one from ``Store.iter_readings`` (fetched in batches), so a
12-hour session of many chairs never sits in memory whole.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from monitor.parameters import by_key
from monitor.readings import flag_names
from monitor.records import Session
from monitor.store import Store
from monitor.timefmt import rfc3339

__all__ = ["CSV_COLUMNS", "csv_rows", "write_csv"]

CSV_COLUMNS = ("time_utc", "chair", "session_id", "parameter", "value", "unit", "device", "flags")


def csv_rows(store: Store, session: Session, until: float) -> Iterator[tuple[str, ...]]:
    """One row per reading of the session's chair from its start to its end (or ``until``)."""
    end = session.ended_at if session.ended_at is not None else until
    for r in store.iter_readings(session.chair, session.started_at, end):
        param = by_key(r.parameter)
        yield (
            rfc3339(r.device_time) or "", r.chair, session.id, r.parameter,
            "" if r.value is None else f"{r.value:g}", param.unit if param else "", r.device,
            "|".join(flag_names(r.flags)),
        )


def write_csv(store: Store, session: Session, out: TextIO, until: float) -> int:
    """Write the header and every row; returns the number of readings written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for n, row in enumerate(csv_rows(store, session, until), start=1):  # noqa: B007
        writer.writerow(row)
    return n
