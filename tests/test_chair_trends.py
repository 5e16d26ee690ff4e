"""The chair page's trend (issue 14 point 2): built once with the page, then patched with only
the new readings (dcc.Graph.extendData), built again only on a range, zoom, action or a
change other than continuous readings. Pure parts without a server; the page's callback
through the Flask test client; the browser's side in headless Chromium."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from conftest import T0, Harness, wait_until
from test_auth import dash_call
from ui_support import js, start

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.trend_data import COMPACT_AFTER, local_offset, parse_view
from dashboard.trend_figure import CONTINUOUS, date_strings, parse_date, trend_tail

# --- pure ---------------------------------------------------------------------------------


def test_the_tail_holds_only_readings_newer_than_the_browsers():
    t = T0 + np.arange(10.0)
    series = {"hr": (t, 70 + np.arange(10.0)), "pr": (t, np.full(10, 71.0)),
              "spo2": (t[:4], np.array([97.0, np.nan, 96.0, 95.0]))}
    last = {"hr": T0 + 6, "pr": T0 + 9, "spo2": T0 + 1}
    extend, new_last, added = trend_tail(series, last, offset=0.0)
    update, traces = extend
    assert traces == [0, 1, 2]
    assert update["x"] == [date_strings(t[7:], 0.0), [], date_strings(t[2:4], 0.0)]
    assert update["y"] == [[77.0, 78.0, 79.0], [], [96.0, 95.0]]
    assert new_last == {"hr": T0 + 9, "pr": T0 + 9, "spo2": T0 + 3} and added == 3
    # a missing value stays a gap (None), never a number
    extend, _, _ = trend_tail(series, {"hr": T0 + 9, "pr": T0 + 9, "spo2": T0}, 0.0)
    assert extend[0]["y"][2] == [None, 96.0, 95.0]
    # nothing newer: nothing to send, the last times unchanged
    assert trend_tail(series, new_last, 0.0) == (None, new_last, 0)


def test_axis_dates_go_there_and_back_in_local_time():
    offset = 3600.0
    (text,) = date_strings([T0 + 0.25], offset)
    assert text == "2027-01-15T09:00:00.250"
    assert parse_date(text, offset) == T0 + 0.25
    assert parse_date("2027-01-15 09:00:00.2504", offset) == pytest.approx(T0 + 0.2504)  # as plotly says
    assert parse_date((T0 + offset) * 1000, offset) == T0


def test_a_malformed_zoom_is_logged_and_gives_the_live_view(caplog):
    now = T0
    (a, b) = date_strings([T0 - 600, T0 - 60], local_offset(now))
    assert parse_view([b, a], now) == (T0 - 600, T0 - 60)  # either order
    with caplog.at_level(logging.WARNING, logger="dashboard.trend_data"):
        for bad in (["2027-01-15", "nonsense"], "2027-01-15", [1], [True, False], [a, a]):
            assert parse_view(bad, now) is None
    assert len([r for r in caplog.records if "zoom ignored" in r.message]) == 5
    assert "not a date: 'nonsense'" in caplog.text


# --- the page's callback ------------------------------------------------------------------


class TrendPage:
    """The chair page's trend callback, called as the browser would, with its outputs."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.app = create_app(LiveBay(h.monitor, max_age=0))
        self.client = self.app.server.test_client()
        assert self.client.get("/chair/c1").status_code == 200  # registers the page's callbacks
        self.key = next(k for k in self.app.callback_map
                        if "chair-trends.extendData" in k and "chair-alarms.children" in k)

    def call(self, state: Any, changed: tuple[str, ...] = ("chair-slow.n_intervals",),
             span: str = "session", view: Any = None) -> dict[str, Any]:
        body = dash_call(self.app, self.key, {
            "chair-slow": 1, "chair-range": span, "chair-trend-view": view, "chair-trend-rebuild": None,
            "chair-id": "c1", "chair-trend-state": state})
        body["changedPropIds"] = list(changed)
        answer = self.client.post("/_dash-update-component", json=body)
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        return answer.get_json()["response"]


def _feed(h: Harness, seconds: int, hr: float = 80) -> list[float]:
    times = []
    for _ in range(seconds):
        now = h.clock.now()
        h.monitor.ingest([h.reading("hr", hr), h.reading("pr", hr + 1), h.reading("spo2", 97)])
        h.monitor.tick()
        times.append(now)
        h.clock.advance(1)
    return times


def test_the_callback_sends_only_new_readings_then_nothing(harness):
    h = harness
    h.monitor.start_session("c1", "MRN-1", "ann")
    _feed(h, 120)
    page = TrendPage(h)
    full = page.call(None, changed=("chair-trends.relayoutData",))  # (no state yet): a build
    assert "figure" in full["chair-trends"] and "extendData" not in full["chair-trends"]
    state = full["chair-trend-state"]["data"]
    assert [t["name"] for t in full["chair-trends"]["figure"]["data"]][:3] == ["HR", "PR", "SpO2"]
    assert state["last"]["hr"] == h.clock.now() - 1

    new = _feed(h, 5, hr=90)
    answer = page.call(state)
    assert "figure" not in answer["chair-trends"]  # patched, not sent again
    update, traces = answer["chair-trends"]["extendData"]
    offset = local_offset(h.clock.now())
    assert traces == [0, 1, 2]
    assert update["x"] == [date_strings(new, offset)] * 3
    assert update["y"] == [[90.0] * 5, [91.0] * 5, [97.0] * 5]
    state2 = answer["chair-trend-state"]["data"]
    assert state2["last"] == {k: new[-1] for k in CONTINUOUS} and state2["n"] == 5
    assert state2["mode"] == "tail"

    # nothing new since: no extendData, no figure; the window still moves on with the clock
    h.clock.advance(5)
    answer = page.call(state2)
    assert "chair-trends" not in answer  # neither extendData nor figure
    state3 = answer["chair-trend-state"]["data"]
    assert state3["last"] == state2["last"] and state3["x_range"][1] > state2["x_range"][1]


def test_the_figure_is_built_again_on_what_a_patch_cannot_show(harness):
    h = harness
    session = h.monitor.start_session("c1", "MRN-1", "ann")
    _feed(h, 60)
    page = TrendPage(h)
    state = page.call(None, changed=("chair-trend-rebuild.data",))["chair-trend-state"]["data"]

    def built(answer: dict[str, Any]) -> bool:
        return "figure" in answer.get("chair-trends", {})

    # a new NIBP reading: its whisker and label come with a build
    h.monitor.ingest([h.reading("nibp_sys", 124), h.reading("nibp_dia", 78), h.reading("nibp_map", 93)])
    answer = page.call(state)
    assert built(answer)
    (nibp,) = [t for t in answer["chair-trends"]["figure"]["data"] if t["name"].startswith("NIBP")]
    assert nibp["text"] == ["124/78"]
    state = answer["chair-trend-state"]["data"]
    _feed(h, 2)
    answer = page.call(state)
    assert not built(answer)
    state = answer["chair-trend-state"]["data"]

    # a session step elsewhere (another screen, the API): its marker comes with a build
    from monitor.records import SessionEventKind as K
    h.monitor.session_step(session.id, K.NOTE, "ann", "tolerating well")
    answer = page.call(state)
    assert built(answer)
    if "Note: tolerating well" not in str(answer["chair-trends"]["figure"]["layout"]):
        # built before the store wrote the event: built again on the next tick, with it
        h.flush()
        answer = page.call(answer["chair-trend-state"]["data"])
        assert built(answer)
    assert "Note: tolerating well" in str(answer["chair-trends"]["figure"]["layout"])
    state = answer["chair-trend-state"]["data"]
    assert not built(page.call(state))  # and then patched again

    # another range: built for it
    answer = page.call(state, changed=("chair-range.value",), span="1800")
    assert built(answer) and answer["chair-trend-state"]["data"]["span"] == "1800"
    state = answer["chair-trend-state"]["data"]

    # a zoom: built for the zoomed range, no longer following the clock
    offset = local_offset(h.clock.now())
    zoom = date_strings([h.clock.now() - 40, h.clock.now() - 20], offset)
    answer = page.call(state, changed=("chair-trend-view.data",), span="1800", view=zoom)
    assert built(answer)
    state = answer["chair-trend-state"]["data"]
    assert state["live"] is False and state["view"] == [h.clock.now() - 40, h.clock.now() - 20]
    hr = answer["chair-trends"]["figure"]["data"][0]
    assert len(hr["x"]) == 21 and hr["x"][0] == zoom[0]

    # a forged or stale state from the browser: built again, never an error
    for bad in ({"chair": "c1"}, {**state, "last": {"hr": "x"}}, {**state, "chair": "c2"}, [1, 2], "x"):
        assert built(page.call(bad))

    # after COMPACT_AFTER appended points, the figure is built again (bounded browser memory)
    answer = page.call(state, changed=("chair-range.value",), span="session")
    state = answer["chair-trend-state"]["data"] | {"n": COMPACT_AFTER - 2}
    _feed(h, 3)
    assert built(page.call(state))


def test_the_page_comes_with_its_figure_and_a_skeleton(harness):
    harness.monitor.start_session("c1", "MRN-1", "ann")
    _feed(harness, 30)
    page = TrendPage(harness)
    layout = page.client.post("/_dash-update-component", json=_page_content_call(page.app, "/chair/c1"))
    text = layout.get_data(as_text=True)
    assert layout.status_code == 200 and "Loading trends" in text and "trend-skeleton" in text
    body = layout.get_json()["response"]
    graph = _find(body, "chair-trends")
    assert graph is not None
    assert [t["name"] for t in graph["props"]["figure"]["data"]][:3] == ["HR", "PR", "SpO2"]
    assert len(graph["props"]["figure"]["data"][0]["x"]) == 30


def _page_content_call(app: Any, path: str) -> dict[str, Any]:
    key = next(k for k in app.callback_map if "_pages_content.children" in k)
    spec = app.callback_map[key]
    values = {"_pages_location": path}
    inputs = [{"id": i["id"], "property": i["property"],
               "value": values.get(i["id"]) if i["property"] == "pathname" else None} for i in spec["inputs"]]
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
               for part in key.strip(".").split("...")]
    return {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0], "inputs": inputs,
            "state": [{"id": s["id"], "property": s["property"], "value": None} for s in spec["state"]],
            "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs]}


def _find(node: Any, cid: str) -> dict[str, Any] | None:
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == cid:
            return node
        return next((f for v in node.values() if (f := _find(v, cid)) is not None), None)
    if isinstance(node, list):
        return next((f for v in node if (f := _find(v, cid)) is not None), None)
    return None


# --- in the browser -----------------------------------------------------------------------

PLOT = "document.querySelector('#chair-trends .js-plotly-plot')"


def test_the_trend_grows_in_place_in_the_browser(make_bay, dash_duo):
    bay = make_bay(chairs=1)
    bay.monitor.start_session("c01", "MRN-1", "ann")
    for _ in range(60):
        bay.second({"c01": {"hr": 72, "pr": 73, "spo2": 97}})
    start(dash_duo, bay, "/chair/c01")

    # from the page's first look on: the skeleton or a drawn figure with its readings, never
    # a blank box
    def look() -> dict[str, Any]:
        return js(dash_duo, f"""const w = document.querySelector('.chair-trends');
            const sk = w && w.querySelector('.trend-skeleton'), gd = {PLOT};
            return {{box: !!w,
                     skeleton: !!sk && getComputedStyle(sk).display !== 'none' && sk.offsetHeight > 100
                              && sk.textContent.includes('Loading trends'),
                     points: gd && gd.data && gd._fullLayout ? gd.data[0].x.length : null}};""")

    seen = []

    def drawn() -> bool:
        now = look()
        seen.append(now)
        assert not now["box"] or now["skeleton"] or now["points"], now  # (box: the page is there)
        return bool(now["points"])

    wait_until(drawn, 15, "the trend figure drawn")
    assert seen[-1]["points"] == 60 and any(look["box"] for look in seen)
    assert not look()["skeleton"]  # hidden once the plot is there

    # mark the drawn trace object and the plot: a new figure (Plotly.react) would replace
    # gd.data's trace objects
    js(dash_duo, f"const gd = {PLOT}; gd.data[0].chairsideMark = 'kept'; "
                 "window.chairsideRange = gd._fullLayout.xaxis3.range.slice();")
    for _ in range(8):
        bay.second({"c01": {"hr": 88, "pr": 89, "spo2": 95}})
    wait_until(lambda: js(dash_duo, f"return {PLOT}.data[0].x.length") >= 68, 20, "new readings appended")
    gd = js(dash_duo, f"""const gd = {PLOT}; return {{mark: gd.data[0].chairsideMark,
        y: gd.data[0].y.slice(-8), spo2: gd.data[2].y.slice(-8), x: gd.data[0].x.slice(-1)[0]}};""")
    assert gd["mark"] == "kept"  # the same trace, extended: the figure was not sent again
    assert gd["y"] == [88] * 8 and gd["spo2"] == [95] * 8
    assert gd["x"] == date_strings([bay.clock.now() - 1], local_offset(bay.clock.now()))[0]
    # the time window follows the clock (Plotly.relayout from assets/chair_trends.js)
    wait_until(lambda: js(dash_duo, f"return {PLOT}._fullLayout.xaxis3.range[1] > window.chairsideRange[1]"),
               10, "the x window moved on")

    # another range: the figure is built again for it
    click_label = "Array.from(document.querySelectorAll('.trend-range label'))" \
                  ".find(l => l.textContent.trim() === '30 min').click()"
    js(dash_duo, click_label)
    wait_until(lambda: js(dash_duo, f"return {PLOT}.data[0].chairsideMark === undefined "
                                    f"&& {PLOT}.layout.uirevision === 'c01:1800:live'"),
               10, "rebuilt for 30 min")
    assert not [e for e in dash_duo.get_logs() or [] if "chair_trends" in e.get("message", "")]
