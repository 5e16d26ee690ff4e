"""Data-path integrity in the core (issue 11): what reaches the disk, and when, on a real
SQLite file with a clock the test moves."""

from __future__ import annotations

from typing import Any

from conftest import Harness

from monitor.records import AlarmEvent


class SpyStore:
    """The real store, with a log of how readings and records were handed to it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[tuple[str, int, list[Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def add_readings(self, readings):  # type: ignore[no-untyped-def]
        self.calls.append(("readings", len(readings), []))
        return self.store.add_readings(readings)

    def add_records(self, records):  # type: ignore[no-untyped-def]
        self.calls.append(("records", 0, list(records)))
        return self.store.add_records(records)

    def add(self, readings, records):  # type: ignore[no-untyped-def]
        self.calls.append(("both", len(readings), list(records)))
        return self.store.add(readings, records)


def test_alarm_events_are_committed_with_the_readings_that_raised_them(harness: Harness):
    spy = SpyStore(harness.monitor.store)
    harness.monitor.store = spy  # type: ignore[assignment]
    harness.monitor.engine  # noqa: B018 (the engine is untouched)
    result = harness.monitor.ingest([harness.reading("nibp_sys", 210)])  # high alarm at once
    (call,) = spy.calls
    kind, n_readings, records = call
    assert kind == "both" and n_readings == 1
    assert [type(r) for r in records] == [AlarmEvent] and records[0].alarm.code == "NIBP_SYS_HIGH"
    # one ticket covers both: once it is durable, so are the readings and the alarm
    assert result.ticket is not None
    assert spy.store.wait_durable(result.ticket, timeout=10)
    harness.flush()
    assert spy.store.count_readings("c1") == 1
    assert [e.alarm.code for e in spy.store.alarm_events(chair="c1")] == ["NIBP_SYS_HIGH"]


def test_a_gap_is_one_alarm_per_device_counting_until_acknowledged(harness: Harness):
    m = harness.monitor
    m.report_gap("c1", "rad97-0012", 12, 100, 113)
    assert m.open_alarms() == []  # technical alarms are armed by a session
    m.start_session("c1", "MRN-1", "nurse.ann")
    m.report_gap("c1", "rad97-0012", 12, 100, 113)
    (alarm,) = m.open_alarms()
    assert (alarm.code, alarm.kind.value, alarm.priority.label, alarm.state.value) == (
        "DATA_GAP", "technical", "medium", "active")
    assert alarm.message == "12 readings missing from rad97-0012 (gap in its sequence)"
    m.report_gap("c1", "rad97-0012", 3, 200, 204)  # the same device again: one alarm, counting
    (alarm,) = m.open_alarms()
    assert alarm.message == "15 readings missing from rad97-0012 (gap in its sequence)"
    assert m.missing_readings == 27
    m.acknowledge(alarm.id, "nurse.ann")  # seen: over, nothing to wait for
    assert m.open_alarms() == []
