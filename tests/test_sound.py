"""Whether the bay's screens can sound alarms, as the server knows it: each tab opens its push
stream saying whether its alarm tone is audible, blocked by the browser or never enabled (and
reconnects when that changes); /metrics and the alarms page show it (the browser side:
tests/test_sound_ui.py)."""

from __future__ import annotations

from typing import Any

from conftest import Harness
from push_support import events, new_tab
from test_auth import dash_call
from test_metrics import scrape

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.metrics import ClientTracker


def test_client_tracker_keeps_each_tabs_sound_state():
    now = [100.0]
    tabs = ClientTracker(window=10, limit=3, clock=lambda: now[0])
    tabs.seen("a", "audible")
    tabs.seen("b", "blocked")
    tabs.seen("c")  # nothing reported yet: not audible
    assert tabs.sounds() == {"audible": 1, "blocked": 1, "off": 1}
    tabs.seen("a")  # a poll without a report (an action's refresh) keeps the state
    tabs.seen("b", "audible")  # a click on the bar
    tabs.seen("c", "loud")  # an unknown report counts as not audible
    assert tabs.sounds() == {"audible": 2, "blocked": 0, "off": 1}
    now[0] += 6
    tabs.seen("b", "audible")
    now[0] += 6  # a and c stopped ticking: gone, with their states
    assert tabs.sounds() == {"audible": 1, "blocked": 0, "off": 0} and tabs.count() == 1
    tabs.seen("a", "blocked")  # a tab that comes back reports afresh
    for tab in "def":
        tabs.seen(tab, "audible")
    assert tabs.sounds() == {"audible": 3, "blocked": 0, "off": 0}  # at most `limit` tabs


def alarms_page(app: Any, client: Any) -> tuple[str, str]:
    """The alarms page's refresh, as its browser runs it: the sound note and its class."""
    key = next(k for k in app.callback_map if "alarms-sound.children" in k)
    answer = client.post("/_dash-update-component",
                         json=dash_call(app, key, {"alarms-tick": 1, "alarms-sig": None}))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    sound = answer.get_json()["response"]["alarms-sound"]
    return sound["children"], sound["className"]


def screens(client: Any) -> tuple[float, float, float]:
    m = scrape(client)
    return (m[("chairside_screens_connected", ())], m[("chairside_screens_audible", ())],
            m[("chairside_screens_sound_blocked", ())])


def test_metrics_and_the_alarms_page_say_whether_any_screen_can_sound(harness: Harness):
    app = create_app(LiveBay(harness.monitor))
    client = app.server.test_client()
    assert client.get("/alarms").status_code == 200  # registers the pages' callbacks
    assert screens(client) == (0, 0, 0)
    assert alarms_page(app, client) == ("No bay screen can sound alarms: no screen is connected.",
                                        "sound-note warning")

    bay = new_tab()
    events(client, tab=bay, sound="off")  # a bay screen where sound was never enabled
    assert screens(client) == (1, 0, 0)
    assert scrape(client)[("chairside_dashboard_clients", ())] == 1
    text, cls = alarms_page(app, client)
    assert cls == "sound-note warning"
    assert text.startswith("No bay screen can sound alarms: 1 screen connected, sound never enabled on 1.")

    desk = new_tab()
    events(client, tab=desk, sound="blocked")  # a second screen: enabled, but its browser blocks it
    assert screens(client) == (2, 0, 1)
    text, _ = alarms_page(app, client)
    assert text.startswith("No bay screen can sound alarms: 2 screens connected, "
                           "sound blocked by the browser on 1 and never enabled on 1.")

    events(client, tab=bay, sound="audible")  # the nurse clicks the bar: the tab reconnects
    assert screens(client) == (2, 1, 1)
    assert alarms_page(app, client) == ("Alarm sound on at 1 of 2 connected screens.", "sound-note ok")
    events(client, tab=desk, sound=None)  # a stream without the state counts as not audible
    assert screens(client) == (2, 1, 0)
