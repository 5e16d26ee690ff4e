"""Row mapping: records and readings as SQL parameters and back. :func:`record_ops` turns a
record into the statements that store it (run on the caller's thread, so a record that
cannot be stored raises there instead of poisoning a batch); :func:`make_record` builds a
record from its columns; :data:`TABLES` says which table and columns each record type has;
:data:`APPENDS` and :data:`UPSERTS` tell the writer what each statement seals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import fields
from enum import Enum
from typing import Any

from monitor.audit import canonical_json
from monitor.records import (
    Alarm,
    AlarmEvent,
    AlarmKind,
    AlarmState,
    MessageReceipt,
    OperatorAction,
    Priority,
    Session,
    SessionEvent,
    SessionEventKind,
    SessionState,
)
from monitor.store.protocol import Record

__all__ = ["ALARM_FIELDS", "APPENDS", "INSERT_ACTION", "INSERT_READING", "INSERT_RECEIPT", "READING_COLS",
           "TABLES", "UPSERTS", "UPSERT_ALARM", "UPSERT_ALARM_V4", "UPSERT_SEQ", "Ops", "make_record",
           "record_ops"]

UPSERT_SEQ = (
    "INSERT INTO device_seqs (device, seq, device_time, receive_time) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, device_time = excluded.device_time, "
    "receive_time = excluded.receive_time"
)

READING_COLS = "chair, parameter, value, device_time, receive_time, device, seq, flags"
INSERT_READING = f"INSERT INTO readings ({READING_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
ALARM_FIELDS = tuple(f.name for f in fields(Alarm))
ALARM_COLS = tuple("limit_value" if f == "limit" else f for f in ALARM_FIELDS)
EVENT_COLS = ("time", "chair", "alarm_id", "old_state", "new_state", "user", "note", "alarm")
Ops = tuple[tuple[str, tuple[Any, ...]], ...]  # the statements one record becomes


def _insert(table: str, cols: Sequence[str], upsert: bool = False) -> str:
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    if upsert:  # not INSERT OR REPLACE: that deletes the row alarm_events refer to
        sql += f" ON CONFLICT ({cols[0]}) DO UPDATE SET "
        sql += ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    return sql


def _enc(value: Any) -> Any:
    """A field as a column value: enums by value, dicts and tuples as JSON."""
    if isinstance(value, Enum):
        return value.value
    return json.dumps(value) if isinstance(value, dict | tuple | list) else value


def make_record(cls: type, values: dict[str, Any]) -> Any:
    """A record from column values keyed by field name."""
    for name, conv in TABLES[cls][2].items():
        if values[name] is not None:
            values[name] = conv(values[name])
    return cls(**values)


def _alarm_json(text: str) -> Alarm:
    return make_record(Alarm, json.loads(text))


def _cols(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


# record type -> (table, columns in field order, converters from column value to field)
TABLES: dict[type, tuple[str, tuple[str, ...], dict[str, Callable[[Any], Any]]]] = {
    Alarm: ("alarms", ALARM_COLS, {"kind": AlarmKind, "priority": Priority, "state": AlarmState}),
    AlarmEvent: ("alarm_events", EVENT_COLS,
                 {"old_state": AlarmState, "new_state": AlarmState, "alarm": _alarm_json}),
    Session: ("sessions", _cols(Session), {"state": SessionState, "baseline": json.loads,
              "limit_overrides": lambda text: tuple(json.loads(text))}),
    SessionEvent: ("session_events", _cols(SessionEvent),
                   {"kind": SessionEventKind, "data": json.loads}),
    OperatorAction: ("operator_actions", _cols(OperatorAction), {"detail": json.loads}),
    MessageReceipt: ("message_receipts", _cols(MessageReceipt), {}),
}  # fmt: skip
UPSERT_ALARM = _insert("alarms", ALARM_COLS, upsert=True)
assert ALARM_COLS[-1] == "onset_at"  # the column migration 5 added, last
UPSERT_ALARM_V4 = _insert("alarms", ALARM_COLS[:-1], upsert=True)
SQL = {cls: _insert(t, cols, upsert=cls is Session) for cls, (t, cols, _) in TABLES.items()}
INSERT_ACTION = SQL[OperatorAction]  # the writer chains these (see _write_batch)
INSERT_RECEIPT = SQL[MessageReceipt]  # the writer prunes old ones now and then
# what the writer seals per batch (monitor.integrity): appended tables, and rows that change
APPENDS = {SQL[AlarmEvent]: "alarm_events", SQL[SessionEvent]: "session_events",
            INSERT_ACTION: "operator_actions"}
UPSERTS = {UPSERT_ALARM: "alarms", UPSERT_ALARM_V4: "alarms", SQL[Session]: "sessions"}
assert ALARM_COLS[0] == "id" and _cols(Session)[0] == "id"  # the key is params[0]


def _action_params(rec: OperatorAction) -> tuple[Any, ...]:
    """An action's column values exactly as SQLite will give them back (the hash is computed
    from these): time a finite float, text fields str or None. Checked here, on the caller's
    thread, so an action can never fail the writer's batch."""
    t = rec.time
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise TypeError(f"operator action time must be a number, not {type(t).__name__}")
    if not math.isfinite(t):
        raise ValueError(f"operator action time must be finite, not {t!r}")
    text = tuple(None if v is None else str(v) for v in (rec.user, rec.action, rec.chair, rec.target))
    params = (float(t), *text, _enc(rec.detail))
    canonical_json((0, *params)).encode("utf-8")  # raises for what cannot be hashed
    return params


def record_ops(rec: Record) -> Ops:
    """SQL statements for one record. Raises TypeError/ValueError for what cannot be stored."""
    if type(rec) not in TABLES or isinstance(rec, Alarm):
        raise TypeError(f"cannot store a {type(rec).__name__}")
    if isinstance(rec, AlarmEvent):
        if rec.alarm_id != rec.alarm.id:
            raise ValueError(f"alarm event for alarm {rec.alarm_id} carries alarm {rec.alarm.id}")
        alarm = {f: _enc(getattr(rec.alarm, f)) for f in ALARM_FIELDS}
        event = (*(_enc(getattr(rec, f)) for f in EVENT_COLS[:-1]), json.dumps(alarm))
        return ((UPSERT_ALARM, tuple(alarm.values())), (SQL[AlarmEvent], event))
    if isinstance(rec, OperatorAction):
        return ((INSERT_ACTION, _action_params(rec)),)
    return ((SQL[type(rec)], tuple(_enc(getattr(rec, f)) for f in TABLES[type(rec)][1])),)

