"""Data-path integrity in the core (issue 11): what reaches the disk, and when, on a real
SQLite file with a clock the test moves."""

from __future__ import annotations

from typing import Any

from conftest import Harness, wait_until

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
    assert alarm.message == "12 readings lost in transmission"
    m.report_gap("c1", "rad97-0012", 3, 200, 204)  # the same device again: one alarm, counting
    (alarm,) = m.open_alarms()
    assert alarm.message == "15 readings lost in transmission"
    assert m.missing_readings == 27
    m.acknowledge(alarm.id, "nurse.ann")  # seen: over, nothing to wait for
    assert m.open_alarms() == []


def test_an_alarm_records_when_its_condition_began_and_when_it_was_annunciated(harness: Harness, tmp_path):
    """A backlog: 25 s of SpO2 80 delivered at once, 12 s late. The alarm's onset is the
    first breaching reading's device time; raised_at is when the monitor annunciated it; the
    API and the export carry both."""
    import csv
    import io
    import zipfile

    from dashboard.views import alarm_json
    from monitor.exports import export_session
    from monitor.timefmt import rfc3339

    m, clock = harness.monitor, harness.clock
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    began = clock.now()
    clock.advance(37)  # the readings of the last 37 s arrive now, the first 25 of them breaching
    m.ingest([harness.reading("spo2", 80.0 if i < 25 else 97.0, dt=i - 37) for i in range(37)])
    (alarm,) = [a for a in m.open_alarms() if a.code == "SPO2_LOW"]
    assert alarm.onset_at == began and alarm.raised_at == clock.now()
    assert alarm_json(alarm)["onset_at"] == rfc3339(began)
    harness.flush()
    out = io.BytesIO()
    ended = m.end_session(s.id, "nurse.ann", patient_left=True)
    harness.flush()
    export_session(m.store, ended, "zip", out, clock.now(), config=harness.config)
    with zipfile.ZipFile(out) as zf:
        name = next(n for n in zf.namelist() if n.endswith("alarms.csv"))
        rows = list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8"))))
    raised = next(r for r in rows if r["code"] == "SPO2_LOW" and r["old_state"] == "")
    assert raised["onset_utc"] == rfc3339(began) and raised["raised_at_utc"] == rfc3339(clock.now())


def test_a_device_clock_ahead_is_flagged_never_current_and_an_alarm(harness: Harness):
    """One SpO2 98 stamped 280 s ahead, then the real 80 each second: the 98 is kept with its
    device time and the CLOCK_SKEW flag, the tile and the API show the 80, and the chair has a
    "device clock wrong" alarm until the device's stamps are right again."""
    from monitor.readings import QualityFlag

    m = harness.monitor
    m.start_session("c1", "MRN-1", "nurse.ann")
    m.ingest([harness.reading("spo2", 98, dt=280, device="ox-9")])
    harness.feed("spo2", 80, seconds=3, device="ox-9")
    vital = m.status("c1").vitals["spo2"]
    assert vital.value == 80 and not vital.stale
    (clock,) = [a for a in m.open_alarms() if a.code == "DEVICE_CLOCK"]
    assert clock.kind.value == "technical" and clock.message == "Monitor clock wrong (280 s ahead)"
    harness.flush()
    assert m.store is not None
    stored = {r.value: r for r in m.store.iter_readings("c1", 0, None)}
    skewed = stored[98]
    assert skewed.flags & QualityFlag.CLOCK_SKEW and skewed.device_time == skewed.receive_time + 280
    assert not stored[80].flags & QualityFlag.CLOCK_SKEW
    assert m.rejections.counts.get("clock_skew") is None  # kept, not refused
    harness.feed("spo2", 80, seconds=31, device="ox-9")  # stamped right for 30 s: the alarm clears
    assert [a for a in m.open_alarms() if a.code == "DEVICE_CLOCK"] == []


def test_a_few_seconds_ahead_is_within_the_allowed_skew(harness: Harness):
    from monitor.readings import QualityFlag

    m = harness.monitor
    m.start_session("c1", "MRN-1", "nurse.ann")
    m.ingest([harness.reading("spo2", 97, dt=4)])  # default clock_skew_s: 5
    harness.flush()
    assert m.store is not None
    (r,) = m.store.iter_readings("c1", 0, None)
    assert not r.flags & QualityFlag.CLOCK_SKEW and m.open_alarms() == []


def _fill_the_disk(store: Any, full: bool) -> None:
    """SQLite's own "database or disk is full" (SQLITE_FULL): cap the file at its size now,
    or lift the cap (the writer is idle between commits; the connection is shared-safe)."""
    n = store._conn.execute("PRAGMA page_count").fetchone()[0] if full else 1073741823
    store._conn.execute(f"PRAGMA max_page_count = {n}")


def test_a_full_disk_bounds_what_waits_in_memory_and_drops_only_the_oldest_readings(tmp_path, caplog):
    import logging

    from monitor.readings import Reading
    from monitor.records import OperatorAction
    from monitor.store import SqliteStore

    with SqliteStore(tmp_path / "bay.db", commit_interval=0.01, max_pending_readings=100) as store:
        store.MAX_RETRY_S = 0.05  # (retry fast in the test)
        assert store.flush(5)
        _fill_the_disk(store, True)
        caplog.set_level(logging.ERROR, logger="monitor.store")
        big = "ox-" + "9" * 2000  # (rows of 2 kB: no free space in the file can take them)
        readings = [Reading("c1", "spo2", 90.0 + i % 10, 1.8e9 + i, 1.8e9 + i, big, i, 0) for i in range(150)]
        store.add_readings(readings[:75])
        store.add_records([OperatorAction(1.8e9, "nurse.ann", "acknowledge", "c1", "7")])
        store.add_readings(readings[75:])
        wait_until(lambda: store.stats()["failed_batches"] >= 5, 10, "writes failing")
        stats = store.stats()
        assert "full" in stats["failing"] and stats["readings_dropped"] == 50
        assert stats["pending"] == 101  # the newest 100 readings and the action, nothing more
        failures = [r for r in caplog.records if "failed" in r.getMessage()]
        assert len(failures) < stats["failed_batches"]  # logged once, not at every retry
        _fill_the_disk(store, False)
        assert store.flush(10)
        assert store.stats()["failing"] is None
        kept = list(store.iter_readings("c1", 0, None))
        assert [r.seq for r in kept] == list(range(50, 150))  # the oldest 50 were dropped
        assert [a.action for a in store.operator_actions()] == ["acknowledge"]


def test_a_full_disk_is_a_bay_wide_alarm_on_every_screen_and_in_healthz(harness: Harness):
    from flask import Flask

    from dashboard.api import install_api
    from dashboard.live import LiveBay

    live = LiveBay(harness.monitor, max_age=0)
    app = Flask("test")
    install_api(app, live)
    store = harness.monitor.store

    def refresh() -> dict[str, Any]:  # what every screen's push stream carries
        return live.feed.build()

    data = refresh()
    assert data["bay_alarm"] == "" and data["sound"] == "silent"
    _fill_the_disk(store, True)
    harness.monitor.ingest([harness.reading("spo2", 97, dt=-i, device=f"ox-{i}-" + "9" * 3000)
                            for i in range(50)])  # 150 kB: more than any free space in the file
    wait_until(lambda: live.recording_problem() is not None, 10, "the store failing")
    data = refresh()
    assert data["bay_alarm"].startswith("RECORDING STOPPED: disk full")
    assert data["sound"] == "medium"  # it sounds, though no chair alarm does
    assert app.test_client().get("/healthz").status_code == 503
    _fill_the_disk(store, False)
    harness.flush()
    wait_until(lambda: live.recording_problem() is None, 10, "recording again")
    assert refresh()["bay_alarm"] == ""
