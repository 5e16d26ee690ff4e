"""The durable store: round trips, tickets, batching, retries, migrations, crash safety.

Real SQLite files in tmp_path. Nothing sleeps to let time pass: tests wait on conditions
(wait_durable, flush, events) with deadlines.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_until
from store_backends import Backend

import monitor.store.schema as store_module
from monitor.readings import QualityFlag, Reading
from monitor.records import (
    RECEIPTS_KEPT_S,
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
from monitor.store import SqliteStore, StoreError

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "chairside.db"


@pytest.fixture
def store(backend: Backend):
    """The contract tests run on both backends (the ``backend`` fixture: SQLite, and a
    private PostgreSQL); tests that need a SQLite file say ``path``."""
    s = backend.open()
    s.start()
    yield s
    s.close()


def sql(path: Path, query: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(query, params).fetchall()


def reading(chair="c1", parameter="hr", value=72.0, t=T0, seq=None, flags=0) -> Reading:
    return Reading(chair, parameter, value, t, t + 0.25, f"dev-{chair}", seq, flags)


def alarm(id=1, state=AlarmState.ACTIVE, chair="c1", **kw) -> Alarm:
    fields = dict(
        id=id,
        chair=chair,
        code="SPO2_LOW",
        rule="spo2_low",
        kind=AlarmKind.PHYSIOLOGICAL,
        priority=Priority.HIGH,
        state=state,
        message="SpO2 86 < 90",
        raised_at=T0,
        updated_at=T0,
        parameter="spo2",
        value=86,
        limit=90.0,
    )
    return Alarm(**{**fields, **kw})


def event(a: Alarm, old: AlarmState | None, t: float, user=None, note="raised") -> AlarmEvent:
    return AlarmEvent(t, a.chair, a.id, old, a.state, a, user, note)


def session(id="s1", chair="c1", state=SessionState.MONITORING, started_at=T0, **kw) -> Session:
    fields = dict(
        id=id,
        chair=chair,
        patient="MRN 0042",
        protocol="iron_sucrose",
        drug="Fe",
        dose="200 mg",
        planned_minutes=30.0,
        nibp_interval_s=None,
        observation_minutes=30,
        state=state,
        started_at=started_at,
        started_by="nurse_a",
    )
    return Session(**{**fields, **kw})


# ---- readings --------------------------------------------------------------------------
def test_readings_round_trip_exactly(store: SqliteStore) -> None:
    rs = [
        reading(value=None, seq=None, flags=QualityFlag.SENSOR_OFF | QualityFlag.MOTION),
        reading(parameter="spo2", value=97, t=T0 + 0.5, seq=7),
        reading(value=71.25, t=T0 + 1, seq=8, flags=int(QualityFlag.DEMO)),
        reading(chair="c2", value=1e-300, t=T0 + 1, seq=0),
    ]
    assert store.wait_durable(store.add_readings(rs), 5)
    assert list(store.iter_readings("c1", T0, None)) == rs[:3]
    assert list(store.iter_readings("c2", 0.0, None)) == rs[3:]
    back = next(store.iter_readings("c1", T0, None))
    assert back.value is None and back.seq is None and back.flags == 0b100000000001
    assert store.count_readings() == 4 and store.count_readings("c1") == 3
    assert store.count_readings("nobody") == 0


def test_iter_readings_streams_half_open_range_in_time_order(store: SqliteStore) -> None:
    times = [T0 + i for i in (5, 1, 3, 0, 4, 2, 6)]  # submitted out of time order
    store.add_readings([reading(t=t, seq=int(t - T0)) for t in times])
    assert store.flush()
    got = list(store.iter_readings("c1", T0 + 1, T0 + 6, batch=2))  # end is exclusive
    assert [r.seq for r in got] == [1, 2, 3, 4, 5]
    assert [r.seq for r in store.iter_readings("c1", T0 + 4, None, batch=1)] == [4, 5, 6]


def test_recent_readings_builds_sorted_arrays(store: SqliteStore) -> None:
    rs = [
        reading("c1", "hr", 70.0, T0 + 2),
        reading("c1", "hr", None, T0 + 1, flags=QualityFlag.SENSOR_OFF),
        reading("c1", "spo2", 98.0, T0 + 1.5),
        reading("c1", "hr", 60.0, T0 - 10),  # older than `since`
        reading("c2", "hr", 80.0, T0 + 3),
    ]
    store.add_readings(rs)
    assert store.flush()
    got = {(c, p): arrays for c, p, *arrays in store.recent_readings(T0)}
    assert set(got) == {("c1", "hr"), ("c1", "spo2"), ("c2", "hr")}
    t, v, f = got[("c1", "hr")]
    assert t.dtype == np.float64 and v.dtype == np.float64 and f.dtype == np.uint16
    np.testing.assert_array_equal(t, [T0 + 1, T0 + 2])
    np.testing.assert_array_equal(v, [np.nan, 70.0])
    np.testing.assert_array_equal(f, [int(QualityFlag.SENSOR_OFF), 0])
    np.testing.assert_array_equal(got[("c2", "hr")][1], [80.0])
    assert list(store.recent_readings(T0 + 100)) == []


# ---- records ---------------------------------------------------------------------------
def test_alarm_events_round_trip_and_upsert_keeps_latest(store: SqliteStore, backend: Backend) -> None:
    a1 = alarm(1)
    a1_ack = alarm(
        1,
        AlarmState.ACKNOWLEDGED,
        updated_at=T0 + 5,
        acknowledged_by="nurse_a",
        acknowledged_at=T0 + 5,
    )
    a1_clr = alarm(
        1,
        AlarmState.CLEARED,
        updated_at=T0 + 9,
        acknowledged_by="nurse_a",
        acknowledged_at=T0 + 5,
        cleared_at=T0 + 9,
        value=None,
    )
    a2 = alarm(
        2,
        chair="c2",
        code="NO_DATA",
        kind=AlarmKind.TECHNICAL,
        priority=Priority.LOW,
        parameter=None,
        value=None,
        limit=None,
        raised_at=T0 + 7,
        updated_at=T0 + 7,
    )
    events = [
        event(a1, None, T0),
        event(a1_ack, AlarmState.ACTIVE, T0 + 5, user="nurse_a", note="acknowledged"),
        event(a2, None, T0 + 7),
        event(a1_clr, AlarmState.ACKNOWLEDGED, T0 + 9, note="condition cleared"),
    ]
    store.add_records(events[:2])
    store.add_records(events[2:])
    assert store.flush()
    assert store.alarm_events() == events
    assert store.get_alarm(1) == a1_clr and store.get_alarm(2) == a2
    assert store.get_alarm(3) is None
    assert store.open_alarms() == [a2]
    assert store.max_alarm_id() == 2
    assert backend.sql("SELECT count(*) FROM alarms") == [(2,)]
    assert store.alarm_events(chair="c2") == [events[2]]
    assert store.alarm_events(since=T0 + 5, until=T0 + 9) == events[1:3]  # until exclusive
    assert store.alarm_events(limit=2) == events[2:]  # the latest two, in time order
    assert store.alarm_events(chair="c1", since=T0 + 1, limit=1) == [events[3]]


def test_sessions_round_trip_filters_and_order(store: SqliteStore) -> None:
    s1 = session(
        baseline={"hr": 72.5, "nibp_sys": 121.0},
        baseline_source="captured",
        limit_overrides=({"parameter": "hr", "high": 120, "tags": ["x"]},),
    )
    s1_inf = session(
        state=SessionState.INFUSING,
        infusion_started_at=T0 + 60,
        updated_at=T0 + 60,
        baseline=s1.baseline,
        limit_overrides=s1.limit_overrides,
    )
    s1_end = session(
        state=SessionState.ENDED, ended_at=T0 + 900, ended_by="nurse_b", updated_at=T0 + 900
    )
    s2 = session("s2", chair="c2", started_at=T0 + 100)
    store.add_records([s1, s2, s1_inf])
    assert store.flush()
    assert store.get_session("s1") == s1_inf
    assert store.open_sessions() == [s1_inf, s2]
    store.add_records([s1_end])
    assert store.flush()
    assert store.get_session("s1") == s1_end and store.get_session("nope") is None
    assert store.open_sessions() == [s2]
    assert store.sessions() == [s2, s1_end]
    assert store.sessions(chair="c1") == [s1_end]
    assert store.sessions(limit=1) == [s2]


def test_session_events_and_operator_actions_round_trip(store: SqliteStore) -> None:
    evs = [
        SessionEvent("s1", "c1", T0, SessionEventKind.SESSION_STARTED, "nurse_a"),
        SessionEvent(
            "s1",
            "c1",
            T0 + 60,
            SessionEventKind.RATE_CHANGED,
            "nurse_a",
            "rate 250 mL/h",
            {"rate_ml_h": 250.0, "pump": {"id": 3}},
        ),
        SessionEvent("s2", "c2", T0 + 30, SessionEventKind.NOTE, "nurse_b", "ok"),
    ]
    acts = [
        OperatorAction(T0, "nurse_a", "start_session", "c1", "s1", {"protocol": "iron"}),
        OperatorAction(T0 + 5, "admin", "reload_config"),
        OperatorAction(T0 + 9, "nurse_a", "acknowledge", "c1", "1", {"alarms": [1, 2]}),
    ]
    store.add_records([evs[1], acts[0], evs[2], acts[1], evs[0], acts[2]])
    assert store.flush()
    assert store.session_events("s1") == [evs[0], evs[1]]  # time order
    assert store.session_events("s2") == [evs[2]] and store.session_events("s3") == []
    assert store.operator_actions() == acts
    assert store.operator_actions(chair="c1") == [acts[0], acts[2]]
    assert store.operator_actions(since=T0 + 5) == acts[1:]


def test_unstorable_records_are_refused_on_the_callers_thread(store: SqliteStore) -> None:
    with pytest.raises(TypeError, match="Alarm"):
        store.add_records([alarm()])
    with pytest.raises(ValueError, match="alarm 1 carries alarm 2"):
        store.add_records([AlarmEvent(T0, "c1", 1, None, AlarmState.ACTIVE, alarm(2))])
    with pytest.raises(TypeError):  # not JSON
        store.add_records([OperatorAction(T0, "u", "x", detail={"when": object()})])
    with pytest.raises(TypeError, match="Reading"):
        store.add_readings([("c1", "hr", 1.0, T0, T0, "d", None, 0)])  # type: ignore[list-item]
    assert store.stats()["pending"] == 0


def test_submission_order_is_kept_across_batches(store: SqliteStore, backend: Backend) -> None:
    seq = 0
    for i in range(30):
        store.add_readings([reading(seq=(seq := seq + 1)) for _ in range(7)])
        store.add_records([OperatorAction(T0 + i, "u", f"a{i}")])
        if i % 10 == 0:
            assert store.flush()
    assert store.flush()
    seqs = [s for (s,) in backend.sql("SELECT seq FROM readings ORDER BY id")]
    assert seqs == list(range(1, seq + 1))
    ids = backend.sql("SELECT action FROM operator_actions ORDER BY id")
    assert [a for (a,) in ids] == [f"a{i}" for i in range(30)]


# ---- tickets, listeners ----------------------------------------------------------------
def test_tickets_wait_durable_and_listener(store: SqliteStore) -> None:
    seen: list[int] = []
    called = threading.Event()

    def listener(ticket: int) -> None:
        seen.append(ticket)
        called.set()

    store.add_commit_listener(listener)
    t1 = store.add_readings([reading()])
    t2 = store.add_records([OperatorAction(T0, "u", "x")])
    assert t2 > t1 > 0
    assert store.add_readings([]) == t2  # nothing new to wait for
    assert store.wait_durable(t2, 5)
    assert store.committed_ticket >= t2
    assert called.wait(5) and max(seen) >= t2
    assert store.wait_durable(t2 + 1000, 0.01) is False  # never submitted: times out


def test_message_receipts_are_kept_with_their_readings_for_an_hour(store: SqliteStore) -> None:
    now = time.time()
    store.add([reading()], [MessageReceipt(now - RECEIPTS_KEPT_S - 60, "gw", "old"),
                            MessageReceipt(now - 5, "gw", "k1"), MessageReceipt(now, "other", "k2")])
    assert store.flush(10)
    assert store.message_receipts("gw", 0) == ["k1"]  # older than an hour: pruned by the writer
    assert store.message_receipts("other", now - 1) == ["k2"]
    assert store.message_receipts("gw", now - 1) == []


def test_listener_exception_is_logged_and_writer_keeps_going(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    called = threading.Event()

    def bad(ticket: int) -> None:
        raise RuntimeError("listener boom")

    store.add_commit_listener(bad)
    store.add_commit_listener(lambda ticket: called.set())  # runs after `bad`
    with caplog.at_level(logging.ERROR, logger="monitor.store"):
        assert store.wait_durable(store.add_readings([reading()]), 5)
        assert called.wait(5)
    assert any(r.exc_info and "listener boom" in str(r.exc_info[1]) for r in caplog.records)
    assert store.wait_durable(store.add_readings([reading(seq=2)]), 5)
    assert store.stats()["writer_alive"] and store.count_readings() == 2


# ---- batching, WAL ---------------------------------------------------------------------
def test_100k_readings_go_in_few_batches_exactly_once(backend: Backend) -> None:
    with backend.open(commit_interval=0.2) as s:  # default commit_interval and max_batch
        for chunk in range(100):
            s.add_readings(
                [
                    reading(f"c{i % 10}", seq=chunk * 1000 + i, t=T0 + chunk * 1000 + i)
                    for i in range(1000)
                ]
            )
        assert s.flush(30)
        stats = s.stats()
        assert stats["readings_written"] == 100_000 and stats["pending"] == 0
        assert 1 <= stats["batches"] <= 6, stats
        assert s.count_readings() == 100_000 and s.count_readings("c3") == 10_000
        some = list(s.iter_readings("c7", T0 + 55_000, T0 + 55_100))
        assert some == [reading("c7", seq=55_000 + i, t=T0 + 55_000 + i) for i in range(7, 100, 10)]
    dups = "SELECT seq FROM readings GROUP BY seq HAVING count(*) > 1"
    assert backend.sql(dups) == []
    assert backend.sql("SELECT min(seq), max(seq), count(DISTINCT seq) FROM readings") == [
        (0, 99_999, 100_000)
    ]


def test_wal_mode_and_integrity_after_close(path: Path) -> None:
    with SqliteStore(path, commit_interval=0.01) as s:
        s.add_readings([reading(seq=i) for i in range(100)])
        s.add_records([event(alarm(), None, T0), session()])
        assert s.flush()
        assert sql(path, "PRAGMA journal_mode") == [("wal",)]
    assert sql(path, "PRAGMA integrity_check") == [("ok",)]
    assert sql(path, "PRAGMA foreign_key_check") == []
    assert sql(path, "SELECT count(*) FROM readings") == [(100,)]


def test_close_writes_pending_is_idempotent_and_refuses_more(path: Path) -> None:
    s = SqliteStore(path, commit_interval=1.0)  # never started: close writes inline
    s.add_readings([reading(seq=1)])
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.add_readings([reading()])
    with pytest.raises(StoreError, match="closed"):
        s.count_readings()
    with SqliteStore(path, commit_interval=1.0) as s2:  # started: close flushes
        s2.add_readings([reading(seq=2)])
    assert sql(path, "SELECT seq FROM readings ORDER BY id") == [(1,), (2,)]


def test_bad_arguments_are_refused(path: Path) -> None:
    for interval in (0.0, 0.005, 1.5):
        with pytest.raises(ValueError, match="commit_interval"):
            SqliteStore(path, commit_interval=interval)


# ---- failures --------------------------------------------------------------------------
def _refuse_readings(path: Path, why: str) -> None:
    """A real failing commit: a trigger, added from a second connection as another process
    could, makes every insert into ``readings`` raise inside the writer's transaction."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(f"CREATE TRIGGER refuse_readings BEFORE INSERT ON readings "
                     f"BEGIN SELECT RAISE(ABORT, '{why}'); END")


def _accept_readings(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER refuse_readings")


def test_failed_write_is_retried_with_nothing_lost(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = SqliteStore(path, commit_interval=0.01)
    _refuse_readings(path, "database or disk is full (trigger)")
    with caplog.at_level(logging.WARNING, logger="monitor.store"), s:
        ticket = s.add_readings([reading(seq=1), reading(seq=2)])
        wait_until(lambda: s.stats()["failed_batches"] >= 1, what="the first write to fail")
        assert s.stats()["failing"] == "database or disk is full (trigger)"
        newer = s.add_readings([reading(seq=3)])  # arrives while the first write is failing
        assert newer == ticket + 1 and not s.wait_durable(ticket, 0.01)
        _accept_readings(path)  # the disk has room again
        assert s.wait_durable(newer, 5)
        stats = s.stats()
    # the failed batch is retried together with the newer one: one commit of all three
    assert stats["failed_batches"] >= 1 and stats["batches"] == 1
    assert stats["readings_written"] == 3 and stats["pending"] == 0 and stats["failing"] is None
    assert "disk is full (trigger)" in caplog.text
    assert f"written after {stats['failed_batches']} failures" in caplog.text
    assert sql(path, "SELECT seq FROM readings ORDER BY id") == [(1,), (2,), (3,)]


def test_close_gives_up_on_a_disk_that_keeps_failing(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = SqliteStore(path, commit_interval=0.01)
    _refuse_readings(path, "disk I/O error (trigger)")
    s.start()
    s.add_readings([reading()])
    assert s.flush(0.05) is False
    with caplog.at_level(logging.ERROR, logger="monitor.store"):
        s.close(timeout=0.1)
    assert "disk I/O error (trigger)" in caplog.text
    assert "1 rows that could not be written" in caplog.text
    assert s.stats()["failed_batches"] >= 2 and not s.stats()["writer_alive"]
    assert sql(path, "SELECT count(*) FROM readings") == [(0,)]


def test_open_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StoreError, match=r"x\.db.*does not exist"):
        SqliteStore(missing)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreError, match=r"junk\.db.*not a database"):
        SqliteStore(junk)
    with pytest.raises(StoreError, match="directory"):
        SqliteStore(tmp_path)


def test_unreadable_file_is_refused(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    SqliteStore(path).close()
    # chmod 0 does not stop root (CI runs as root), so the permission answer is patched
    monkeypatch.setattr("monitor.store.sqlite.os.access", lambda p, mode: False)
    with pytest.raises(StoreError, match=r"chairside\.db.*not readable"):
        SqliteStore(path)


# ---- migrations ------------------------------------------------------------------------
def test_newer_schema_is_refused(path: Path) -> None:
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    known = len(store_module.MIGRATIONS)
    with pytest.raises(StoreError, match=rf"chairside\.db has schema version 99.*knows \({known}\)"):
        SqliteStore(path)


def test_appended_migrations_upgrade_a_v1_database(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteStore(path, commit_interval=0.01) as s:
        s.add_readings([reading(seq=1)])
    current = len(store_module.MIGRATIONS)
    assert sql(path, "PRAGMA user_version") == [(current,)]

    def v3(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO extra (note) VALUES ('a;b')")

    v2 = "ALTER TABLE readings ADD COLUMN unit TEXT; CREATE TABLE extra (note TEXT)"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, v2, v3])
    SqliteStore(path).close()
    assert sql(path, "PRAGMA user_version") == [(current + 2,)]
    assert sql(path, "SELECT seq, unit FROM readings") == [(1, None)]
    assert sql(path, "SELECT note FROM extra") == [("a;b",)]
    SqliteStore(path).close()  # nothing left to apply
    assert sql(path, "SELECT count(*) FROM extra") == [(1,)]


def test_failing_migration_rolls_back(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    SqliteStore(path).close()
    broken = "CREATE TABLE fine (x); CREATE TABLE broken ("
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, broken])
    with pytest.raises(StoreError, match=r"chairside\.db"):
        SqliteStore(path)
    assert sql(path, "PRAGMA user_version") == [(len(store_module.MIGRATIONS) - 1,)]
    assert sql(path, "SELECT name FROM sqlite_master WHERE name = 'fine'") == []


# ---- crash durability ------------------------------------------------------------------
CHILD = r"""
import sys, threading, time
from monitor.readings import Reading
from monitor.store import SqliteStore

store = SqliteStore(sys.argv[1], commit_interval=0.01)
lock = threading.Lock()
marks = []  # (ticket, highest seq submitted with it), tickets increasing

def on_commit(ticket):
    with lock:
        seq = max((s for t, s in marks if t <= ticket), default=-1)
    print(ticket, seq, flush=True)

store.add_commit_listener(on_commit)
store.start()
seq = 0
chairs = ["c1", "c2", "c3", "c4", "c5"]
for i in range(1000):
    batch = []
    for _ in range(10):
        batch += [Reading(c, "hr", 70.0, 1e9 + seq, 1e9 + seq, "dev", seq, 0) for c in chairs]
        seq += 1
    with lock:
        marks.append((store.add_readings(batch), seq - 1))
    time.sleep(0.001)  # pace the producer a little
print("done", flush=True)
sys.stdin.read()  # wait to be killed
"""


@pytest.mark.slow
def test_sigkill_loses_nothing_that_was_reported_committed(path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "child.err", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    commits: list[tuple[int, int]] = []
    try:
        deadline = time.monotonic() + 30
        while len(commits) < 8 or commits[-1][1] < 100:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, (tmp_path / "child.err").read_text()
            if line.strip() != "done":
                ticket, seq = map(int, line.split())
                commits.append((ticket, seq))
            assert time.monotonic() < deadline, "child did not report commits in time"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
        while (line := lines.get_nowait()) is not None:  # reported before it died
            if line.strip() != "done":
                commits.append(tuple(map(int, line.split())))  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL
    assert [t for t, _ in commits] == sorted(t for t, _ in commits)
    last_seq = max(seq for _, seq in commits)
    assert sql(path, "PRAGMA integrity_check") == [("ok",)]
    dups = "SELECT chair, parameter, seq FROM readings GROUP BY chair, parameter, seq "
    dups += "HAVING count(*) > 1"
    assert sql(path, dups) == []
    per_chair = sql(path, "SELECT chair, min(seq), max(seq), count(*) FROM readings GROUP BY chair")
    assert [c for c, *_ in per_chair] == ["c1", "c2", "c3", "c4", "c5"]
    for _chair, lo, hi, n in per_chair:
        assert lo == 0 and n == hi + 1  # a contiguous prefix
        assert hi >= last_seq  # everything reported committed is there
    with SqliteStore(path) as reopened:  # and the store opens again
        assert reopened.count_readings() == sum(n for *_, n in per_chair)
