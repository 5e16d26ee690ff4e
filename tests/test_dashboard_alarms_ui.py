"""Issue 10 in a real headless Chromium against a real core on a real SQLite file: one
click acknowledges a chair, pop-ups most urgent first, DELAYED on the tile, the manual BP
form (helpers: tests/ui_support.py)."""

from __future__ import annotations

from conftest import wait_until
from ui_support import Bay, click, js, set_nurse, start

from monitor.readings import QualityFlag, Reading
from monitor.records import AlarmState


def _late_second(bay: Bay, chair: str, values: dict[str, float], lag: float) -> None:
    now = bay.clock.now()
    bay.monitor.ingest([Reading(chair, p, v, now - lag, now, f"dev-{chair}", None, 0)
                        for p, v in values.items()])
    bay.monitor.tick()
    bay.clock.advance(1)


def test_one_click_acknowledges_every_alarm_of_a_chair(make_bay, dash_duo):
    bay = make_bay(chairs=3)
    bay.monitor.start_session("c01", "MRN-1", "ann")
    for _ in range(16):  # c01: SpO2 86 (medium, after 15 s); c02: HR 130 (medium, after 10 s)
        bay.second({"c01": {"spo2": 86, "hr": 72}, "c02": {"spo2": 98, "hr": 130}})
    bay.second({"c01": {"nibp_sys": 75, "nibp_dia": 40, "nibp_map": 50}})  # one cuff cycle: one HIGH
    c01 = [a for a in bay.monitor.open_alarms() if a.chair == "c01"]
    assert sorted(a.priority.label for a in c01) == ["high", "medium"]
    start(dash_duo, bay)
    dash_duo.wait_for_element(".popup[data-chair='c02']", timeout=5)
    # most urgent chair first: c01 (a high alarm) before c02 (medium), showing its top alarm
    order = js(dash_duo, "return [...document.querySelectorAll('.popup')].map(p => p.dataset.chair)")
    assert order == ["c01", "c02"]
    popup = dash_duo.find_element(".popup[data-chair='c01']")
    assert "*** NIBP 75/40 mmHg (MAP 50): sys 75 < 80, MAP 50 < 65" in popup.text
    assert "+1 more on this chair" in popup.text
    assert dash_duo.find_element(".popup[data-chair='c01'] .btn-ack").text == "Acknowledge all 2"

    set_nurse(dash_duo, "Anna Berg")
    click(dash_duo, ".popup[data-chair='c01'] .btn-ack")
    dash_duo.wait_for_no_elements('.popup[data-chair="c01"]', timeout=5)
    dash_duo.wait_for_contains_text("#action-msg", "Acknowledged by Anna Berg: 2 alarms on Chair 1",
                                    timeout=5)
    states = {a.id: a.state for a in bay.monitor.open_alarms()}
    assert [states[a.id] for a in c01] == [AlarmState.ACKNOWLEDGED] * 2
    assert [a.state for a in bay.monitor.open_alarms() if a.chair == "c02"] == [AlarmState.ACTIVE]
    assert dash_duo.find_elements(".popup[data-chair='c02']")
    bay.monitor.store.flush(timeout=5)
    acks = [a for a in bay.monitor.store.operator_actions() if a.action == "acknowledge"]
    assert sorted((a.user, a.target) for a in acks) == sorted(("Anna Berg", str(a.id)) for a in c01)
    assert not dash_duo.get_logs()


def test_late_data_shows_delayed_and_a_manual_bp_is_entered_on_the_chair_page(make_bay, dash_duo):
    bay = make_bay(chairs=2, sources=[{"kind": "serial", "name": "ox1", "chair": "c01",
                                        "port": "/dev/null-ox1", "protocol": "masimo"}])
    bay.monitor.start_session("c01", "MRN-7", "ann")
    for _ in range(3):
        bay.second({"c01": {"spo2": 97, "pr": 70}})
    start(dash_duo, bay, "/chair/c01")
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .conn", "ONLINE", timeout=5)
    for _ in range(6):  # arriving every second, but taken 75 s earlier
        _late_second(bay, "c01", {"spo2": 97, "pr": 70}, 75)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .conn", "DELAYED 1 min", timeout=5)
    assert "conn-delayed" in dash_duo.find_element(".tile[data-chair='c01']").get_attribute("class")
    dash_duo.wait_for_contains_text(".tile[data-chair='c01'] .alarm-text",
                                    "PR, SpO2 data delayed (75 s behind)", timeout=5)
    bay.second({"c01": {"spo2": 97, "pr": 70}})  # current again
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .conn", "ONLINE", timeout=5)

    # the manual BP form: an oximeter-only chair, a nurse's cuff reading
    set_nurse(dash_duo, "Ben Ortiz")
    dash_duo.find_element("#manual-sys").send_keys("128")
    click(dash_duo, "#manual-btn")
    dash_duo.wait_for_contains_text("#session-msg", "Enter systolic and diastolic", timeout=5)
    dash_duo.find_element("#manual-dia").send_keys("82")
    click(dash_duo, "#manual-btn")
    dash_duo.wait_for_contains_text("#session-msg", "Manual BP 128/82 (MAP 97) entered by Ben Ortiz",
                                    timeout=5)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-nibp", "128/82", timeout=5)

    def trace_names() -> list[str]:
        return js(dash_duo, "const g = document.querySelector('#chair-trends .js-plotly-plot');"
                            "return g && g.data ? g.data.map(t => t.name) : []")

    wait_until(lambda: "NIBP manual" in trace_names(), 5, "the manual reading marked in the trend")
    w = bay.monitor.trend("c01", "nibp_sys", 60)
    assert w.values[-1] == 128 and int(w.flags[-1]) & QualityFlag.MANUAL
    bay.monitor.store.flush(timeout=5)
    (action,) = [a for a in bay.monitor.store.operator_actions() if a.action == "manual_nibp"]
    assert (action.user, action.chair, action.detail) == (
        "Ben Ortiz", "c01", {"nibp_sys": 128.0, "nibp_dia": 82.0, "nibp_map": 97.0})
    # a value out of range is refused, naming the problem (the form is fresh after an entry)
    dash_duo.find_element("#manual-sys").send_keys("400")
    dash_duo.find_element("#manual-dia").send_keys("82")
    click(dash_duo, "#manual-btn")
    dash_duo.wait_for_contains_text("#session-msg", "NIBP sys must be a number from 40 to 300 mmHg",
                                    timeout=5)
    # (no get_logs() check here: plotly logs a NaN whisker path for the chair trend's NIBP
    # cycles, with the manual mark switched off too; tests/test_dashboard_ui.py's chair test
    # does not check the logs either)
