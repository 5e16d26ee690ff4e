"""Issue 15, point 2: retention. Readings older than ``retention_days`` are pruned in bounded
steps on the writer thread (SQLite: a prefix of the oldest ids; PostgreSQL: whole monthly
partitions, and old rows of the default partition in batches); the integrity ledger records
what was pruned so ``audit verify`` stays OK and still finds any other deletion; each run
is one operator action in the hash-chained audit trail; sessions, alarms, their events and
operator actions are never pruned.

Real SQLite files and a real PostgreSQL server (the ``backend`` fixture runs each test on
both). Time is a clock the test moves (the store's ``now``): readings are written with old
receive times and the step is called directly (``prune_once``); nothing waits for real days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Harness, wait_until
from store_backends import Backend
from test_audit import bay_activity

from monitor.audit import verify_chain, verify_records
from monitor.bay_store import open_bay_store
from monitor.config import parse_config
from monitor.readings import Reading
from monitor.records import (
    Alarm,
    AlarmEvent,
    AlarmKind,
    AlarmState,
    OperatorAction,
    Priority,
    Session,
    SessionEvent,
    SessionEventKind,
    SessionState,
)
from monitor.store import DatabaseStore, SqliteStore
from monitor.store.retention import DAY_S, Pruned
from station.cli import main

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC).timestamp()
RETENTION = 30  # days


class Clock:
    """The store's clock, moved by the test."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def readings(n: int, received: float, chair: str = "c1", step: float = 0.001) -> list[Reading]:
    return [Reading(chair, "hr", 60.0 + i % 40, received + i * step, received + i * step,
                    f"dev-{chair}", i, 0) for i in range(n)]


def write(store: DatabaseStore, rs: list[Reading]) -> None:
    store.add_readings(rs)
    assert store.flush(timeout=30)


def receive_times(backend: Backend) -> list[float]:
    return [r[0] for r in backend.sql("SELECT receive_time FROM readings ORDER BY id")]


def verified(backend: Backend):
    """The records check and the audit chain, as ``chairside audit verify`` runs them."""
    where = backend.database() if backend.name == "postgresql" else backend.section["path"]
    records = verify_records(where, backend.key_file)
    chain = verify_chain(where)
    assert chain.ok, chain.problems
    return records


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(backend: Backend, clock: Clock) -> Iterator[DatabaseStore]:
    s = backend.open(retention_days=RETENTION, prune_interval_s=None, now=clock)
    s.start()
    yield s
    s.close()


def test_old_readings_are_pruned_recent_ones_kept(backend: Backend, store: DatabaseStore) -> None:
    write(store, readings(120, NOW - 40 * DAY_S))
    write(store, readings(50, NOW - 1 * DAY_S))
    pruned = store.prune_once()
    assert isinstance(pruned, Pruned)
    assert (pruned.table, pruned.rows, pruned.first_id, pruned.last_id) == ("readings", 120, 1, 120)
    assert pruned.runs == ((1, 120),) and pruned.before == NOW - RETENTION * DAY_S
    assert store.count_readings() == 50
    assert min(receive_times(backend)) == NOW - DAY_S
    assert store.prune_once() is None  # nothing more is due
    assert store.stats()["readings_pruned"] == 120


def test_the_cutoff_itself_is_kept(backend: Backend, store: DatabaseStore) -> None:
    before = NOW - RETENTION * DAY_S
    write(store, [Reading("c1", "hr", 70.0, before - 1e-3, before - 1e-3, "d", 1, 0),
                  Reading("c1", "hr", 71.0, before, before, "d", 2, 0),
                  Reading("c1", "hr", 72.0, before + 1e-3, before + 1e-3, "d", 3, 0)])
    pruned = store.prune_once()
    assert pruned is not None and pruned.rows == 1 and pruned.runs == ((1, 1),)
    assert receive_times(backend) == [before, before + 1e-3]
    assert verified(backend).ok


def test_a_large_prune_takes_bounded_steps_with_ingest_committed_between(
        backend: Backend, store: DatabaseStore, clock: Clock) -> None:
    store.PRUNE_BATCH = 100
    write(store, readings(350, NOW - 40 * DAY_S))
    steps = []
    while (pruned := store.prune_once()) is not None:
        steps.append(pruned)
        # ingest goes on between the steps: each commit lands whole
        write(store, readings(7, clock.t, chair="c2"))
        clock.t += 1.0
    assert [p.rows for p in steps] == [100, 100, 100, 50]
    assert [p.behind for p in steps] == [True, True, True, False]
    assert [p.runs for p in steps] == [((1, 100),), ((101, 200),), ((201, 300),), ((301, 350),)]
    assert store.count_readings("c1") == 0 and store.count_readings("c2") == 7 * 4
    report = verified(backend)
    assert report.ok, report.problems
    assert report.pruned == {"readings": 350} and report.sealed["readings"] == 28


def test_the_writer_prunes_on_its_own_until_caught_up(backend: Backend, clock: Clock) -> None:
    with backend.open() as s:  # retention off: nothing pruned
        write(s, readings(450, NOW - 40 * DAY_S))
    s = backend.open(retention_days=RETENTION, now=clock)
    s.PRUNE_BATCH = 100
    with s:  # checks at start, then again at once while a step stopped at its bound
        write(s, readings(20, NOW, chair="c2"))
        wait_until(lambda: s.stats()["readings_pruned"] == 450, what="the old readings pruned")
        assert s.stats()["prune_steps"] == 5 and s.count_readings("c1") == 0
        assert s.count_readings("c2") == 20
    assert verified(backend).ok


def test_verify_is_ok_after_pruning_and_still_finds_a_forged_deletion(
        backend: Backend, store: DatabaseStore) -> None:
    write(store, readings(60, NOW - 40 * DAY_S))
    write(store, readings(40, NOW - 40 * DAY_S + 10))
    write(store, readings(30, NOW - DAY_S))
    backend.sql("DELETE FROM readings WHERE id = 70")  # an old reading, deleted before retention
    pruned = store.prune_once()
    assert pruned is not None and pruned.runs == ((1, 69), (71, 100)) and pruned.rows == 99
    report = verified(backend)
    assert not report.ok
    assert report.problems == ["readings: row 70 deleted (sealed by ledger entry 2, whose other rows "
                               "were pruned)"], report.problems
    assert report.pruned == {"readings": 99} and report.sealed["readings"] == 31  # 30 and row 70
    backend.sql("DELETE FROM readings WHERE id = 120")  # a recent one: deleted, as ever
    problems = verified(backend).problems
    assert "readings: row 120 deleted (sealed by ledger entry 3; the batch's other rows can no " \
           "longer be checked)" in problems


def test_a_batch_cut_by_the_cutoff_keeps_its_remaining_rows_checked(
        backend: Backend, store: DatabaseStore, clock: Clock) -> None:
    before = NOW - RETENTION * DAY_S
    write(store, readings(10, before - 5, step=1.0))  # one batch: 5 old, 5 not yet
    assert store.prune_once().runs == ((1, 5),)  # type: ignore[union-attr]
    report = verified(backend)
    assert report.ok and report.pruned == {"readings": 5} and report.sealed["readings"] == 5
    backend.sql("DELETE FROM readings WHERE id = 8")
    assert verified(backend).problems == ["readings: row 8 deleted (sealed by ledger entry 1, whose "
                                          "other rows were pruned)"]
    backend.sql("INSERT INTO readings (id, chair, parameter, value, device_time, receive_time, device, "
                "seq, flags) VALUES (3, 'c1', 'hr', 1, ?, ?, 'evil', 0, 0)", (NOW, NOW))
    assert "readings: row 3 present although pruned (inserted again, not by Chairside)" in \
        verified(backend).problems


def test_each_run_is_an_audited_action_on_the_chain(backend: Backend, store: DatabaseStore) -> None:
    store.PRUNE_BATCH = 40
    write(store, readings(70, NOW - 40 * DAY_S))
    assert store.prune_once() is not None and store.prune_once() is not None
    actions = [a for a in store.operator_actions() if a.action == "retention_pruned"]
    before = NOW - RETENTION * DAY_S
    assert [(a.user, a.time, a.chair, a.target) for a in actions] == [("chairside", NOW, None, None)] * 2
    assert [a.detail for a in actions] == [
        {"table": "readings", "rows": 40, "first_id": 1, "last_id": 40, "before": before},
        {"table": "readings", "rows": 30, "first_id": 41, "last_id": 70, "before": before}]
    where = backend.database() if backend.name == "postgresql" else backend.section["path"]
    chain = verify_chain(where)
    assert chain.ok and chain.rows == 2
    assert verified(backend).sealed["operator_actions"] == 2


def _records(t: float) -> list:
    alarm = Alarm(1, "c1", "SPO2_LOW", "spo2_low", AlarmKind.PHYSIOLOGICAL, Priority.HIGH,
                  AlarmState.ACTIVE, "SpO2 86 < 90", t, t, "spo2", 86.0, 90.0, onset_at=t)
    session = Session(id="s1", chair="c1", patient="MRN 0042", protocol="iron_sucrose", drug="Fe",
                      dose="200 mg", planned_minutes=30.0, nibp_interval_s=None, observation_minutes=30,
                      state=SessionState.ENDED, started_at=t, started_by="nurse.ann", ended_at=t + 60,
                      ended_by="nurse.ann")
    return [AlarmEvent(t, "c1", 1, None, AlarmState.ACTIVE, alarm, None, "raised"), session,
            SessionEvent("s1", "c1", t, SessionEventKind.SESSION_STARTED, "nurse.ann", "", {}),
            OperatorAction(t, "nurse.ann", "acknowledge", "c1", "1", {})]


def test_sessions_alarms_events_and_actions_are_never_pruned(
        backend: Backend, store: DatabaseStore) -> None:
    old = NOW - 3 * RETENTION * DAY_S
    store.add(readings(30, old), _records(old))
    assert store.flush(timeout=30)
    tables = ("alarms", "alarm_events", "sessions", "session_events", "operator_actions")
    counts = {t: backend.sql(f"SELECT count(*) FROM {t}")[0][0] for t in tables}
    assert all(counts.values())
    assert store.prune_once().rows == 30  # type: ignore[union-attr]
    counts["operator_actions"] += 1  # the pruning's own action
    assert {t: backend.sql(f"SELECT count(*) FROM {t}")[0][0] for t in tables} == counts
    assert verified(backend).ok


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_drops_whole_months_never_the_current_one(backend: Backend) -> None:
    jan = dt.datetime(2024, 1, 10, tzinfo=dt.UTC).timestamp()
    feb = dt.datetime(2024, 2, 5, tzinfo=dt.UTC).timestamp()
    clock = Clock(jan)
    s = backend.open(retention_days=400, prune_interval_s=None, now=clock)
    with s:  # opened in January 2024: January to March made
        write(s, readings(80, jan))
        write(s, readings(30, feb))

        def partitions() -> set[str]:
            return {r[0] for r in backend.sql(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
                "WHERE p.relname = 'readings' AND n.nspname = current_schema()")}

        assert partitions() == {"readings_default", "readings_2024_01", "readings_2024_02",
                                "readings_2024_03"}
        clock.t = dt.datetime(2025, 3, 10, tzinfo=dt.UTC).timestamp()  # cutoff: 2024-02-04
        s.SURVEY_IDS = 30  # the month's ids are counted over bounded steps before the drop
        assert [s.prune_once(), s.prune_once()] == [None, None]
        assert "readings_2024_01" in partitions() and s.count_readings() == 110
        pruned = s.prune_once()
        assert pruned is not None and pruned.partition == "readings_2024_01"
        assert (pruned.rows, pruned.runs) == (80, ((1, 80),))
        assert "readings_2024_01" not in partitions()  # the table is gone, not emptied
        assert s.prune_once() is None  # February ends after the cutoff: kept whole
        assert s.count_readings() == 30
        report = verified(backend)
        assert report.ok and report.pruned == {"readings": 80}
        action = s.operator_actions()[-1]
        assert action.detail["partition"] == "readings_2024_01" and action.detail["rows"] == 80

        # a cutoff past today (no retention_days gives one) still spares the current month
        db = s.database.connect()
        try:
            db.begin()
            march = dt.datetime(2024, 3, 20, tzinfo=dt.UTC).timestamp()
            dropped = s.drop_partition(db, march + 60 * DAY_S, march)
            assert dropped is not None and dropped.partition == "readings_2024_02"
            assert s.drop_partition(db, march + 60 * DAY_S, march) is None
            db.rollback()
        finally:
            db.close()
        assert "readings_2024_03" in partitions() and "readings_default" in partitions()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_interleaved_ids_at_a_month_edge_are_recorded_exactly(backend: Backend) -> None:
    jan_end = dt.datetime(2024, 2, 1, tzinfo=dt.UTC).timestamp()
    clock = Clock(jan_end - 3600)
    with backend.open(retention_days=400, prune_interval_s=None, now=clock) as s:
        # one batch straddling the month's end, out of order: ids 1-6 alternate Jan / Feb
        write(s, [Reading("c1", "hr", 70.0, t, t, "d", i, 0)
                  for i, t in enumerate([jan_end - 3, jan_end + 1, jan_end - 2, jan_end + 2,
                                         jan_end - 1, jan_end + 3])])
        clock.t = jan_end + 400 * DAY_S + 10
        pruned = s.prune_once()
        assert pruned is not None and pruned.runs == ((1, 1), (3, 3), (5, 5)) and pruned.rows == 3
        report = verified(backend)
        assert report.ok and report.pruned == {"readings": 3}, report.problems


def test_the_config_value_reaches_the_store(tmp_path: Path) -> None:
    chairs = [{"id": "c1"}]
    config = parse_config({"store": {"path": str(tmp_path / "bay.db"), "retention_days": 90},
                           "chairs": chairs})
    with open_bay_store(config.store, "bay1") as s:
        assert s.retention_days == 90
    with open_bay_store(parse_config({"store": {"path": str(tmp_path / "b.db")}, "chairs": chairs}).store,
                        "bay1") as s:
        assert s.retention_days == 400
    with pytest.raises(ValueError, match="retention_days must be positive"):
        SqliteStore(tmp_path / "c.db", retention_days=0)


def test_audit_verify_stays_ok_after_a_real_bay_is_pruned(tmp_path: Path, capsys) -> None:
    h = Harness(tmp_path)
    bay_activity(h)
    h.feed("hr", 72, seconds=5, chair="c2")
    h.flush()
    h.monitor.close()
    db = h.config.store.path
    tables = ("alarms", "alarm_events", "sessions", "session_events", "operator_actions")
    with open_bay_store(h.config.store, "bay1", prune_interval_s=None) as s:
        n = s.count_readings()
        counts = {t: s._query(f"SELECT count(*) FROM {t}")[0][0] for t in tables}
        assert s.prune_once(h.clock.now() + 401 * DAY_S).rows == n  # type: ignore[union-attr]
        assert s.count_readings() == 0
        counts["operator_actions"] += 1
        assert {t: s._query(f"SELECT count(*) FROM {t}")[0][0] for t in tables} == counts
    assert main(["audit", "verify", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "audit trail OK" in out and "records OK: " in out
    assert "readings 0, " in out and f"pruned by retention: readings {n}" in out


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_gives_up_rather_than_queue_behind_a_long_read(backend: Backend) -> None:
    from monitor.store.db import DbError

    jan = dt.datetime(2024, 1, 10, tzinfo=dt.UTC).timestamp()
    clock = Clock(jan)
    with backend.open(retention_days=400, prune_interval_s=None, now=clock) as s:
        s.LOCK_TIMEOUT_MS = 50
        write(s, readings(10, jan))
        clock.t = dt.datetime(2025, 3, 10, tzinfo=dt.UTC).timestamp()
        reader = s.database.connect()  # an export mid-stream: a read transaction open on readings
        try:
            reader.begin()
            reader.execute("SELECT count(*) FROM readings").fetchone()
            with pytest.raises(DbError, match="lock timeout"):
                s.prune_once()
        finally:
            reader.rollback()
            reader.close()
        assert s.count_readings() == 10  # rolled back whole: nothing half done
        assert [a for a in s.operator_actions() if a.action == "retention_pruned"] == []
        pruned = s.prune_once()  # the read is over
        assert pruned is not None and pruned.rows == 10
        assert verified(backend).ok
