"""Alarm limits validated as clinicians expect (issue 10, point 2): each rule (finite, in the
parameter's plausible range, sane delay and hysteresis), each rule set (the priority ladder,
low below high), and a widening past the profile's default only when confirmed and audited
with old and new values. Pure rules, the core on a real SQLite file, and the HTTP API.
(The configuration: tests/test_config.py; the limits form in Chromium: tests/test_limits_ui.py.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness
from flask import Flask

from dashboard.api import install_api
from dashboard.live import LiveBay
from monitor.alarm_rules import (
    DEFAULT_RULES,
    LimitRule,
    RuleError,
    check_rule_set,
    compare_rules,
    rules_from_dicts,
)
from monitor.config import merge_rules
from monitor.core import ConfirmationNeeded, InvalidLimits
from monitor.records import Priority, SessionEventKind

K = SessionEventKind


def rule(**kw: Any) -> dict[str, Any]:
    return {"priority": "medium", **kw}


# --- one rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kw", "field", "problem"), [
    ({"threshold": math.nan}, "low", "not a finite number (nan)"),
    ({"threshold": math.inf}, "low", "not a finite number (inf)"),
    ({"threshold": 1e308}, "low", "must be from 50 to 100 % (got 1e+308)"),
    ({"threshold": 150}, "low", "must be from 50 to 100 % (got 150)"),
    ({"threshold": 90, "delay_s": math.nan}, "delay_s", "not a finite number (nan)"),
    ({"threshold": 90, "delay_s": 61}, "delay_s", "must be from 0 to 60 s (got 61)"),
    ({"threshold": 90, "hysteresis": math.inf}, "hysteresis", "not a finite number (inf)"),
    ({"threshold": 90, "hysteresis": -1}, "hysteresis", "must be from 0 to 5 % (got -1)"),
    ({"threshold": None, "baseline_pct": math.nan}, "below_baseline_pct", "not a finite number (nan)"),
])
def test_a_rule_refuses_what_no_clinician_would_set(kw, field, problem):
    with pytest.raises(RuleError) as info:
        LimitRule("spo2", "low", priority=Priority.MEDIUM, **{"threshold": None, **kw})
    assert (info.value.field, info.value.problem) == (field, problem)
    assert info.value.clinical == f"SpO2 low limit: {problem}".replace(
        "SpO2 low limit", "SpO2 below baseline" if field == "below_baseline_pct" else "SpO2 low limit")


def test_nibp_takes_no_delay_and_the_edges_of_the_ranges_are_allowed():
    with pytest.raises(RuleError, match="delay_s: nibp_sys is intermittent"):
        LimitRule("nibp_sys", "low", 90, Priority.MEDIUM, delay_s=5)
    assert LimitRule("spo2", "low", 50, Priority.HIGH, delay_s=60).threshold == 50
    assert LimitRule("hr", "high", 300, Priority.HIGH, delay_s=0, hysteresis=28).band == 28


def test_rules_from_dicts_names_the_field_and_refuses_what_is_not_a_number():
    with pytest.raises(RuleError, match=r"^rules\[1\]\.low: not a finite number \(nan\)$"):
        rules_from_dicts([rule(parameter="spo2", low=90), rule(parameter="spo2", low=math.nan,
                                                               priority="high")])
    for bad in ("88", True, None, [88]):
        with pytest.raises(RuleError, match=r"^rules\[0\]\.low: must be a number"):
            rules_from_dicts([rule(parameter="spo2", low=bad)])
    with pytest.raises(RuleError, match=r"^rules\[0\]\.high: not a finite number \(too large\)$"):
        rules_from_dicts([rule(parameter="hr", high=10**400)])
    with pytest.raises(RuleError, match=r"^rules\[0\]: must be a rule table or object \(got str\)$"):
        rules_from_dicts(["spo2 < 90"])
    with pytest.raises(RuleError, match=r"^rules\[1\]: a second rule for the HR high limit \(the first"):
        rules_from_dicts([rule(parameter="hr", high=130), rule(parameter="hr", high=125)])


# --- the rule set ------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "problem"), [
    ([rule(parameter="hr", high=60, priority="high")],
     "HR high limit (high priority) 60 /min must be above the medium-priority limit 120 /min"),
    ([rule(parameter="hr", high=150)],  # medium at the high-priority limit
     "HR high limit (high priority) 150 /min must be above the medium-priority limit 150 /min"),
    ([rule(parameter="spo2", low=84)],
     "SpO2 low limit (high priority) 85 % must be below the medium-priority limit 84 %"),
    ([rule(parameter="hr", low=125)], "HR low limit 125 /min must be below the HR high limit 120 /min"),
    ([rule(parameter="nibp_sys", below_baseline_pct=30, priority="high"),
      rule(parameter="nibp_sys", below_baseline_pct=40)],
     "NIBP sys below baseline (high priority) 30 % must be larger than the medium-priority limit 40 %"),
])
def test_the_rule_set_keeps_the_priority_ladder_and_low_below_high(changes, problem):
    rules = merge_rules(DEFAULT_RULES, rules_from_dicts(changes))
    with pytest.raises(RuleError) as info:
        check_rule_set(rules)
    assert info.value.problem == problem
    check_rule_set(DEFAULT_RULES)  # the docs/clinical.md defaults are sound


# --- what a change changes, in clinical words --------------------------------------------


def test_compare_rules_words_each_change_and_flags_widening():
    after = merge_rules(DEFAULT_RULES, rules_from_dicts([
        rule(parameter="spo2", low=88, delay_s=20),  # lower and later: both widen
        rule(parameter="hr", high=160, priority="high", delay_s=5),  # raised: widens
        rule(parameter="hr", low=45, priority="high", delay_s=3),  # raised (tighter), sooner
        rule(parameter="nibp_sys", below_baseline_pct=25),  # a larger drop: widens
        rule(parameter="spo2", low=85, priority="high", delay_s=10, hysteresis=3),  # clears later only
    ]))
    changes = compare_rules(DEFAULT_RULES, after, DEFAULT_RULES)
    assert [(c.text, c.widens) for c in changes] == [
        ("SpO2 low limit 90 % → 88 %", True),
        ("SpO2 low limit delay 15 s → 20 s", True),
        ("SpO2 low limit (high priority) hysteresis 1 % → 3 %", False),
        ("HR high limit (high priority) 150 /min → 160 /min", True),
        ("HR low limit (high priority) 40 /min → 45 /min", False),
        ("HR low limit (high priority) delay 5 s → 3 s", False),
        ("NIBP sys below baseline 20 % → 25 %", True),
    ]
    spo2 = changes[0].as_dict()
    assert spo2 == {"rule": "spo2_low_limit_medium", "field": "low", "old": 90.0, "new": 88.0,
                    "default": 90.0, "widens": True, "text": "SpO2 low limit 90 % → 88 %"}
    # from an already widened 88: back towards the default is no widening, further is
    wider = merge_rules(DEFAULT_RULES, rules_from_dicts([rule(parameter="spo2", low=86, delay_s=15)]))
    back = merge_rules(DEFAULT_RULES, rules_from_dicts([rule(parameter="spo2", low=89, delay_s=15)]))
    before = merge_rules(DEFAULT_RULES, rules_from_dicts([rule(parameter="spo2", low=88, delay_s=15)]))
    assert [(c.text, c.widens) for c in compare_rules(before, wider, DEFAULT_RULES)] == [
        ("SpO2 low limit 88 % → 86 % (profile default 90 %)", True)]
    assert [(c.text, c.widens) for c in compare_rules(before, back, DEFAULT_RULES)] == [
        ("SpO2 low limit 88 % → 89 %", False)]


def test_the_form_refuses_an_empty_field_naming_the_limit():
    from dashboard.figures import limit_changes

    with pytest.raises(ValueError, match=r"^SpO2 low limit: enter a number$"):
        limit_changes(DEFAULT_RULES, {("spo2_low_limit_medium", "value"): None})
    with pytest.raises(ValueError, match=r"^HR high limit \(high priority\) delay: enter a number$"):
        limit_changes(DEFAULT_RULES, {("hr_high_limit_high", "delay"): None})
    assert limit_changes(DEFAULT_RULES, {("hr_high_limit_high", "value"): 160}) == [
        {"parameter": "hr", "priority": "high", "high": 160.0, "delay_s": 5.0}]


# --- the core ----------------------------------------------------------------------------


def limits_events(h: Harness, session_id: str) -> list[Any]:
    h.flush()
    return [e for e in h.monitor.store.session_events(session_id) if e.kind is K.LIMITS_CHANGED]


@pytest.mark.parametrize(("rules", "message"), [
    ([rule(parameter="spo2", low=math.nan)], "rules[0].low: not a finite number (nan)"),
    ([rule(parameter="spo2", low=90, delay_s=15), rule(parameter="spo2", low=math.inf, priority="high")],
     "rules[1].low: not a finite number (inf)"),
    ([rule(parameter="spo2", low=1e308)], "rules[0].low: must be from 50 to 100 % (got 1e+308)"),
    ([rule(parameter="spo2", low=150)], "rules[0].low: must be from 50 to 100 % (got 150)"),
    ([rule(parameter="spo2", low=90, delay_s=120)], "rules[0].delay_s: must be from 0 to 60 s (got 120)"),
    ([rule(parameter="nibp_sys", low=90, delay_s=10)],
     "rules[0].delay_s: nibp_sys is intermittent: it takes no annunciation delay"),
    ([rule(parameter="spo2", low=90, delay_s=15), rule(parameter="hr", high=60, priority="high")],
     "rules[1].high: HR high limit (high priority) 60 /min must be above the medium-priority limit 120 /min"),
    ([rule(parameter="hr", high=100), rule(parameter="hr", low=110)],
     "rules[1].low: HR low limit 110 /min must be below the HR high limit 100 /min"),
])
def test_refused_limits_change_nothing_and_the_alarm_still_sounds(harness, rules, message):
    """Seen: with NaN limits SpO2 50 for 120 s raised no alarm."""
    m = harness.monitor
    s = m.start_session("c1", "P1", "n")
    before = m.engine.rules("c1")
    with pytest.raises(InvalidLimits) as info:
        m.set_limits(s.id, rules, "charge.nurse", confirm=True)
    assert str(info.value) == message
    assert m.engine.rules("c1") == before and m.session(s.id).limit_overrides == ()
    assert limits_events(harness, s.id) == []
    harness.feed("spo2", 50, seconds=16)
    assert [(a.code, a.priority, a.message) for a in m.open_alarms()] == [
        ("SPO2_LOW", Priority.HIGH, "SpO2 50 % < 85 %")]


def test_widening_past_the_profile_default_needs_confirmation_and_is_audited(harness):
    m = harness.monitor
    s = m.start_session("c1", "P1", "n")
    wide = [rule(parameter="spo2", low=88, delay_s=15), rule(parameter="hr", high=160, priority="high",
                                                               delay_s=5)]
    with pytest.raises(ConfirmationNeeded) as info:
        m.set_limits(s.id, wide, "charge.cat")
    assert info.value.changes == ("SpO2 low limit 90 % → 88 %",
                                  "HR high limit (high priority) 150 /min → 160 /min")
    assert m.session(s.id).limit_overrides == () and limits_events(harness, s.id) == []
    harness.feed("spo2", 89, seconds=16)  # still the default's < 90
    assert [a.message for a in m.open_alarms()] == ["SpO2 89 % < 90 %"]

    s = m.set_limits(s.id, wide, "charge.cat", confirm=True)
    assert {r.id: r.threshold for r in m.engine.rules("c1")}["spo2_low_limit_medium"] == 88
    harness.feed("spo2", 89, seconds=3)  # the limit is 88 (hysteresis 1): it clears
    assert m.open_alarms() == []
    harness.flush()
    (action,) = [a for a in m.store.operator_actions() if a.action == "limits_changed"]
    assert action.user == "charge.cat" and action.target == s.id and action.detail["confirmed"] is True
    assert [(c["field"], c["old"], c["new"], c["widens"], c["text"]) for c in action.detail["changes"]] == [
        ("low", 90.0, 88.0, True, "SpO2 low limit 90 % → 88 %"),
        ("high", 150.0, 160.0, True, "HR high limit (high priority) 150 /min → 160 /min")]
    (event,) = limits_events(harness, s.id)
    assert event.detail == ("limits: SpO2 low limit 90 % → 88 %; "
                            "HR high limit (high priority) 150 /min → 160 /min")

    # tightening needs no confirmation; it is audited all the same
    m.set_limits(s.id, [*wide, rule(parameter="hr", high=110, delay_s=10)], "charge.cat")
    harness.flush()
    last = [a for a in m.store.operator_actions() if a.action == "limits_changed"][-1]
    assert last.detail["confirmed"] is False
    assert [c["text"] for c in last.detail["changes"]] == ["HR high limit 120 /min → 110 /min"]
    # the generic session step takes the same checks
    with pytest.raises(ConfirmationNeeded, match="SpO2 low limit 88 % → 86 % \\(profile default 90 %\\)"):
        m.session_step(s.id, K.LIMITS_CHANGED, "charge.cat",
                       data={"rules": [rule(parameter="spo2", low=86, delay_s=15)]})
    with pytest.raises(InvalidLimits, match=r"rules\[0\].low: not a finite number"):
        m.session_step(s.id, K.LIMITS_CHANGED, "charge.cat",
                       data={"rules": [rule(parameter="spo2", low=math.nan)]})


def test_a_protocol_limit_may_be_loosened_back_to_the_profile_default_unconfirmed(harness):
    m = harness.monitor
    s = m.start_session("c1", "P1", "n", protocol="magnesium")  # HR low 55 (profile: 50)
    m.set_limits(s.id, [rule(parameter="hr", low=50, delay_s=10)], "charge.cat")
    with pytest.raises(ConfirmationNeeded) as info:
        m.set_limits(s.id, [rule(parameter="hr", low=45, delay_s=10)], "charge.cat")
    assert info.value.changes == ("HR low limit 50 /min → 45 /min",)


def test_stored_overrides_a_new_profile_makes_unsound_are_not_applied_on_restart(tmp_path: Path):
    h = Harness(tmp_path)
    s = h.monitor.start_session("c1", "P1", "n")
    h.monitor.set_limits(s.id, [rule(parameter="hr", high=140, delay_s=10)], "charge.cat", confirm=True)
    h.flush()
    h.monitor.close()
    strict = {"adult": {"rules": [rule(parameter="hr", high=130, priority="high", delay_s=5)]}}
    h2 = Harness(tmp_path, limit_profiles=strict)  # HR high (high priority) 130 under the 140
    try:
        assert h2.monitor.session(s.id).limit_overrides  # kept in the record
        assert [(r.id, r.threshold) for r in h2.monitor.engine.rules("c1")] == [("hr_high_limit_high", 130)]
    finally:
        h2.monitor.close()


# --- the HTTP API ------------------------------------------------------------------------


@pytest.fixture
def api(harness: Harness):
    app = Flask("test")
    install_api(app, LiveBay(harness.monitor, max_age=0))
    session = harness.monitor.start_session("c1", "MRN-1", "nurse.ann")
    return app.test_client(), f"/api/v1/sessions/{session.id}/limits"


@pytest.mark.parametrize(("raw", "message"), [
    # Python's JSON parser takes NaN, Infinity and -Infinity; 1e999 overflows to infinity
    ('{"parameter": "spo2", "low": NaN}', "rules[1].low: not a finite number (nan)"),
    ('{"parameter": "spo2", "low": Infinity}', "rules[1].low: not a finite number (inf)"),
    ('{"parameter": "hr", "high": -Infinity}', "rules[1].high: not a finite number (-inf)"),
    ('{"parameter": "hr", "high": 1e999}', "rules[1].high: not a finite number (inf)"),
    ('{"parameter": "hr", "high": 1e308}', "rules[1].high: must be from 20 to 300 /min (got 1e+308)"),
    ('{"parameter": "spo2", "low": 150}', "rules[1].low: must be from 50 to 100 % (got 150)"),
    ('{"parameter": "spo2", "low": "88"}', "rules[1].low: must be a number (got '88')"),
    ('{"parameter": "spo2", "low": 90, "delay_s": NaN}', "rules[1].delay_s: not a finite number (nan)"),
    ('{"parameter": "hr", "high": 60, "priority": "high"}',
     "rules[1].high: HR high limit (high priority) 60 /min must be above the medium-priority limit 120 /min"),
])
def test_api_refuses_bad_limits_with_400_naming_the_field(harness, api, raw, message):
    client, url = api
    body = '{"user": "charge.cat", "rules": [{"parameter": "spo2", "low": 91, "delay_s": 15}, ' + raw + "]}"
    answer = client.post(url, data=body, content_type="application/json")
    assert answer.status_code == 400 and answer.get_json() == {"error": message}
    assert harness.monitor.status("c1").session.limit_overrides == ()
    harness.feed("spo2", 50, seconds=16)  # and the limits in force still alarm
    assert [a["code"] for a in client.get("/api/v1/alarms").get_json()["alarms"]] == ["SPO2_LOW"]


def test_api_asks_for_confirmation_with_409_then_saves(harness, api):
    client, url = api
    rules = [rule(parameter="spo2", low=88, delay_s=15)]
    answer = client.post(url, json={"user": "charge.cat", "rules": rules})
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["confirm"] == ["SpO2 low limit 90 % → 88 %"] and "need confirmation" in body["error"]
    assert harness.monitor.status("c1").session.limit_overrides == ()
    answer = client.post(url, json={"user": "charge.cat", "rules": rules, "confirm": "yes"})
    assert answer.status_code == 400 and answer.get_json() == {"error": "confirm must be true or false"}
    answer = client.post(url, json={"user": "charge.cat", "rules": rules, "confirm": True})
    assert answer.status_code == 200
    assert harness.monitor.status("c1").session.limit_overrides == (
        {"parameter": "spo2", "priority": "medium", "low": 88.0, "delay_s": 15.0},)
    harness.flush()
    (action,) = [a for a in harness.monitor.store.operator_actions() if a.action == "limits_changed"]
    assert (action.user, action.detail["confirmed"]) == ("charge.cat", True)
    assert [(c["old"], c["new"]) for c in action.detail["changes"]] == [(90.0, 88.0)]
