"""The dashboard in a real headless Chromium (dash[testing]'s ``dash_duo``) against a real
core on a real SQLite file.

The Dash server runs in a thread of this process; the test owns the core's clock (a
ManualClock started at the real time, so ages look sane in the browser), feeds readings
with ``Monitor.ingest`` and moves time with ``clock.advance`` + ``Monitor.tick``. Waiting
is always on a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.request
from typing import Any

import pytest
from conftest import wait_until
from selenium.webdriver.common.keys import Keys
from ui_support import (
    Bay,
    choose,
    click,
    js,
    retry_stale,
    screenshot,
    set_nurse,
    start,
    tile_class,
    tile_text,
)

from dashboard.app import create_app
from monitor.readings import QualityFlag, Reading
from monitor.records import AlarmState, SessionEventKind
from simulators.patient import Effect, PatientModel

K = SessionEventKind


# --- alarms: pop-up, acknowledge, pause ---------------------------------------------------


def test_alarm_popup_acknowledge_and_pause(make_bay, dash_duo):
    bay = make_bay(chairs=3, alarms={"audio_pause_s": 5})
    for _ in range(3):
        bay.second({"c01": {"spo2": 97, "hr": 72}, "c02": {"spo2": 98, "hr": 80}})
    start(dash_duo, bay)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-spo2", "97", timeout=5)
    click(dash_duo, "#sound-enable")
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.enabled"), 5, "sound enabled")
    assert not dash_duo.find_element("#sound-enable").is_displayed() or wait_until(
        lambda: not dash_duo.find_element("#sound-enable").is_displayed(), 5) is None
    assert js(dash_duo, "return window.chairsideAudio.state") == "silent"

    # SpO2 86 for 16 simulated seconds: the 15 s annunciation delay has passed at the 16th
    for _ in range(15):
        bay.second({"c01": {"spo2": 86, "hr": 74}, "c02": {"spo2": 98, "hr": 80}})
    assert not dash_duo.find_elements(".popup")
    bay.second({"c01": {"spo2": 86, "hr": 74}, "c02": {"spo2": 98, "hr": 80}})
    popup = dash_duo.wait_for_element(".popup[data-chair='c01']", timeout=2)  # (how fast: bench.dashboard)
    assert "** SpO2 86 % < 90 %" in popup.text and "MEDIUM" in popup.text and "Chair 1" in popup.text
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "medium", 3, "medium tone")
    assert js(dash_duo, "return window.chairsideAudio.audible() && window.chairsideAudio.bursts > 0")
    wait_until(lambda: "flash-medium" in tile_class(dash_duo, "c01"), 3, "tile flashing")
    assert tile_text(dash_duo, "c01", "alarm-text") == "** SpO2 86 % < 90 %"

    # an action without a name is refused with a message asking for it
    click(dash_duo, ".popup[data-chair='c01'] .btn-ack")
    dash_duo.wait_for_contains_text("#action-msg", "Enter your name", timeout=5)
    assert dash_duo.find_elements(".popup[data-chair='c01']")

    set_nurse(dash_duo, "Anna Berg")
    click(dash_duo, ".popup[data-chair='c01'] .btn-ack")
    dash_duo.wait_for_no_elements('.popup[data-chair="c01"]', timeout=5)
    wait_until(lambda: "acked" in tile_class(dash_duo, "c01"), 3, "tile acknowledged")
    assert "flash-" not in tile_class(dash_duo, "c01")
    dash_duo.wait_for_contains_text(".tile[data-chair='c01'] .alarm-state", "ACK Anna Berg", timeout=3)
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "silent", 3, "silence")
    assert js(dash_duo, "return localStorage.getItem('nurse-store')") == '"Anna Berg"'
    bay.monitor.store.flush(timeout=5)
    (ack,) = bay.monitor.store.operator_actions()
    (alarm,) = [a for a in bay.monitor.open_alarms() if a.chair == "c01"]
    assert (ack.user, ack.action, ack.target) == ("Anna Berg", "acknowledge", str(alarm.id))
    assert alarm.state is AlarmState.ACKNOWLEDGED

    # HR 130 bpm > 120 on chair 2 (10 s delay); pause its audio for the configured 5 s
    for _ in range(11):
        bay.second({"c01": {"spo2": 86, "hr": 74}, "c02": {"spo2": 98, "hr": 130}})
    dash_duo.wait_for_element(".popup[data-chair='c02']", timeout=3)
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "medium", 3, "medium tone")
    click(dash_duo, ".popup[data-chair='c02'] .btn-pause")
    dash_duo.wait_for_contains_text(".popup[data-chair='c02'] .popup-state", "Audio paused 0:05", timeout=3)
    dash_duo.wait_for_contains_text(".tile[data-chair='c02'] .alarm-state", "AUDIO PAUSED 0:0", timeout=3)
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "silent", 3, "paused")
    assert "flash-medium" in tile_class(dash_duo, "c02")  # a pause silences; it does not hide
    for _ in range(3):
        bay.second({"c01": {"spo2": 86, "hr": 74}, "c02": {"spo2": 98, "hr": 130}})
    dash_duo.wait_for_contains_text(".popup[data-chair='c02'] .popup-state", "Audio paused 0:02", timeout=3)
    assert js(dash_duo, "return window.chairsideAudio.state") == "silent"
    # past the pause, the condition still there: it sounds again
    for _ in range(3):
        bay.second({"c01": {"spo2": 86, "hr": 74}, "c02": {"spo2": 98, "hr": 130}})
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "medium", 3, "re-annunciation")
    dash_duo.wait_for_text_to_equal(".popup[data-chair='c02'] .popup-state", "Sounding", timeout=3)
    bay.monitor.store.flush(timeout=5)
    pause = bay.monitor.store.operator_actions()[-1]
    assert (pause.user, pause.action, pause.chair) == ("Anna Berg", "pause_audio", "c02")

    # the alarm list shows both, and the history
    click(dash_duo, "a.nav-link[href='/alarms']")
    dash_duo.wait_for_contains_text("#alarms-open", "HR 130 bpm > 120", timeout=5)
    dash_duo.wait_for_contains_text("#alarms-open", "Acknowledged by Anna Berg", timeout=5)
    dash_duo.wait_for_contains_text("#alarms-history", "audio pause expired", timeout=5)
    assert not dash_duo.get_logs()


# --- connection state ---------------------------------------------------------------------


def test_stale_then_offline_then_back_online(make_bay, dash_duo):
    bay = make_bay(chairs=2, display={"stale_after_s": 5, "offline_after_s": 20})
    for _ in range(3):
        bay.second({"c01": {"spo2": 97, "hr": 71}})
    start(dash_duo, bay)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .conn", "ONLINE", timeout=5)
    assert "stale" not in dash_duo.find_element(".tile[data-chair='c01'] .val-hr").get_attribute("class")
    assert tile_text(dash_duo, "c02", "conn") == "OFFLINE"

    bay.advance(6)
    dash_duo.wait_for_contains_text(".tile[data-chair='c01'] .conn", "STALE", timeout=3)
    assert "conn-stale" in tile_class(dash_duo, "c01")
    hr = dash_duo.find_element(".tile[data-chair='c01'] .val-hr")
    wait_until(lambda: "stale" in hr.get_attribute("class"), 3, "HR greyed out")
    assert hr.text == "71" and tile_text(dash_duo, "c01", "vital-hr .age") == "7 s"

    bay.advance(14)
    dash_duo.wait_for_contains_text(".tile[data-chair='c01'] .conn", "OFFLINE", timeout=3)
    assert "conn-offline" in tile_class(dash_duo, "c01")

    bay.second({"c01": {"spo2": 96, "hr": 75}})
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .conn", "ONLINE", timeout=3)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-hr", "75", timeout=3)
    assert "stale" not in dash_duo.find_element(".tile[data-chair='c01'] .val-hr").get_attribute("class")
    assert "conn-online" in tile_class(dash_duo, "c01")


def test_a_screen_that_stops_updating_says_so(make_bay, dash_duo, monkeypatch):
    """If the browser gets no updates (server gone, network down), the whole screen greys out
    with a banner and sounds a technical alarm: a frozen screen must not look like a calm bay."""
    bay = make_bay(chairs=2)
    bay.second({"c01": {"spo2": 97, "hr": 71}})
    start(dash_duo, bay)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .conn", "ONLINE", timeout=5)
    js(dash_duo, "window.chairsideAudio.staleMs = 1500")
    assert not dash_duo.find_element(".disconnected-banner").is_displayed()

    def unreachable(*_: object, **__: object) -> None:
        raise ConnectionError("the core is unreachable")

    monkeypatch.setattr(bay.live, "snapshot", unreachable)
    wait_until(lambda: js(dash_duo, "return document.body.classList.contains('disconnected')"), 5,
               "the screen marked disconnected")
    assert dash_duo.find_element(".disconnected-banner").is_displayed()
    assert js(dash_duo, "return window.chairsideAudio.state") == "medium"
    monkeypatch.undo()
    wait_until(lambda: not js(dash_duo, "return document.body.classList.contains('disconnected')"), 5,
               "the screen live again")
    assert js(dash_duo, "return window.chairsideAudio.state") == "silent"


# --- the session workflow and the export --------------------------------------------------


def test_session_workflow_and_csv_export(make_bay, dash_duo):
    bay = make_bay(chairs=2)
    bay.second({"c01": {"spo2": 97, "hr": 70}})
    start(dash_duo, bay, "/chair/c01")
    dash_duo.wait_for_element("#start-btn", timeout=5)
    set_nurse(dash_duo, "Ben Ortiz")
    dash_duo.find_element("#start-patient").send_keys("MRN-4711")
    choose(dash_duo, "#start-protocol", "Magnesium sulfate (example)")
    wait_until(lambda: dash_duo.find_element("#start-drug").get_attribute("value") == "Magnesium sulfate",
               5, "drug prefilled from the preset")
    assert dash_duo.find_element("#start-dose").get_attribute("value") == "1 g IV over 30 min"
    click(dash_duo, "#start-btn")
    dash_duo.wait_for_contains_text("#session-msg", "Session started for MRN-4711 by Ben Ortiz", timeout=5)
    session = bay.monitor.status("c01").session
    assert session is not None and session.protocol == "magnesium"

    for i in range(5):
        bay.second({"c01": {"spo2": 97, "hr": 70 + i, "pr": 70 + i}})
    bay.second({"c01": {"nibp_sys": 121, "nibp_dia": 79, "nibp_map": 93}})
    step = "button[id*='\"kind\":\"{}\"']"
    # the pre-infusion baseline, proposed from these readings and confirmed
    dash_duo.wait_for_contains_text("#baseline-proposal", "NIBP 121/79", timeout=10)
    click(dash_duo, "button[id*='\"action\":\"baseline\"']")
    dash_duo.wait_for_contains_text("#session-msg", "Baseline confirmed", timeout=5)
    click(dash_duo, step.format("infusion_started"))
    dash_duo.wait_for_text_to_equal(".badge", "infusing", timeout=5)
    dash_duo.find_element("#sess-text").send_keys("250 mL/h")
    click(dash_duo, step.format("rate_changed"))
    dash_duo.wait_for_contains_text("#session-msg", "Rate changed: 250 mL/h", timeout=5)
    dash_duo.wait_for_contains_text(".tile[data-chair='c01'] .phase", "infusing", timeout=5)

    # the baseline, entered (over the confirmed one the field shows)
    base_sys = dash_duo.find_element("#base-nibp_sys")
    base_sys.send_keys(Keys.CONTROL, "a")
    base_sys.send_keys("124")
    click(dash_duo, "#baseline-btn")
    dash_duo.wait_for_contains_text("#session-msg", "Baseline set", timeout=5)
    assert bay.monitor.engine.baseline("c01")["nibp_sys"] == 124.0

    # this session's limits: SpO2 low (medium) 90 -> 88, below the profile's: confirmed
    spo2_low = dash_duo.find_element("input[id*='spo2_low_limit_medium'][id*='value']")
    spo2_low.send_keys(Keys.CONTROL, "a")
    spo2_low.send_keys("88")
    click(dash_duo, "#limits-save")
    dash_duo.wait_for_contains_text("#limits-confirm-list", "SpO2 low limit 90 % → 88 %", timeout=5)
    click(dash_duo, "#limits-confirm-ok")
    dash_duo.wait_for_contains_text("#limits-msg", "Limits saved by Ben Ortiz: SpO2 low limit 90 % → 88 %",
                                    timeout=5)
    (rule,) = [r for r in bay.monitor.engine.rules("c01") if r.id == "spo2_low_limit_medium"]
    assert rule.threshold == 88

    click(dash_duo, step.format("observation_started"))
    dash_duo.wait_for_contains_text(".tile[data-chair='c01'] .phase", "observation 30:00 left", timeout=5)
    href = retry_stale(lambda: dash_duo.find_element("#export-link").get_attribute("href"))
    click(dash_duo, step.format("session_ended"))
    dash_duo.wait_for_element("#start-btn", timeout=5)
    dash_duo.wait_for_contains_text("#session-msg", "Session ended", timeout=5)

    bay.monitor.store.flush(timeout=5)
    events = bay.monitor.store.session_events(session.id)
    assert [e.kind for e in events] == [K.SESSION_STARTED, K.BASELINE_SET, K.INFUSION_STARTED, K.RATE_CHANGED,
                                        K.BASELINE_SET, K.LIMITS_CHANGED, K.OBSERVATION_STARTED,
                                        K.SESSION_ENDED]
    assert {e.user for e in events} == {"Ben Ortiz"} and events[3].detail == "250 mL/h"
    assert events[1].data["source"] == "confirmed" and events[1].data["baseline"]["nibp_sys"] == 121
    actions = {a.action: a for a in bay.monitor.store.operator_actions(chair="c01")}
    assert actions["limits_changed"].user == "Ben Ortiz"
    assert actions["limits_changed"].detail["rules"] == [
        {"parameter": "spo2", "priority": "medium", "low": 88.0, "delay_s": 15.0}]
    assert dash_duo.find_element("#export-link").get_attribute("href") == href

    assert href == f"{dash_duo.server_url}/api/v1/sessions/{session.id}/export?format=csv"
    with urllib.request.urlopen(href, timeout=10) as response:
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(response.read().decode())))
    assert rows[0] == ["time_utc", "chair", "session_id", "parameter", "value", "unit", "device", "flags"]
    body = rows[1:]
    assert body and {r[1] for r in body} == {"c01"} and {r[2] for r in body} == {session.id}
    assert {"hr", "spo2", "pr", "nibp_sys"} <= {r[3] for r in body}
    assert ["nibp_sys", "121", "mmHg"] in [r[3:6] for r in body]


# --- screenshots of a realistic bay -------------------------------------------------------

PRESETS = ("magnesium", "ketamine", "dhe", "antiemetic", "fluids")
PATIENTS = ("MRN-20931", "J. Okafor", "MRN-33817", "L. Moreau", "MRN-41022", "S. Haddad", "MRN-58310",
            "K. Nowak", "MRN-60877", "A. Lindqvist", "MRN-71204", "R. Tanaka")


def populate(bay: Bay, minutes: int = 30) -> None:
    """``minutes`` of plausible readings on every chair, ending at the real time now, with
    sessions started from presets and a mix of alarms, a stale and an offline chair."""
    duration = minutes * 60
    models: dict[str, PatientModel] = {}
    plan: dict[str, str] = {}
    for i, chair in enumerate(bay.chairs):
        role = ("normal", "desat", "tachy", "sensor_off", "hypotension", "stale", "offline", "empty")[i % 8]
        if i >= 8 and role in ("offline", "desat"):
            role = "normal"
        if i in (13, 21):
            role = "empty"
        if i == 11:
            role = "paused"
        plan[chair] = role
        effects = {
            "desat": [Effect(duration - 130, 400, "spo2", -15, 60)],
            "tachy": [Effect(duration - 240, 600, "hr", 58, 60)],
            "paused": [Effect(duration - 240, 600, "hr", 52, 60)],
            "sensor_off": [Effect(duration - 45, 400, "*", flags=QualityFlag.SENSOR_OFF, no_value=True)],
            "hypotension": [Effect(duration - 1000, 2000, "nibp_sys", -48, 0)],
        }.get(role, [])
        models[chair] = PatientModel(seed=100 + i, nibp_interval_s=300 if i % 5 == 1 else 900,
                                     effects=effects)
    for i, chair in enumerate(bay.chairs):
        if plan[chair] != "empty":
            bay.monitor.start_session(chair, PATIENTS[i % len(PATIENTS)], "Anna Berg",
                                      protocol=PRESETS[i % len(PRESETS)])
    for t in range(duration):
        batch = []
        now = bay.clock.now()
        for i, chair in enumerate(bay.chairs):
            role = plan[chair]
            if role == "empty" or (role == "offline" and t > duration - 600) or (
                    role == "stale" and t > duration - 25):
                continue
            model = models[chair]
            sample = model.sample(t)
            values = dict(sample.values)
            values.update(model.nibp(t) or {})
            if i % 3 == 2:
                values.pop("hr")  # oximeter-only chairs: pulse rate from the SpO2 probe
            batch += [Reading(chair, k, v, now, now, f"mon-{chair}", t, sample.flags)
                      for k, v in values.items()]
        bay.monitor.ingest(batch)
        bay.monitor.tick()
        if t == 120 or t == 300:
            for chair in bay.chairs:
                s = bay.monitor.status(chair).session
                if s is not None and plan[chair] != "offline" and t == 120:
                    bay.monitor.session_step(s.id, K.INFUSION_STARTED, "Anna Berg", "pump B 100 mL/h")
        if t == 900:
            for chair in bay.chairs:
                s = bay.monitor.status(chair).session
                if s is not None and s.protocol == "dhe":
                    bay.monitor.session_step(s.id, K.OBSERVATION_STARTED, "Anna Berg")
                elif s is not None and s.protocol == "ketamine" and s.state.value == "infusing":
                    bay.monitor.session_step(s.id, K.RATE_CHANGED, "Anna Berg", "rate 12 mL/h")
        bay.clock.advance(1)
    for a in bay.monitor.open_alarms():
        if plan[a.chair] == "hypotension":
            bay.monitor.acknowledge(a.id, "Anna Berg")
        if plan[a.chair] == "paused" and a.sounding:
            bay.monitor.pause_audio(a.chair, "Anna Berg")
    assert bay.monitor.store.flush(timeout=20)


def full_hd(dash_duo: Any) -> None:
    """A 1920x1080 viewport, as on the wall screen (the window's frame is not counted)."""
    dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})


def wait_live(dash_duo: Any, bay: Bay) -> None:
    """Until the tiles show the latest data and the sparklines are drawn."""
    wait_until(lambda: all(i.get_attribute("src") for i in dash_duo.find_elements("img.spark")), 10,
               "sparklines drawn")
    clock = time.strftime("%H:%M:%S", time.localtime(bay.clock.now()))
    dash_duo.wait_for_text_to_equal("#clock", clock, timeout=5)
    dash_duo.wait_for_contains_text("#sound-state", "Sounding", timeout=5)


@pytest.mark.parametrize("chairs", [8, 24])
@pytest.mark.screenshots
def test_screenshots_of_a_busy_bay(make_bay, dash_duo, chairs, shots):
    bay = make_bay(chairs=chairs, start=time.time() - 1800)
    populate(bay)
    opened = {a.chair: a for a in bay.monitor.open_alarms()}
    assert {a.priority.label for a in opened.values()} >= {"high", "medium"}
    assert any(a.kind.value == "technical" for a in bay.monitor.open_alarms())
    start(dash_duo, bay)
    full_hd(dash_duo)
    click(dash_duo, "#sound-enable")
    set_nurse(dash_duo, "Anna Berg")
    wait_live(dash_duo, bay)
    assert js(dash_duo, "return window.chairsideAudio.state") == "high"
    tiles = dash_duo.find_elements(".tile")
    assert len(tiles) == chairs
    # nothing overlaps and every tile is on the screen
    boxes = [t.rect for t in tiles]
    assert all(b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= 1920 and b["y"] + b["height"] <= 1080
               for b in boxes)
    cols = 4 if chairs <= 16 else 6
    assert len({b["x"] for b in boxes}) == cols
    overflowing = js(dash_duo, """return [...document.querySelectorAll(
            '.tile .val, .tile .nibp-map, .tile .news, .tile .chair-name, .tile .vhead')]
        .filter(e => {
            const box = e.getBoundingClientRect();
            const cell = (e.closest('.vital') || e.closest('.tile')).getBoundingClientRect();
            return e.scrollWidth > e.clientWidth + 1 || box.right > cell.right + 1
                || box.left < cell.left - 1;
        }).map(e => e.textContent)""")
    assert overflowing == []
    screenshot(dash_duo, shots, f"overview-{chairs}.png")

    if chairs == 8:
        click(dash_duo, ".tile[data-chair='c02'] a.chair-name")
        dash_duo.wait_for_element(".chair-trends .main-svg", timeout=10)
        dash_duo.wait_for_contains_text("#chair-alarms", "SpO2", timeout=10)
        # this chair's alarm, acknowledged: its pop-up goes, its tile shows who acknowledged
        (high,) = [a for a in bay.monitor.open_alarms() if a.chair == "c02" and a.sounding]
        bay.monitor.acknowledge(high.id, "Anna Berg")
        dash_duo.wait_for_no_elements('.popup[data-chair="c02"]', timeout=5)
        dash_duo.wait_for_contains_text(".tile[data-chair='c02'] .alarm-state", "ACK Anna Berg", timeout=5)
        screenshot(dash_duo, shots, "chair-detail.png")
    assert not [e for e in dash_duo.get_logs() if "favicon" not in e.get("message", "")]


def test_the_dashboard_runs_under_its_content_security_policy(make_bay, dash_duo):
    bay = make_bay(chairs=2)
    start(dash_duo, bay, "/chair/c01")
    dash_duo.wait_for_element("#chair-trends", timeout=10)
    dash_duo.driver.get(dash_duo.server_url + "/")
    dash_duo.wait_for_element(".tile", timeout=10)
    with urllib.request.urlopen(dash_duo.server_url + "/", timeout=10) as page:
        csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in csp and "frame-ancestors 'none'" in csp
    errors = dash_duo.get_logs() or []  # the browser console's errors (CSP violations are)
    assert [e for e in errors if "Content Security Policy" in e.get("message", "")] == []


# --- login ------------------------------------------------------------------------------


def test_login_acts_as_the_user_and_logs_off_after_inactivity(make_bay, dash_duo):
    from dashboard.auth import CLOCK_KEY
    from monitor.users import UserStore

    bay = make_bay(chairs=2, auth={"enabled": True, "inactivity_minutes": 1})
    UserStore(bay.config.store.path).add("nurse.ann", "nurse", "ann-secret-1")
    bay.second({"c01": {"nibp_sys": 210, "spo2": 97}})
    now = [time.time()]
    app = create_app(bay.live)
    app.server.config[CLOCK_KEY] = lambda: now[0]
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(dash_duo.server.url + "/")
    wait_until(lambda: "/login" in dash_duo.driver.current_url, 10, "the login page")
    dash_duo.find_element("input[name=username]").send_keys("nurse.ann")
    dash_duo.find_element("input[name=password]").send_keys("ann-secret-1", Keys.ENTER)
    dash_duo.wait_for_element(".hdr", timeout=10)
    name = dash_duo.find_element("#nurse-input")
    wait_until(lambda: name.get_attribute("value") == "nurse.ann", 5, "the logged-in name")
    assert name.get_attribute("type") == "hidden"  # not editable: who acts is the login
    dash_duo.wait_for_contains_text("#user-badge", "nurse.ann (nurse)", timeout=5)
    dash_duo.wait_for_element(".popup[data-chair='c01'] .btn-ack", timeout=5).click()
    dash_duo.wait_for_no_elements('.popup[data-chair="c01"]', timeout=5)
    assert bay.monitor.store.flush(timeout=5)
    acks = [a for a in bay.monitor.store.operator_actions() if a.action == "acknowledge"]
    assert [a.user for a in acks] == ["nurse.ann"]

    now[0] += 61  # a minute without activity: the next refresh finds the session ended
    wait_until(lambda: "/login" in dash_duo.driver.current_url, 10, "back at the login page")
    assert bay.monitor.store.flush(timeout=5)
    assert [(a.action, a.detail.get("reason")) for a in bay.monitor.store.operator_actions()
            if a.action in ("login", "logout")] == [("login", None), ("logout", "inactivity")]
