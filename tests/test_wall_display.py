"""The read-only wall display (``[auth] wall_display = true``, nobody logged in): its screens
offer no action (no Acknowledge or Pause audio, no session or limit forms), and a 401 never
sends it away from the bay: it keeps showing the bay and sounding."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import wait_until
from test_auth import AuthBay, dash_call
from ui_support import js, screenshot

from dashboard.app import create_app

ACTION_CLASSES = ("btn-ack", "btn-pause", "btn-step", "btn-export", "start-btn", "limits-save",
                  "baseline-btn")


def call(app: Any, client: Any, output: str, values: dict[str, Any]) -> str:
    """Run the callback whose outputs include ``output`` as the browser would; its answer."""
    key = next(k for k in app.callback_map if output in k)
    answer = client.post("/_dash-update-component", json=dash_call(app, key, values))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def chair_page(client: Any, chair: str) -> str:
    """The chair page's content, as Dash's page routing fetches it."""
    answer = client.post("/_dash-update-component", json={
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [{"id": "_pages_content", "property": "children"},
                    {"id": "_pages_store", "property": "data"}],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": f"/chair/{chair}"},
                   {"id": "_pages_location", "property": "search", "value": ""}],
        "state": [], "changedPropIds": ["_pages_location.pathname"]})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def actions_in(text: str) -> set[str]:
    return {c for c in ACTION_CLASSES if c in text}


def test_the_wall_display_is_offered_no_action_where_a_nurse_is(tmp_path):
    b = AuthBay(tmp_path, wall_display=True)
    try:
        b.h.feed("nibp_sys", 210)  # a high alarm on c1
        nurse, wall = b.client("ann"), b.client()
        assert wall.get("/").status_code == 200  # (registers the pages' callbacks)
        assert nurse.post("/api/v1/chairs/c1/sessions", json={"patient": "MRN-1"}).status_code == 201
        tick = {"popup-sig": None}

        popups = call(b.app, nurse, "popups.children", tick)
        assert "popup popup-high" in popups and actions_in(popups) == {"btn-ack", "btn-pause"}
        popups = call(b.app, wall, "popups.children", tick)
        assert "popup popup-high" in popups and "NIBP sys 210" in popups
        assert actions_in(popups) == set()

        page = {"alarms-tick": 1, "alarms-sig": None}
        alarms = call(b.app, nurse, "alarms-open.children", page)
        assert "row-high" in alarms and actions_in(alarms) == {"btn-ack", "btn-pause"}
        alarms = call(b.app, wall, "alarms-open.children", page)
        assert "row-high" in alarms and actions_in(alarms) == set()

        # the chair page: with an open session, and without one
        offered = actions_in(chair_page(nurse, "c1"))
        assert {"btn-step", "btn-export", "baseline-btn"} <= offered
        assert "limits-save" not in offered  # a nurse's limits are read-only (charge, admin)
        assert "start-btn" in actions_in(chair_page(nurse, "c2"))
        for chair in ("c1", "c2"):
            page_text = chair_page(wall, chair)
            assert "Read-only wall display: log in to change limits." in page_text
            assert actions_in(page_text) == set(), chair
        assert "MRN-1" in chair_page(wall, "c1")  # the session is shown, not offered
    finally:
        b.h.monitor.close()


@pytest.mark.screenshots
def test_a_401_on_the_wall_display_keeps_the_bay_showing_and_sounding(make_bay, dash_duo, shots):
    bay = make_bay(chairs=2, auth={"enabled": True, "wall_display": True})
    bay.second({"c01": {"nibp_sys": 210, "spo2": 97}})
    (alarm,) = bay.monitor.open_alarms()
    dash_duo.start_server(create_app(bay.live))  # the wall screen: no login
    dash_duo.wait_for_element(".hdr", timeout=10)
    dash_duo.wait_for_contains_text(".hdr-nurse", "Wall display (read-only)", timeout=5)
    popup = dash_duo.wait_for_element(".popup[data-chair='c01']", timeout=5)
    assert "NIBP sys 210" in popup.text
    assert not dash_duo.find_elements(".btn-ack") and not dash_duo.find_elements(".btn-pause")
    dash_duo.find_element("#sound-enable").click()  # the ALARM SOUND OFF bar
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.state") == "high", 5, "the high tone")
    assert js(dash_duo, "return window.chairsideAudio.audible()")
    assert not dash_duo.find_element(".readonly-hint").is_displayed()

    # what tapping Acknowledge sent before: a request the server answers 401
    js(dash_duo, "window.sameDocument = true")
    status = dash_duo.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})
            .then(r => done(r.status));""", f"/api/v1/alarms/{alarm.id}/acknowledge")
    assert status == 401
    wait_until(lambda: dash_duo.find_element(".readonly-hint").is_displayed(), 5, "the read-only hint")
    dash_duo.wait_for_contains_text("#sound-state", "Sounding: HIGH", timeout=5)
    screenshot(dash_duo, shots, "wall-display.png")
    # still the same page, still live: a new reading shows, and it still sounds
    bay.second({"c01": {"nibp_sys": 205, "spo2": 93}})
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-spo2", "93", timeout=5)
    assert dash_duo.driver.current_url.rstrip("/") == dash_duo.server_url.rstrip("/")
    assert js(dash_duo, "return window.sameDocument === true")
    assert js(dash_duo, "return window.chairsideAudio.state") == "high"
    assert js(dash_duo, "return window.chairsideAudio.audible()")
    assert bay.monitor.open_alarms()[0].acknowledged_by is None

    # the alarms page and the chair page offer nothing either
    dash_duo.driver.get(dash_duo.server_url + "/alarms")
    dash_duo.wait_for_contains_text("#alarms-open", "NIBP sys", timeout=10)
    assert not dash_duo.find_elements(".btn-ack") and not dash_duo.find_elements(".btn-pause")
    dash_duo.driver.get(dash_duo.server_url + "/chair/c01")
    dash_duo.wait_for_contains_text("#limits-panel", "Read-only wall display", timeout=10)
    assert not dash_duo.find_elements("#start-btn") and not dash_duo.find_elements("#limits-save")
    assert all(not i.is_enabled() for i in dash_duo.find_elements("#limits-panel input"))
    wait_until(lambda: js(dash_duo, "return window.chairsideAudio.audible()"), 5,
               "audible again after the navigation (the remembered choice)")
