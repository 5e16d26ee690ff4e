"""Alarm safety around the session workflow (issue 10, points 1, 5 and 9), on a real core
and SQLite file with a clock the test moves, through the core and the HTTP API:

- ending a session never closes open alarms unless the nurse confirms the patient has left;
  a limit change judges open alarms afresh instead of clearing them;
- the baseline is proposed from pre-infusion readings not in alarm and set only by an
  audited confirmation (or entry); baseline-relative rules stay off until then;
- an infusion running past its plan and a completed observation prompt the nurse.
"""

from __future__ import annotations

import pytest
from conftest import Harness
from flask import Flask

from dashboard.api import install_api
from dashboard.live import LiveBay
from monitor.core import ConfirmationRequired
from monitor.records import AlarmState, Priority, SessionEventKind

K = SessionEventKind
A = AlarmState


@pytest.fixture
def api(harness: Harness):
    live = LiveBay(harness.monitor, max_age=60)
    app = Flask("test")
    install_api(app, live)
    return app.test_client()


def _cuff(h: Harness, sys_: float, dia: float, map_: float, chair: str = "c1") -> None:
    h.monitor.ingest([h.reading(k, v, chair=chair) for k, v in
                      (("nibp_sys", sys_), ("nibp_dia", dia), ("nibp_map", map_))])
    h.monitor.tick()
    h.clock.advance(1)


# --- 1. ending a session never silences a patient ----------------------------------------


def test_end_session_with_a_latched_high_alarm_is_refused_naming_it(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    _cuff(harness, 70, 35, 45)  # sys < 80 and MAP < 65: high priority
    _cuff(harness, 118, 75, 89)  # back in range: the high alarms latch
    latched = {a.id: a for a in m.open_alarms()}
    assert latched and {a.state for a in latched.values()} == {A.LATCHED}
    with pytest.raises(ConfirmationRequired) as refused:
        m.end_session(s.id, "nurse.ann")
    assert "open alarm" in str(refused.value) and "patient has left" in str(refused.value)
    assert any("MAP 45 < 65" in line and "latched, not acknowledged" in line
               for line in refused.value.items)
    # nothing changed: the session runs on, the alarms keep their state
    assert m.session(s.id).state.is_open
    assert {a.id: a for a in m.open_alarms()} == latched
    # a dashboard-style step (the screen's End session button) is held to the same rule
    with pytest.raises(ConfirmationRequired):
        m.session_step(s.id, K.SESSION_ENDED, "nurse.ann")


def test_end_session_after_the_nurse_confirms_the_patient_left(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    _cuff(harness, 70, 35, 45)
    ids = sorted(a.id for a in m.open_alarms())
    ended = m.end_session(s.id, "nurse.bob", patient_left=True)
    assert not ended.state.is_open and m.open_alarms() == []
    harness.flush()
    store = m.store
    assert store is not None
    closing = [e for e in store.alarm_events(chair="c1") if e.new_state is A.CLEARED]
    assert sorted(e.alarm_id for e in closing) == ids
    assert all(e.user == "nurse.bob" and "patient left" in e.note for e in closing)
    (action,) = [a for a in store.operator_actions() if a.action == "session_ended"]
    assert action.user == "nurse.bob" and action.detail["patient_left"] is True
    assert sorted(x["id"] for x in action.detail["open_alarms"]) == ids


def test_end_session_without_alarms_needs_no_confirmation(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    harness.feed("spo2", 97, seconds=3)
    assert not m.end_session(s.id, "nurse.ann").state.is_open


def test_a_limit_change_judges_open_alarms_afresh_and_never_drops_a_latched_one(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    _cuff(harness, 70, 35, 45)
    _cuff(harness, 118, 75, 89)  # latched high alarms
    harness.feed("spo2", 88, seconds=17)  # SpO2 < 90 medium, after its 15 s delay
    (spo2,) = [a for a in m.open_alarms() if a.parameter == "spo2"]
    assert spo2.state is A.ACTIVE
    latched = sorted(a.id for a in m.open_alarms() if a.state is A.LATCHED)
    # SpO2 low moved to 89: 88 still breaches it, so the same alarm stays, with its new limit
    m.set_limits(s.id, [{"parameter": "spo2", "low": 89, "priority": "medium", "delay_s": 15}],
                 "charge.kim", confirm=True)  # below the profile's 90: confirmed
    (still,) = [a for a in m.open_alarms() if a.parameter == "spo2"]
    assert (still.id, still.state, still.limit, still.message) == (spo2.id, A.ACTIVE, 89, "SpO2 88 % < 89 %")
    assert sorted(a.id for a in m.open_alarms() if a.state is A.LATCHED) == latched
    # moved to 86: 88 no longer breaches it, so it clears (a medium alarm does not latch)
    m.set_limits(s.id, [{"parameter": "spo2", "low": 86, "priority": "medium", "delay_s": 15}],
                 "charge.kim", confirm=True)
    assert [a for a in m.open_alarms() if a.parameter == "spo2"] == []
    assert sorted(a.id for a in m.open_alarms() if a.state is A.LATCHED) == latched


def test_api_end_session_answers_409_with_the_open_alarms_then_ends_on_confirmation(harness, api):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    _cuff(harness, 70, 35, 45)
    refused = api.post(f"/api/v1/sessions/{s.id}/end", json={"user": "nurse.ann"})
    assert refused.status_code == 409
    body = refused.get_json()
    assert "patient has left" in body["error"] and any("MAP 45 < 65" in x for x in body["confirm"])
    assert m.session(s.id).state.is_open and m.open_alarms()
    bad = api.post(f"/api/v1/sessions/{s.id}/end", json={"user": "nurse.ann", "patient_left": "yes"})
    assert bad.status_code == 400 and "patient_left" in bad.get_json()["error"]
    done = api.post(f"/api/v1/sessions/{s.id}/end", json={"user": "nurse.ann", "patient_left": True})
    assert done.status_code == 200 and done.get_json()["state"] == "ended"
    assert m.open_alarms() == []


# --- 5. a real pre-infusion baseline -------------------------------------------------------


def test_baseline_is_proposed_from_readings_not_in_alarm_and_set_only_on_confirmation(harness: Harness):
    m = harness.monitor
    _cuff(harness, 140, 85, 103)  # the cuff reading at hook-up
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    for i in range(240):
        hr = 130.0 if i < 30 else 70.0 + i % 3  # tachycardic at first: > 120 is in alarm
        m.ingest([harness.reading("hr", hr)])
        harness.clock.advance(1)
    _cuff(harness, 85, 50, 62)  # a hypotensive cuff reading: in alarm, the whole cycle left out
    m.tick()
    proposal = m.baseline_proposal("c1")
    assert proposal is not None
    assert proposal.values["hr"] == 71.0 and proposal.left_out["hr"] == 30
    assert (proposal.values["nibp_sys"], proposal.values["nibp_dia"]) == (140.0, 85.0)
    assert proposal.left_out["nibp_sys"] == 1 and proposal.left_out["nibp_dia"] == 1
    # nothing is set by itself, and the baseline rule (sys 20 % below baseline) stays off
    harness.clock.advance(600)
    m.tick()
    assert m.session(s.id).baseline == {}
    m.session_step(s.id, K.INFUSION_STARTED, "nurse.ann", "100 mL/h")  # the proposal's end
    _cuff(harness, 105, 70, 82)
    assert "NIBP_SYS_BELOW_BASELINE" not in [a.code for a in m.open_alarms()]
    s = m.confirm_baseline(s.id, "nurse.ann")
    assert s.baseline_source == "confirmed" and s.baseline["nibp_sys"] == 140.0
    _cuff(harness, 105, 70, 82)  # 105 < 112 = 140 - 20 %
    assert "NIBP_SYS_BELOW_BASELINE" in [a.code for a in m.open_alarms()]
    harness.flush()
    assert m.store is not None
    (action,) = [a for a in m.store.operator_actions() if a.action == "baseline_set"]
    assert action.user == "nurse.ann" and action.detail["source"] == "confirmed"
    assert action.detail["left_out_in_alarm"] == {"nibp_sys": 1, "nibp_dia": 1, "nibp_map": 1}


def test_baseline_proposal_uses_only_readings_before_the_infusion(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    harness.feed("hr", 72, seconds=120)
    m.session_step(s.id, K.INFUSION_STARTED, "nurse.ann", "250 mL/h")
    harness.feed("hr", 110, seconds=300)  # during the infusion: not a baseline
    proposal = m.baseline_proposal("c1")
    assert proposal is not None and proposal.values == {"hr": 72.0}
    assert proposal.until == m.session(s.id).infusion_started_at


def test_api_shows_the_proposal_and_confirms_or_enters_a_baseline(harness, api):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann")
    harness.feed("spo2", 97, seconds=30)
    got = api.get(f"/api/v1/sessions/{s.id}").get_json()
    assert got["baseline"] == {} and got["baseline_proposal"]["values"] == {"spo2": 97.0}
    assert api.post(f"/api/v1/sessions/{s.id}/baseline", json={"user": "n"}).status_code == 400
    ok = api.post(f"/api/v1/sessions/{s.id}/baseline", json={"user": "n", "confirm": True})
    assert ok.status_code == 200 and ok.get_json()["baseline_source"] == "confirmed"
    entered = api.post(f"/api/v1/sessions/{s.id}/baseline",
                       json={"user": "n", "values": {"nibp_sys": 128}}).get_json()
    assert entered["baseline"] == {"nibp_sys": 128.0} and entered["baseline_source"] == "entered"


# --- 9. infusion overrun and observation end are prompts ------------------------------------


def _prompts(m) -> list:
    return [a for a in m.open_alarms() if a.code in ("INFUSION_OVERRUN", "OBSERVATION_COMPLETE")]


def test_infusion_overrun_and_observation_end_prompt_the_nurse(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann", protocol="magnesium")  # 30 min, obs 30 min
    m.session_step(s.id, K.INFUSION_STARTED, "nurse.ann", "100 mL/h")
    harness.clock.advance((30 + 10) * 60 - 1)  # the plan plus the default 10 min grace
    m.tick()
    assert _prompts(m) == []
    harness.clock.advance(1)
    m.tick()
    (overrun,) = _prompts(m)
    assert (overrun.code, overrun.priority, overrun.kind.value) == ("INFUSION_OVERRUN", Priority.LOW,
                                                                    "technical")
    assert overrun.message == "Infusion running past its planned 30 min"
    # a restart keeps the prompt and the schedule
    m = harness.restart()
    m.tick()
    assert [a.id for a in _prompts(m)] == [overrun.id]
    m.session_step(s.id, K.OBSERVATION_STARTED, "nurse.ann")
    assert _prompts(m) == []  # the infusion is over
    harness.clock.advance(30 * 60)
    m.tick()
    (done,) = _prompts(m)
    assert done.code == "OBSERVATION_COMPLETE" and "review for discharge" in done.message
    # a prompt (or the NIBP-overdue reminder) does not hold up the end of the session
    assert {a.code for a in m.open_alarms()} == {"OBSERVATION_COMPLETE", "NIBP_OVERDUE"}
    assert not m.end_session(s.id, "nurse.ann").state.is_open
    assert m.open_alarms() == []


def test_a_paused_infusion_does_not_prompt_an_overrun(harness: Harness):
    m = harness.monitor
    s = m.start_session("c1", "MRN-1", "nurse.ann", protocol="magnesium")
    m.session_step(s.id, K.INFUSION_STARTED, "nurse.ann", "100 mL/h")
    m.session_step(s.id, K.INFUSION_PAUSED, "nurse.ann")
    harness.clock.advance(3 * 3600)
    m.tick()
    assert _prompts(m) == []
    m.session_step(s.id, K.INFUSION_RESUMED, "nurse.ann")
    assert [a.code for a in _prompts(m)] == ["INFUSION_OVERRUN"]
