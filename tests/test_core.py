"""The core end to end on a real SQLite file: ingest, rejection, sessions, alarms, restart."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from conftest import T0, Harness

from monitor.core import MonitorError, NotFound
from monitor.readings import QualityFlag, Reading, RejectReason
from monitor.records import AlarmState, SessionEventKind, SessionState

K = SessionEventKind


# --- one way in, and what it refuses ------------------------------------------------------


def test_accepted_readings_reach_buffer_and_store(harness: Harness):
    m = harness.monitor
    result = m.ingest([harness.reading("hr", 72), harness.reading("spo2", 98, seq=5)])
    assert (result.accepted, result.rejected) == (2, ())
    assert m.store.wait_durable(result.ticket, timeout=10)
    assert m.store.count_readings("c1") == 2
    status = m.status("c1")
    assert status.vitals["hr"].value == 72 and status.vitals["spo2"].value == 98
    assert status.connection == "online"


@pytest.mark.parametrize(("reading", "reason"), [
    (dict(chair="c99"), RejectReason.UNKNOWN_CHAIR),
    (dict(parameter="etco2"), RejectReason.UNKNOWN_PARAMETER),
    (dict(value=math.nan), RejectReason.NOT_FINITE),
    (dict(value=math.inf), RejectReason.NOT_FINITE),
    (dict(value="72"), RejectReason.NOT_A_NUMBER),
    (dict(value=True), RejectReason.NOT_A_NUMBER),
    (dict(value=301), RejectReason.IMPLAUSIBLE),
    (dict(value=19.5), RejectReason.IMPLAUSIBLE),
    (dict(device_time=T0 + 301), RejectReason.FUTURE_TIME),
    (dict(device_time=T0 - 12 * 3600 - 1), RejectReason.TOO_OLD),
    (dict(device_time=math.nan), RejectReason.BAD_TIME),
    (dict(device_time="yesterday"), RejectReason.BAD_TIME),
    (dict(receive_time=None), RejectReason.BAD_TIME),
    (dict(seq="12"), RejectReason.BAD_FIELD),
    (dict(seq=True), RejectReason.BAD_FIELD),
    (dict(flags=1.5), RejectReason.BAD_FIELD),
    (dict(device=None), RejectReason.BAD_FIELD),
])
def test_each_rejection_reason_is_counted_logged_and_not_stored(harness: Harness, reading,
                                                               reason, caplog):
    good = harness.reading("hr", 72)
    bad = good._replace(**reading)
    with caplog.at_level(logging.WARNING, logger="chairside.core"):
        result = harness.monitor.ingest([bad, good])  # never raises; the good one is kept
    assert result.accepted == 1 and result.rejected == ((0, reason),)
    assert harness.monitor.rejections.counts == {reason.value: 1}
    assert f"reading rejected: {reason.value}" in caplog.text
    harness.flush()
    rows = list(harness.monitor.store.iter_readings("c1", 0, None))
    assert rows == [good]


def test_plausible_range_edges_are_inclusive(harness: Harness):
    result = harness.monitor.ingest([harness.reading("spo2", 50), harness.reading("spo2", 100),
                                     harness.reading("nibp_dia", 15), harness.reading("hr", 300)])
    assert result.accepted == 4


def test_numpy_and_int_fields_are_stored_as_plain_python_numbers(harness: Harness):
    r = harness.reading("hr", np.float32(72))._replace(
        device_time=np.float64(T0), receive_time=int(T0), seq=np.int64(9), flags=np.uint16(2))
    result = harness.monitor.ingest([r, harness.reading("spo2", 97)])
    assert result.accepted == 2
    assert harness.monitor.store.wait_durable(result.ticket, timeout=10)  # the writer got plain types
    first = next(iter(harness.monitor.store.iter_readings("c1", 0, None)))
    assert first == Reading("c1", "hr", 72.0, T0, T0, "dev-1", 9, 2)
    assert [type(x) for x in first[2:5]] == [float, float, float]


def test_a_reading_older_than_a_full_buffer_is_too_old(tmp_path):
    h = Harness(tmp_path, buffers={"continuous_hours": 0.001})  # 3.6 s of 1 Hz: 4 samples
    for i in range(4):
        assert h.monitor.ingest([h.reading("hr", 70, dt=-i * 0.5)]).accepted == 1
    result = h.monitor.ingest([h.reading("hr", 70, dt=-3.5)])
    assert result.rejected == ((0, RejectReason.TOO_OLD),)
    h.monitor.close()


def test_flags_only_reading_is_kept_with_no_value(harness: Harness):
    r = harness.reading("spo2", None, flags=QualityFlag.SENSOR_OFF)
    assert harness.monitor.ingest([r]).accepted == 1
    harness.flush()
    (stored,) = harness.monitor.store.iter_readings("c1", 0, None)
    assert stored.value is None and stored.flags == QualityFlag.SENSOR_OFF


def test_rejection_log_is_throttled_but_every_one_is_counted(harness: Harness, caplog):
    bad = harness.reading("hr", 999)
    with caplog.at_level(logging.WARNING, logger="chairside.core"):
        for _ in range(100):
            harness.monitor.ingest([bad])
    assert harness.monitor.rejections.counts["implausible"] == 100
    assert len(caplog.records) < 5


# --- alarms through the core --------------------------------------------------------------


def test_alarm_events_are_stored_and_heard(harness: Harness):
    heard = []
    harness.monitor.subscribe(heard.extend)
    harness.feed("spo2", 86, seconds=16)
    (alarm,) = harness.monitor.open_alarms()
    assert alarm.message == "SpO2 86 % < 90 %" and heard[0].alarm.id == alarm.id
    acked = harness.monitor.acknowledge(alarm.id, "nurse.ann")
    assert acked.state is AlarmState.ACKNOWLEDGED
    harness.flush()
    store = harness.monitor.store
    assert [e.new_state for e in store.alarm_events()] == [AlarmState.ACTIVE, AlarmState.ACKNOWLEDGED]
    (action,) = store.operator_actions()
    assert (action.user, action.action, action.target) == ("nurse.ann", "acknowledge", str(alarm.id))


def test_acknowledge_errors_name_the_problem(harness: Harness):
    with pytest.raises(NotFound, match="no alarm with id 7"):
        harness.monitor.acknowledge(7, "n")
    harness.feed("nibp_sys", 190)
    (alarm,) = harness.monitor.open_alarms()
    harness.feed("nibp_sys", 120)
    harness.flush()
    with pytest.raises(MonitorError, match=f"alarm {alarm.id} is cleared"):
        harness.monitor.acknowledge(alarm.id, "n")


def test_pause_audio_is_audited(harness: Harness):
    harness.feed("nibp_sys", 190)
    (paused,) = harness.monitor.pause_audio("c1", "nurse.bob", duration_s=30)
    assert paused.state is AlarmState.PAUSED
    harness.flush()
    (action,) = harness.monitor.store.operator_actions()
    assert action.action == "pause_audio" and action.detail["until"] == paused.paused_until


def test_connection_state_goes_stale_then_offline_and_back(harness: Harness):
    m = harness.monitor
    assert m.status("c1").connection == "offline"  # never heard from
    m.ingest([harness.reading("hr", 70)])
    assert m.status("c1").connection == "online"
    harness.clock.advance(10)
    assert m.status("c1").connection == "stale"
    assert m.status("c1").vitals["hr"].stale
    harness.clock.advance(50)
    assert m.status("c1").connection == "offline"
    m.ingest([harness.reading("hr", 70)])
    assert m.status("c1").connection == "online"
    m.report_connection("c1", "dev-1", online=False, detail="unplugged")
    assert m.status("c1").connection == "offline"


def test_news2_uses_current_values_only(harness: Harness):
    harness.monitor.ingest([harness.reading("spo2", 93), harness.reading("pr", 115),
                            harness.reading("nibp_sys", 105)])
    score = harness.monitor.status("c1").news2
    assert score.components == {"spo2": 2, "systolic": 1, "pulse": 2} and score.total == 5
    harness.clock.advance(20)  # SpO2 and pulse are stale now; a stale value is not scored
    score = harness.monitor.status("c1").news2
    assert score.missing == ("spo2", "pulse") and score.components == {"systolic": 1}


# --- sessions -----------------------------------------------------------------------------


def test_session_workflow_is_recorded(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN 0042", "nurse.ann", protocol="magnesium")
    assert (s.drug, s.nibp_interval_s, s.state) == ("Magnesium sulfate", 900, SessionState.MONITORING)
    harness.clock.advance(60)
    m.session_step(s.id, K.INFUSION_STARTED, "nurse.ann", "started at 100 mL/h")
    m.session_step(s.id, K.RATE_CHANGED, "nurse.ann", "200 mL/h")
    m.session_step(s.id, K.NOTE, "nurse.ann", "patient reports flushing")
    s = m.session_step(s.id, K.OBSERVATION_STARTED, "nurse.ann")
    assert s.state is SessionState.OBSERVATION and s.infusion_stopped_at == T0 + 60
    s = m.end_session(s.id, "nurse.ann")
    assert s.state is SessionState.ENDED and m.status("c1").session is None
    harness.flush()
    kinds = [e.kind for e in m.store.session_events(s.id)]
    assert kinds == [K.SESSION_STARTED, K.INFUSION_STARTED, K.RATE_CHANGED, K.NOTE,
                     K.OBSERVATION_STARTED, K.SESSION_ENDED]
    assert m.store.get_session(s.id) == s
    assert len(m.store.operator_actions()) == 6


def test_session_errors(harness: Harness):
    m = harness.monitor
    with pytest.raises(MonitorError, match="unknown protocol preset 'nope'"):
        m.start_session("c1", "P1", "n", protocol="nope")
    with pytest.raises(MonitorError, match="needs a patient label"):
        m.start_session("c1", "  ", "n")
    with pytest.raises(NotFound, match="no chair 'c9'"):
        m.start_session("c9", "P1", "n")
    s = m.start_session("c1", "P1", "n")
    with pytest.raises(MonitorError, match="already has session"):
        m.start_session("c1", "P2", "n")
    with pytest.raises(MonitorError, match="cannot record rate changed while the session is monitoring"):
        m.session_step(s.id, K.RATE_CHANGED, "n", "100 mL/h")
    m.end_session(s.id, "n")
    with pytest.raises(MonitorError, match="has ended"):
        m.session_step(s.id, K.NOTE, "n", "late note")
    with pytest.raises(NotFound, match="no session with id 'zzz'"):
        m.end_session("zzz", "n")


def test_protocol_limits_apply_for_the_session_and_end_with_it(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "P1", "n", protocol="magnesium")  # NIBP sys < 95 medium
    harness.feed("nibp_sys", 93)
    assert [a.code for a in m.open_alarms()] == ["NIBP_SYS_LOW"]
    m.end_session(s.id, "n", patient_left=True)
    harness.feed("nibp_sys", 93)
    assert m.open_alarms() == []  # back to the default < 90


def test_nurse_changes_session_limits(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "P1", "n")
    s = m.set_limits(s.id, [{"parameter": "hr", "high": 100, "priority": "medium", "delay_s": 5}],
                     "charge.nurse")
    assert s.limit_overrides == ({"parameter": "hr", "high": 100.0, "priority": "medium",
                                  "delay_s": 5.0},)
    harness.feed("hr", 105, seconds=6)
    assert [a.message for a in m.open_alarms()] == ["HR 105 bpm > 100"]
    with pytest.raises(MonitorError, match=r"rules\[0\].parameter: unknown parameter 'xx'"):
        m.set_limits(s.id, [{"parameter": "xx", "low": 1}], "n")


def test_entered_baseline_wins_and_bad_values_are_refused(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "P1", "n")
    s = m.set_baseline(s.id, {"nibp_sys": 150}, "nurse.ann")
    assert s.baseline == {"nibp_sys": 150.0} and s.baseline_source == "entered"
    with pytest.raises(MonitorError, match="not a plausible value"):
        m.set_baseline(s.id, {"nibp_sys": 9000}, "n")


def test_technical_alarms_are_armed_by_a_session(harness: Harness):
    m = harness.monitor
    harness.feed("spo2", 97)
    harness.clock.advance(60)
    m.tick()
    assert m.open_alarms() == []
    m.start_session("c1", "P1", "n")
    harness.feed("spo2", 97)
    harness.clock.advance(30)
    m.tick()
    assert [a.code for a in m.open_alarms()] == ["NO_DATA"]


# --- restart ------------------------------------------------------------------------------


def test_restart_restores_buffers_sessions_and_open_alarms(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "P1", "n", protocol="ketamine")
    harness.feed("spo2", 86, seconds=16)
    (alarm,) = m.open_alarms()
    m.pause_audio("c1", "n")
    harness.flush()
    m = harness.restart()
    assert m.status("c1").session == m.session(s.id)
    assert m.session(s.id).state is SessionState.MONITORING
    (restored,) = m.open_alarms()
    assert restored.id == alarm.id and restored.state is AlarmState.PAUSED
    assert m.status("c1").vitals["spo2"].value == 86
    assert m.trend("c1", "spo2", 60).times.size == 16
    # the engine carries on: pause expiry, new ids after the old ones
    harness.clock.advance(200)
    m.tick()
    assert m.open_alarms()[0].state is AlarmState.ACTIVE
    harness.feed("nibp_sys", 250)
    assert max(a.id for a in m.open_alarms()) == alarm.id + 1


def test_on_durable_runs_after_the_commit(harness: Harness):
    import threading

    done = threading.Event()
    result = harness.monitor.ingest([harness.reading("hr", 70)])
    harness.monitor.on_durable(result.ticket, done.set)
    assert done.wait(timeout=10)
    assert harness.monitor.store.committed_ticket >= result.ticket
    ran = []
    harness.monitor.on_durable(None, lambda: ran.append(1))  # nothing to wait for: at once
    assert ran == [1]


@pytest.mark.parametrize("harness", ["sqlite", "postgresql"], indirect=True)
def test_a_standby_follows_what_the_leader_commits_and_takes_over_with_the_last_moments(harness: Harness):
    from monitor.bay_store import open_bay_store
    from monitor.core import Monitor

    leader = harness.monitor
    leader.start_session("c1", "MRN-1", "nurse.ann")
    harness.feed("hr", 70, seconds=30)
    harness.feed("spo2", 97, seconds=5, chair="c2")
    harness.flush()
    standby = Monitor(harness.config, store=open_bay_store(harness.config.store, harness.config.bay.id),
                      clock=harness.clock)
    try:
        assert standby.follow() == 35  # the first time: the whole window
        assert standby.follow() == 0  # nothing new
        harness.feed("hr", 71, seconds=3)
        harness.monitor.ingest([harness.reading("hr", 55, dt=-20)])  # late: among the earlier ones
        harness.flush()
        assert standby.follow() == 4  # only what was committed since
        for chair, param in (("c1", "hr"), ("c2", "spo2")):
            mine, theirs = standby.trend(chair, param, 3600), leader.trend(chair, param, 3600)
            assert mine.times.tolist() == theirs.times.tolist()
            assert mine.values.tolist() == theirs.values.tolist()
        assert standby.status("c1").session is None  # sessions and alarms: only at takeover
        leader.close()  # the leader is gone; the last of its readings was committed
        harness.clock.advance(4)
        standby.start()
        assert standby.status("c1").session is not None and standby.status("c1").vitals["hr"].value == 71
        assert standby.report_interruption("server takeover") == ["c1"]
        (gap,) = [a for a in standby.open_alarms() if a.code == "MONITORING_INTERRUPTED"]
        assert gap.message == "Monitoring interrupted 5 s (server takeover)"  # from its last reading
        assert standby.trend("c1", "hr", 3600).times.size == 34
    finally:
        standby.close()


def test_a_takeover_alarms_each_chair_in_a_session_with_the_gap(harness: Harness):
    m = harness.monitor
    m.start_session("c1", "MRN-1", "nurse.ann")
    harness.feed("hr", 70, seconds=3)
    harness.feed("hr", 71, seconds=2, chair="c2")  # no session: nobody to tell
    harness.flush()
    harness.clock.advance(11)  # the servers' takeover: c1's last reading is 14 s old now
    restarted = harness.restart()
    assert restarted.report_interruption("server takeover") == ["c1"]
    (alarm,) = [a for a in restarted.open_alarms() if a.code == "MONITORING_INTERRUPTED"]
    assert alarm.chair == "c1" and alarm.message == "Monitoring interrupted 14 s (server takeover)"
    assert alarm.kind.value == "technical"
    harness.feed("hr", 72, seconds=1)
    assert [a.code for a in restarted.open_alarms()] == ["MONITORING_INTERRUPTED"]  # until acknowledged


def test_a_condition_across_a_takeover_is_timed_from_the_first_reading_the_new_leader_sees(harness: Harness):
    harness.monitor.start_session("c1", "MRN-1", "nurse.ann")
    harness.feed("spo2", 84, seconds=6)  # pending on the old leader (10 s delay), not yet raised
    harness.flush()
    harness.clock.advance(3)  # the takeover's gap: nothing read
    restarted = harness.restart()
    first = harness.clock.now()
    harness.feed("spo2", 84, seconds=10)  # the old leader's 6 s do not count: not yet
    assert not [a for a in restarted.open_alarms() if a.code.startswith("SPO2")]
    harness.feed("spo2", 84, seconds=1)
    (alarm,) = [a for a in restarted.open_alarms() if a.code.startswith("SPO2")]
    assert alarm.onset_at == first and alarm.raised_at == first + 10


def test_readings_queued_during_a_takeover_are_timed_by_their_device_times(harness: Harness):
    """A broker's queue delivers the gap's readings at once to the new leader: the condition
    began at the first of them, so its delay has run by the time they are all seen."""
    harness.monitor.start_session("c1", "MRN-1", "nurse.ann")
    harness.feed("spo2", 97, seconds=3)
    harness.flush()
    harness.clock.advance(15)
    restarted = harness.restart()
    backlog = [harness.reading("spo2", 84, dt=-k) for k in range(14, -1, -1)]
    restarted.ingest(backlog)
    (alarm,) = [a for a in restarted.open_alarms() if a.code.startswith("SPO2")]
    assert alarm.onset_at == backlog[0].device_time and alarm.raised_at == harness.clock.now()


def test_a_takeover_within_a_second_is_still_an_interruption(harness: Harness):
    harness.monitor.start_session("c1", "MRN-1", "nurse.ann")
    harness.monitor.ingest([harness.reading("hr", 70, dt=-0.4)])  # taken 0.4 s before the takeover
    harness.flush()
    restarted = harness.restart()
    assert restarted.report_interruption("server takeover") == ["c1"]
    (alarm,) = [a for a in restarted.open_alarms() if a.code == "MONITORING_INTERRUPTED"]
    assert alarm.message == "Monitoring interrupted 1 s (server takeover)"  # never "0 s", never none
