"""CSV exports: the readings (docs/protocols.md#csv-export), and the whole session record as a zip.

``csv``: one file, header ``time_utc,chair,session_id,parameter,value,unit,device,flags`` and
one row per reading (RFC 3339 UTC times, ``flags`` ``|``-separated).

``zip``: a folder ``chairside-<chair>-<session>[-partial]/`` (``-partial`` when the session
had not ended at export time) holding

- ``readings.csv``: exactly the ``csv`` export;
- ``alarms.csv``: every state change of every alarm of the chair during the session (raised,
  acknowledged, paused, latched, cleared, ...) with the user for operator actions;
- ``events.csv``: the session's events (start, infusion start, rate changes, pauses, stop,
  boluses, notes, baseline, limit changes, observation, end) with who recorded them;
- ``actions.csv``: the operator actions on the chair during the session (the audit trail);
- ``session.csv``: one row: patient, chair, protocol, the session's times and baseline, and
  ``export_status`` (``complete`` or ``partial``), export time, software version.

No cell is a formula (OWASP "CSV injection"): a text cell beginning with ``=``, ``+``, ``-``,
``@``, TAB, CR or LF (or their full-width forms, which some spreadsheets read alike) gets a
leading apostrophe (``'=HYPERLINK(...)``), so a spreadsheet shows the text instead of running
it. A number stays a number: ``-3`` and ``-0.5`` are left as they are (:func:`neutralise`).

Everything is streamed: rows are produced from ``Store.iter_readings`` (fetched in batches)
and written in chunks, each zip member through ``ZipFile.open(name, "w")``, so a 12-hour
session of many chairs never sits in memory whole, and the output may be a pipe.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO

from monitor.exports.report_data import ExportContext, SessionRecord
from monitor.parameters import PARAMETERS
from monitor.readings import flag_names
from monitor.records import Session
from monitor.store.protocol import Store
from monitor.timefmt import Rfc3339Formatter, rfc3339

__all__ = ["ACTION_COLUMNS", "ALARM_COLUMNS", "CSV_COLUMNS", "EVENT_COLUMNS", "SESSION_COLUMNS",
           "csv_chunks", "csv_rows", "neutralise", "session_row", "write_csv", "write_readings_csv",
           "write_zip", "zip_folder"]

CSV_COLUMNS = ("time_utc", "chair", "session_id", "parameter", "value", "unit", "device", "flags")
ALARM_COLUMNS = ("time_utc", "chair", "session_id", "alarm_id", "code", "kind", "priority", "parameter",
                 "old_state", "new_state", "user", "note", "message", "value", "limit",
                 "raised_at_utc", "paused_until_utc", "onset_utc")
EVENT_COLUMNS = ("time_utc", "chair", "session_id", "kind", "user", "detail", "data")
ACTION_COLUMNS = ("time_utc", "chair", "session_id", "user", "action", "target", "detail")
SESSION_COLUMNS = (
    "session_id", "chair", "chair_label", "bay", "patient", "protocol", "protocol_label", "drug",
    "dose", "planned_minutes", "nibp_interval_min", "observation_minutes", "state",
    "started_at_utc", "started_by", "infusion_started_at_utc", "infusion_stopped_at_utc",
    "observation_started_at_utc", "ended_at_utc", "ended_by", "baseline_source",
    *(f"baseline_{p.key}" for p in PARAMETERS), "limit_overrides", "export_status",
    "exported_at_utc", "covers_until_utc", "readings", "software_version",
)
_CHUNK_ROWS = 2000
FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")  # = + - @ TAB CR LF, full-width = + - @
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(cell: Any) -> Any:
    """``cell`` safe for a spreadsheet: text a spreadsheet would take for a formula gets a
    leading apostrophe; numbers (also written as text, like ``-3``) and other cells as they are."""
    if isinstance(cell, str) and cell and cell[0] in FORMULA_START and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def csv_rows(store: Store, session: Session, until: float) -> Iterator[tuple[str, ...]]:
    """One row per reading of the session's chair from its start to its end (or ``until``),
    :func:`neutralise`-d (the chair, parameter, unit, flags and time are never formulas; the
    device, as a device sent it, may be)."""
    end = session.ended_at if session.ended_at is not None else until
    units = {p.key: p.unit for p in PARAMETERS}
    flag_text: dict[int, str] = {0: ""}
    devices: dict[str, str] = {}  # the device as sent -> neutralised: the one free-text cell
    sid = neutralise(session.id)
    when = Rfc3339Formatter()
    for r in store.iter_readings(session.chair, session.started_at, end):
        flags = flag_text.get(r.flags)
        if flags is None:
            flags = flag_text[r.flags] = "|".join(flag_names(r.flags))
        device = devices.get(r.device)
        if device is None:
            device = devices[r.device] = neutralise(r.device)
        value = r.value
        yield (
            when(r.device_time), r.chair, sid, r.parameter,
            "" if value is None else f"{value:g}", units.get(r.parameter, ""), device, flags,
        )


def csv_chunks(rows: Iterator[tuple[Any, ...]], columns: tuple[str, ...],
               chunk_rows: int = _CHUNK_ROWS, *, neutralised: bool = False) -> Iterator[str]:
    """The CSV text of ``columns`` and ``rows``, a chunk of ``chunk_rows`` rows at a time.
    Every cell is :func:`neutralise`-d, unless the rows come so (``neutralised``, as
    :func:`csv_rows` makes them: the per-cell check would slow the largest export down); a
    cell holding a CR is quoted either way."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    single = io.StringIO()
    quoting = csv.writer(single, lineterminator="\r\n")  # quotes a cell holding CR (or LF)
    batch: list[Any] = []

    def write_batch() -> None:
        mark = buffer.tell()
        safe = batch if neutralised else [[neutralise(c) for c in row] for row in batch]
        writer.writerows(safe)
        # csv.writer quotes a cell for a LF but not for a CR when lines end in LF only, and a
        # spreadsheet may take a CR for a row's end: write such a chunk again row by row
        if buffer.getvalue().find("\r", mark) >= 0:
            buffer.seek(mark)
            buffer.truncate()
            for row in safe:
                single.seek(0)
                single.truncate()
                quoting.writerow(row)
                buffer.write(single.getvalue()[:-2] + "\n")
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= chunk_rows:
            write_batch()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    write_batch()
    yield buffer.getvalue()


def write_csv(store: Store, session: Session, out: TextIO, until: float) -> int:
    """Write the readings CSV to a text file; returns the number of readings written."""
    counter = _Counter(csv_rows(store, session, until))
    for chunk in csv_chunks(iter(counter), CSV_COLUMNS, neutralised=True):
        out.write(chunk)
    return counter.n


def write_readings_csv(store: Store, ctx: ExportContext, out: BinaryIO) -> int:
    """The ``csv`` format: the readings CSV, UTF-8; returns the number of readings."""
    counter = _Counter(csv_rows(store, ctx.session, ctx.end))
    for chunk in csv_chunks(iter(counter), CSV_COLUMNS, neutralised=True):
        out.write(chunk.encode("utf-8"))
    return counter.n


def zip_folder(session: Session) -> str:
    partial = "" if session.ended_at is not None else "-partial"
    return f"chairside-{session.chair}-{session.id}{partial}"


def write_zip(store: Store, record: SessionRecord, out: BinaryIO) -> int:
    """The ``zip`` format; returns the number of readings. ``out`` need not be seekable."""
    ctx = record.ctx
    sid, chair = ctx.session.id, ctx.session.chair
    folder = zip_folder(ctx.session)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        def member(name: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]],
                   neutralised: bool = False) -> None:
            info = zipfile.ZipInfo(f"{folder}/{name}", _zip_time(ctx.now))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                for chunk in csv_chunks(rows, columns, neutralised=neutralised):
                    fh.write(chunk.encode("utf-8"))

        readings = _Counter(csv_rows(store, ctx.session, ctx.end))
        member("readings.csv", CSV_COLUMNS, iter(readings), neutralised=True)
        member("alarms.csv", ALARM_COLUMNS, iter([
            (_t(e.time), chair, sid, e.alarm_id, e.alarm.code, e.alarm.kind.value,
             e.alarm.priority.label, e.alarm.parameter or "", e.old_state.value if e.old_state else "",
             e.new_state.value, e.user or "", e.note, e.alarm.message, _num(e.alarm.value),
             _num(e.alarm.limit), _t(e.alarm.raised_at), _t(e.alarm.paused_until),
             _t(e.alarm.onset_at))
            for e in record.alarm_events]))
        member("events.csv", EVENT_COLUMNS, iter([
            (_t(e.time), chair, sid, e.kind.value, e.user, e.detail, _json(e.data))
            for e in record.events]))
        member("actions.csv", ACTION_COLUMNS, iter([
            (_t(a.time), a.chair or "", sid, a.user, a.action, a.target or "", _json(a.detail))
            for a in record.actions]))
        member("session.csv", SESSION_COLUMNS, iter([session_row(ctx, readings.n)]))
    return readings.n


def session_row(ctx: ExportContext, readings: int) -> tuple[Any, ...]:
    s = ctx.session
    return (
        s.id, s.chair, ctx.chair_label, ctx.bay, s.patient, s.protocol, ctx.protocol_label, s.drug,
        s.dose, _num(s.planned_minutes),
        _num(s.nibp_interval_s / 60 if s.nibp_interval_s is not None else None),
        _num(s.observation_minutes), s.state.value, _t(s.started_at), s.started_by,
        _t(s.infusion_started_at), _t(s.infusion_stopped_at), _t(s.observation_started_at),
        _t(s.ended_at), s.ended_by or "", s.baseline_source or "",
        *(_num(s.baseline.get(p.key)) for p in PARAMETERS),
        _json(list(s.limit_overrides)) if s.limit_overrides else "",
        "partial" if ctx.partial else "complete", _t(ctx.now), _t(ctx.end), readings,
        ctx.software_version,
    )


class _Counter:
    """Counts the items of an iterator as they pass."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items = items
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.n += 1
            yield item


def _t(t: float | None) -> str:
    return rfc3339(t) or ""


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str) if data else ""


def _zip_time(t: float) -> tuple[int, int, int, int, int, int]:
    d = datetime.fromtimestamp(t, UTC)
    return (max(d.year, 1980), d.month, d.day, d.hour, d.minute, d.second)
