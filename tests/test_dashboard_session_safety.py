"""The session workflow's safety dialogs in a real headless Chromium (issue 10, points 1, 5
and 9): End session with open alarms asks, naming them; Start infusion without a baseline
asks, offering the proposed one; an overrunning infusion highlights its tile."""

from __future__ import annotations

import pytest
from conftest import wait_until
from ui_support import Bay, click, screenshot, set_nurse, start

from monitor.records import AlarmState, SessionEventKind

K = SessionEventKind
STEP = "button[id*='\"kind\":\"{}\"']"
CONFIRM = "button[id*='\"action\":\"{}\"']"


def _cuff(bay: Bay, chair: str, sys_: float, dia: float, map_: float) -> None:
    bay.second({chair: {"nibp_sys": sys_, "nibp_dia": dia, "nibp_map": map_}})


@pytest.mark.screenshots
def test_end_session_with_open_alarms_asks_and_keeps_them_until_the_patient_left(make_bay, dash_duo, shots):
    bay = make_bay(chairs=2)
    session = bay.monitor.start_session("c01", "MRN-77", "Ana Silva")
    _cuff(bay, "c01", 70, 35, 45)  # MAP 45: high priority
    _cuff(bay, "c01", 118, 75, 89)  # back in range: latched, not acknowledged
    before = {a.id: a.state for a in bay.monitor.open_alarms()}
    assert set(before.values()) == {AlarmState.LATCHED}
    start(dash_duo, bay, "/chair/c01")
    set_nurse(dash_duo, "Ana Silva")
    click(dash_duo, STEP.format("session_ended"))
    dash_duo.wait_for_element(".modal", timeout=5)
    dash_duo.wait_for_contains_text(".modal", "End the session with open alarms?", timeout=5)
    items = dash_duo.find_element(".modal .confirm-items").text
    assert "MAP 45 < 65" in items and "latched, not acknowledged" in items
    screenshot(dash_duo, shots, "end-session-dialog.png")
    # the safe choice: nothing changes, the tile stays highlighted
    click(dash_duo, CONFIRM.format("cancel"))
    wait_until(lambda: not dash_duo.find_elements(".modal"), 5, "dialog closed")
    assert bay.monitor.status("c01").session is not None
    assert {a.id: a.state for a in bay.monitor.open_alarms()} == before
    assert "alarm-high" in dash_duo.find_element(".tile[data-chair='c01']").get_attribute("class")
    # the nurse confirms that the patient has left: ended, the alarms closed with that note
    click(dash_duo, STEP.format("session_ended"))
    dash_duo.wait_for_element(".modal", timeout=5)
    click(dash_duo, CONFIRM.format("end-left"))
    dash_duo.wait_for_contains_text("#session-msg", "Session ended, patient left", timeout=5)
    assert bay.monitor.open_alarms() == [] and bay.monitor.status("c01").session is None
    bay.monitor.store.flush(timeout=5)
    (action,) = [a for a in bay.monitor.store.operator_actions(chair="c01") if a.action == "session_ended"]
    assert action.user == "Ana Silva"
    assert sorted(x["id"] for x in action.detail["open_alarms"]) == sorted(before)
    assert bay.monitor.session(session.id).ended_by == "Ana Silva"


@pytest.mark.screenshots
def test_start_infusion_without_baseline_offers_the_proposed_one(make_bay, dash_duo, shots):
    bay = make_bay(chairs=1)
    bay.monitor.start_session("c01", "MRN-78", "Ben Ortiz")
    _cuff(bay, "c01", 132, 84, 100)
    _cuff(bay, "c01", 85, 50, 62)  # in alarm: not part of the baseline
    for _ in range(20):
        bay.second({"c01": {"hr": 74, "spo2": 97}})
    start(dash_duo, bay, "/chair/c01")
    set_nurse(dash_duo, "Ben Ortiz")
    dash_duo.wait_for_contains_text("#baseline-proposal", "NIBP 132/84", timeout=10)
    assert "in alarm, left out: 1 cuff reading" in dash_duo.find_element("#baseline-proposal").text
    click(dash_duo, STEP.format("infusion_started"))
    dash_duo.wait_for_contains_text(".modal", "No baseline confirmed", timeout=5)
    assert "NIBP 132/84" in dash_duo.find_element(".modal .confirm-items").text
    screenshot(dash_duo, shots, "start-without-baseline-dialog.png")
    click(dash_duo, CONFIRM.format("baseline-start"))
    dash_duo.wait_for_contains_text("#session-msg", "Baseline confirmed, infusion started", timeout=5)
    dash_duo.wait_for_text_to_equal(".badge", "infusing", timeout=5)
    session = bay.monitor.status("c01").session
    assert session.baseline_source == "confirmed"
    assert (session.baseline["nibp_sys"], session.baseline["hr"]) == (132.0, 74.0)
    dash_duo.wait_for_contains_text("#baseline-current", "(confirmed)", timeout=5)


def test_an_overrunning_infusion_highlights_its_tile(make_bay, dash_duo):
    bay = make_bay(chairs=2)
    s = bay.monitor.start_session("c02", "MRN-79", "Ben Ortiz", protocol="magnesium")  # 30 min planned
    bay.monitor.set_baseline(s.id, {"nibp_sys": 120}, "Ben Ortiz")
    bay.monitor.session_step(s.id, K.INFUSION_STARTED, "Ben Ortiz", "100 mL/h")
    start(dash_duo, bay)
    for _ in range(4):  # 40 minutes, with a cuff reading every 10 (no NIBP-overdue reminder)
        bay.advance(600)
        _cuff(bay, "c02", 121, 79, 93)
    dash_duo.wait_for_element(".tile[data-chair='c02'] .phase.overrun", timeout=5)
    dash_duo.wait_for_contains_text(".tile[data-chair='c02'] .alarm-text",
                                    "Infusion running past its planned 30 min", timeout=5)
    bay.monitor.session_step(s.id, K.INFUSION_STOPPED, "Ben Ortiz")
    wait_until(lambda: not dash_duo.find_elements(".tile[data-chair='c02'] .phase.overrun"), 5,
               "highlight gone once the infusion stopped")
