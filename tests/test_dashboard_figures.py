"""The dashboard's pure builders (dashboard.figures, dashboard.trend_figure), without a
browser: view models from a real core's state, SVG sparklines, the chair's trend figure and
its live patches."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import plotly.graph_objects as go
import pytest
from conftest import T0, Harness

from dashboard.figures import (
    TILE_FIELDS,
    alarm_event_row,
    bay_view,
    fmt_age,
    fmt_clock,
    fmt_duration,
    grid_shape,
    limit_changes,
    make_sparkline_svg,
    merge_overrides,
    popup_signature,
    popup_views,
    session_phase,
    set_display_zone,
    sound_state,
    svg_data_uri,
    tile_view,
)
from dashboard.trend_figure import ChairTrends, make_chair_trends_figure
from monitor.alarm_rules import DEFAULT_RULES
from monitor.localtime import machine_zone
from monitor.readings import QualityFlag
from monitor.records import AlarmState, Priority, SessionEvent, SessionEventKind

SVG = "{http://www.w3.org/2000/svg}"


def desaturate(h: Harness, chair: str = "c1", seconds: int = 16) -> None:
    """SpO2 86 for ``seconds`` simulated seconds (16: past the 15 s delay of SpO2 < 90)."""
    for _ in range(seconds):
        h.monitor.ingest([h.reading("spo2", 86, chair=chair), h.reading("hr", 72, chair=chair)])
        h.monitor.tick()
        h.clock.advance(1)


# --- formatting and layout ----------------------------------------------------------------


def test_formatting():
    assert [fmt_age(x) for x in (None, 0.4, 8, 59.9, 60, 3599, 3600, 7500)] == [
        "", "0 s", "8 s", "59 s", "1 min", "59 min", "1 h 00", "2 h 05"]
    assert [fmt_duration(x) for x in (0, 5, 125, 3725, -30)] == ["0:00", "0:05", "2:05", "1:02:05", "-0:30"]


@pytest.mark.parametrize(("chairs", "shape"), [(1, (1, 1)), (4, (4, 1)), (8, (4, 2)), (12, (4, 3)),
                                               (16, (4, 4)), (20, (5, 4)), (24, (6, 4)), (30, (6, 5))])
def test_grid_shape_fills_a_wide_screen(chairs, shape):
    assert grid_shape(chairs) == shape


# --- tiles ------------------------------------------------------------------------------------


def test_tile_view_has_every_live_field(harness):
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    for field, prop in TILE_FIELDS:
        assert (f"{field}_cls" if prop == "className" else field) in view
    assert all(isinstance(v, str) for v in view.values())


def test_tile_of_a_fresh_chair_without_alarms(harness):
    harness.monitor.start_session("c1", "MRN-1", "ann", protocol="ketamine")
    for _ in range(3):
        harness.monitor.ingest([harness.reading("hr", 72), harness.reading("spo2", 97)])
        harness.clock.advance(1)
    harness.monitor.ingest([harness.reading(p, v) for p, v in
                            (("nibp_sys", 124), ("nibp_dia", 78), ("nibp_map", 93))])
    harness.clock.advance(125)
    harness.monitor.ingest([harness.reading("hr", 73), harness.reading("spo2", 98)])
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert view["conn"] == "ONLINE" and "conn-online" in view["tile_cls"]
    assert "alarm-" not in view["tile_cls"] and "flash" not in view["tile_cls"]
    assert (view["hr_label"], view["hr"], view["spo2"]) == ("HR", "73", "98")
    assert "stale" not in view["hr_cls"] and view["hr_age"] == ""
    assert (view["nibp"], view["nibp_map"], view["nibp_age"]) == ("124/78", "(93)", "2 min ago")
    assert view["patient"] == "MRN-1" and view["proto"] == "Ketamine"
    assert view["phase"] == "monitoring 2:08"
    assert view["news"] == "0" and view["news_note"].startswith("partial")
    assert view["alarm"] == "" and view["alarmbar_cls"] == "alarmbar alarm-none"


def test_tile_follows_an_alarm_through_acknowledge(harness):
    desaturate(harness)
    status = harness.monitor.status("c1")
    view = tile_view(status, harness.clock.now())
    assert "alarm-medium" in view["tile_cls"] and "flash-medium" in view["tile_cls"]
    assert "in-alarm in-medium" in view["spo2_cls"] and "in-alarm" not in view["hr_cls"]
    assert view["alarm"] == "** SpO2 86 % < 90 %"
    (alarm,) = status.alarms
    harness.monitor.acknowledge(alarm.id, "Anna")
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert "acked" in view["tile_cls"] and "flash" not in view["tile_cls"]
    assert view["alarm_state"] == "ACK Anna" and "acked" in view["alarmbar_cls"]


def test_tile_shows_an_audio_pause_countdown(harness):
    desaturate(harness)
    harness.monitor.pause_audio("c1", "Anna", 90)
    harness.clock.advance(5)
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert view["alarm_state"] == "AUDIO PAUSED 1:25"
    assert "flash-medium" in view["tile_cls"]  # a pause silences; the tile still flashes


def test_a_high_alarm_flashes_red(harness):
    for _ in range(11):
        harness.monitor.ingest([harness.reading("spo2", 80)])
        harness.monitor.tick()
        harness.clock.advance(1)
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert "alarm-high" in view["tile_cls"] and "flash-high" in view["tile_cls"]
    assert view["alarm"] == "*** SpO2 80 % < 85 %"


def test_technical_alarms_are_marked_distinctly(harness):
    harness.monitor.start_session("c1", "MRN-1", "ann")
    for _ in range(12):
        harness.monitor.ingest([harness.reading("spo2", None, flags=QualityFlag.SENSOR_OFF)])
        harness.monitor.tick()
        harness.clock.advance(1)
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert " tech" in view["tile_cls"] and "tech" in view["alarmbar_cls"]
    assert view["alarm"] == "** SpO2 sensor off" and view["alarm_state"] == "TECH"
    assert "in-alarm" not in view["spo2_cls"]  # a technical alarm does not colour a value


def test_stale_and_offline_values_never_look_fresh(harness):
    harness.monitor.ingest([harness.reading("hr", 70), harness.reading("spo2", 97)])
    harness.clock.advance(12)
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert view["conn"] == "STALE 12 s" and "conn-stale" in view["tile_cls"]
    assert "stale" in view["hr_cls"] and view["hr_age"] == "12 s" and view["hr"] == "70"
    harness.clock.advance(60)
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert view["conn"] == "OFFLINE 1 min" and "conn-offline" in view["tile_cls"]
    assert "stale" in view["spo2_cls"] and view["spo2_age"] == "1 min"
    empty = tile_view(harness.monitor.status("c2"), harness.clock.now())
    assert (empty["conn"], empty["hr"], empty["hr_age"]) == ("OFFLINE", "---", "no data")
    assert empty["patient"] == "No session" and "no-session" in empty["tile_cls"]


def test_pulse_rate_stands_in_for_a_missing_heart_rate(harness):
    harness.monitor.ingest([harness.reading("pr", 88), harness.reading("spo2", 97)])
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert (view["hr_label"], view["hr"]) == ("PR", "88")


def test_session_phase_texts(harness):
    m, now = harness.monitor, harness.clock.now
    s = m.start_session("c1", "MRN-1", "ann", protocol="magnesium")
    assert session_phase(None, now()) == ""
    harness.clock.advance(60)
    s = m.session_step(s.id, SessionEventKind.INFUSION_STARTED, "ann")
    harness.clock.advance(125)
    assert session_phase(s, now()) == "infusing 2:05 / 30 min"
    s = m.session_step(s.id, SessionEventKind.OBSERVATION_STARTED, "ann")
    harness.clock.advance(60)
    assert session_phase(s, now()) == "observation 29:00 left"
    harness.clock.advance(1800)
    assert session_phase(s, now()) == "observation due 1:00 ago"


# --- sound, pop-ups, the whole bay ----------------------------------------------------------


def test_sound_follows_the_highest_sounding_alarm(harness):
    desaturate(harness, "c1")
    (medium,) = harness.monitor.open_alarms()
    assert sound_state([]) == "silent"
    assert sound_state([medium]) == "medium"
    harness.monitor.pause_audio("c1", "Anna")
    (paused,) = harness.monitor.open_alarms()
    assert paused.state is AlarmState.PAUSED and sound_state([paused]) == "silent"
    high = replace(paused, id=99, priority=Priority.HIGH, state=AlarmState.ACTIVE)
    assert sound_state([paused, high]) == "high"  # a higher priority sounds through a pause
    assert sound_state([replace(paused, state=AlarmState.ACKNOWLEDGED)]) == "silent"


def test_popups_one_per_chair_most_urgent_first(harness):
    desaturate(harness, "c1")
    for _ in range(11):
        harness.monitor.ingest([harness.reading("spo2", 80, chair="c2"),
                                harness.reading("hr", 135, chair="c2")])
        harness.monitor.tick()
        harness.clock.advance(1)
    alarms = harness.monitor.open_alarms()
    popups = popup_views(alarms, {"c1": "Chair 1", "c2": "Chair 2"}, harness.clock.now())
    assert [(p["chair"], p["priority"]) for p in popups] == [("c2", "high"), ("c1", "medium")]
    assert popups[0]["others"] == 1 and popups[0]["text"] == "*** SpO2 80 % < 85 %"
    assert popups[1]["chair_label"] == "Chair 1" and popups[1]["state_text"] == "Sounding"
    before = popup_signature(popups)
    harness.monitor.pause_audio("c1", "Anna", 60)
    after = popup_views(harness.monitor.open_alarms(), {}, harness.clock.now())
    assert after[1]["state_text"] == "Audio paused 1:00" and popup_signature(after) != before
    harness.monitor.acknowledge(after[1]["id"], "Anna")
    assert [p["chair"] for p in popup_views(harness.monitor.open_alarms(), {}, harness.clock.now())] == ["c2"]


def test_bay_view_is_small_json(tmp_path):
    h = Harness(tmp_path, chairs=24)
    try:
        for chair in h.monitor.chair_ids:
            h.monitor.start_session(chair, f"MRN-{chair}", "ann", protocol="ketamine")
        desaturate(h, "c3")
        snapshot = [h.monitor.status(c) for c in h.monitor.chair_ids]
        data, popups = bay_view(snapshot, h.clock.now(), "Bay 1")
        text = json.dumps(data)
        assert len(text) < 24 * 1000  # per tick, per tab: well under 1 kB a chair
        assert data["sound"] == "medium" and data["alarms"] == 1 and len(data["chairs"]) == 24
        assert [p["chair"] for p in popups] == ["c3"]
    finally:
        h.monitor.close()


def test_alarm_event_rows(harness):
    desaturate(harness)
    (alarm,) = harness.monitor.open_alarms()
    harness.monitor.acknowledge(alarm.id, "Anna")
    harness.flush()
    rows = [alarm_event_row(e) for e in harness.monitor.store.alarm_events(chair="c1")]
    assert [(r["change"], r["user"]) for r in rows] == [("active", ""), ("active → acknowledged", "Anna")]
    assert rows[0]["message"] == "** SpO2 86 % < 90 %" and rows[0]["priority"] == "medium"


@pytest.mark.parametrize(("zone", "clock", "date", "offset_s"), [  # T0 + 16 s: 2027-01-15 08:00:16 UTC
    ("Asia/Kolkata", "13:30:16", "2027-01-15", 19800),
    ("America/New_York", "03:00:16", "2027-01-15", -18000),
    ("Pacific/Pago_Pago", "21:00:16", "2027-01-14", -39600),  # the day before, in UTC terms
])
def test_the_dashboard_shows_the_bays_time_not_the_servers(tmp_path, zone, clock, date, offset_s):
    if datetime.fromtimestamp(T0, machine_zone()).utcoffset() == timedelta(seconds=offset_s):
        pytest.skip(f"this machine is in {zone}'s offset: the test would not tell them apart")
    from dashboard.live import LiveBay
    from dashboard.trend_data import gather_trends

    h = Harness(tmp_path, bay={"timezone": zone})
    try:
        live = LiveBay(h.monitor)  # takes the bay's zone for the dashboard's times
        desaturate(h)
        now = h.clock.now()
        assert fmt_clock(now) == clock and fmt_clock(now, seconds=False) == clock[:5]
        assert fmt_clock(now, tz=UTC) == "08:00:16"  # an explicit zone wins
        data, _ = bay_view([h.monitor.status(c) for c in h.monitor.chair_ids], now, "Bay 1")
        assert data["clock"] == clock  # the header clock
        h.flush()
        (raised,) = [alarm_event_row(e) for e in h.monitor.store.alarm_events(chair="c1")]
        assert (raised["time"], raised["date"]) == (clock[:6] + "15", date)  # raised after 15 s
        assert gather_trends(live, "c1").utc_offset_s == offset_s  # the chair page's trend axis
    finally:
        set_display_zone(None)
        h.monitor.close()


# --- the limits form ------------------------------------------------------------------------


def test_limit_changes_returns_only_what_changed():
    values = {("spo2_low_limit_medium", "value"): 88, ("spo2_low_limit_medium", "delay"): 15,
              ("hr_high_limit_medium", "value"): 120, ("hr_high_limit_medium", "delay"): 20,
              ("nibp_sys_low_baseline_medium", "value"): 25, ("nibp_sys_low_limit_high", "value"): 80}
    changed = limit_changes(DEFAULT_RULES, values)
    assert changed == [
        {"parameter": "spo2", "priority": "medium", "low": 88.0, "delay_s": 15.0},
        {"parameter": "hr", "priority": "medium", "high": 120.0, "delay_s": 20.0},
        {"parameter": "nibp_sys", "priority": "medium", "below_baseline_pct": 25.0},
    ]
    assert limit_changes(DEFAULT_RULES, {}) == []


def test_merge_overrides_replaces_the_same_rule_and_keeps_the_others():
    existing = ({"parameter": "spo2", "low": 88, "priority": "medium", "delay_s": 15},
                {"parameter": "hr", "high": 110, "priority": "medium"})
    changed = [{"parameter": "spo2", "low": 87, "priority": "medium", "delay_s": 15},
               {"parameter": "nibp_sys", "low": 95, "priority": "medium"}]
    assert merge_overrides(existing, changed) == [changed[0], existing[1], changed[1]]


# --- sparklines -------------------------------------------------------------------------------


def _paths(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(f"{SVG}path")


def _segments(d: str) -> list[list[tuple[float, float]]]:
    """A path's polylines ("M x,y L x,y x,y ..."): their points."""
    return [[(float(x), float(y)) for x, y in (p.split(",") for p in seg.replace("L", " ").split())]
            for seg in d.split("M")[1:]]


def test_sparkline_is_an_svg_with_the_trend_and_the_limits():
    t = np.arange(0, 120.0)
    svg = make_sparkline_svg(t, 97 + np.sin(t / 10), low=90, width=240, height=48)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("width") == "240"
    (limit,) = root.findall(f"{SVG}line")
    assert limit.get("stroke-dasharray")
    line = _paths(svg)[0].get("d")
    [points] = _segments(line)
    assert line.startswith("M") and len(points) == 120
    xs = [x for x, _ in points]
    assert min(xs) >= 0 and max(xs) <= 240 and xs == sorted(xs)


def test_sparkline_breaks_at_gaps_and_ends_where_the_feed_stopped():
    t = np.concatenate([np.arange(0, 50.0), np.arange(80, 100.0)])
    v = np.full(t.size, 72.0)
    v[10] = np.nan
    svg = make_sparkline_svg(t, v, t_range=(0, 200), width=200, height=40)
    d = _paths(svg)[0].get("d")
    assert len(_segments(d)) == 3  # before the missing value, after it, after the gap
    last_x = max(x for seg in _segments(d) for x, _ in seg)
    assert last_x < 110  # the data stopped at half the time range: the line stops there too


def test_sparkline_without_data_is_empty_but_valid():
    svg = make_sparkline_svg([], [], width=100, height=20)
    assert ET.fromstring(svg).tag == f"{SVG}svg" and not _paths(svg)
    assert len(_paths(make_sparkline_svg([5.0], [None], low=90))) == 0


def test_svg_data_uri_is_safe_in_an_img_src():
    uri = svg_data_uri(make_sparkline_svg([0, 1, 2], [1, 2, 3], colour="#3ddc84"))
    assert uri.startswith("data:image/svg+xml;charset=utf-8,")
    body = uri.split(",", 1)[1]
    assert "#" not in body and "<" not in body and "%233ddc84" in body


# --- the chair's trend figure -------------------------------------------------------------------


def _trends(**kw) -> ChairTrends:
    t = T0 + np.arange(0, 600.0)
    nibp_t = np.array([T0 + 60, T0 + 360])
    data = {
        "chair": "c1", "title": "Chair 1", "t_range": (T0 - 60, T0 + 660),
        "series": {"hr": (t, 70 + np.sin(t)), "pr": (t, 71 + np.sin(t)), "spo2": (t, np.full(t.size, 97.0)),
                   "nibp_sys": (nibp_t, np.array([124.0, 118.0])),
                   "nibp_dia": (nibp_t, np.array([78.0, 75.0])),
                   "nibp_map": (nibp_t, np.array([93.0, 89.0]))},
        "rules": DEFAULT_RULES, "baseline": {"nibp_sys": 125.0},
        "events": (SessionEvent("s1", "c1", T0, SessionEventKind.SESSION_STARTED, "ann"),
                   SessionEvent("s1", "c1", T0 + 120, SessionEventKind.RATE_CHANGED, "ann", "250 mL/h")),
        "alarms": ((T0 + 300, "medium", "** SpO2 86 % < 90 %"),),
    }
    return ChairTrends(**(data | kw))


def test_chair_trends_figure_lines_whiskers_limits_baseline_events():
    fig = make_chair_trends_figure(_trends())
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["HR", "PR", "SpO2", "NIBP sys/dia (MAP)"]
    assert all(t.type == "scatter" for t in fig.data)  # never scattergl
    nibp = fig.data[3]
    assert list(nibp.y) == [93.0, 89.0] and list(nibp.error_y.array) == [31.0, 29.0]
    assert list(nibp.error_y.arrayminus) == [15.0, 14.0] and list(nibp.text) == ["124/78", "118/75"]
    labels = [a.text for a in fig.layout.annotations]
    assert "SPO2 < 90" in labels and "SPO2 < 85" in labels and "MAP < 65" in labels
    assert "SYS < 100 (bl −20%)" in labels  # 20 % below the baseline of 125
    assert "baseline 125" in labels
    assert "Session start" in labels and "Rate: 250 mL/h" in labels
    dashed = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert {round(s.y0) for s in dashed} >= {90, 85, 120, 50, 150, 40, 180, 200, 80, 65, 100}
    assert fig.layout.uirevision == "c1"


def test_chair_trends_figure_without_data_or_baseline():
    empty = {k: (np.empty(0), np.empty(0)) for k in ("hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_map")}
    fig = make_chair_trends_figure(_trends(series=empty, baseline={}, events=(), alarms=()))
    labels = [a.text for a in fig.layout.annotations]
    assert not any("bl −" in x for x in labels)  # a relative rule without a baseline draws nothing
    assert len(fig.data) == 4 and fig.data[0].x == ()


# --- the app, served without a browser ----------------------------------------------------------


def test_app_serves_the_shell_the_pages_the_push_stream_and_the_api(harness):
    import dash
    from push_support import events

    from dashboard.app import NOTICE, create_app
    from dashboard.live import LiveBay

    desaturate(harness)
    app = create_app(LiveBay(harness.monitor), title="Chairside test")
    client = app.server.test_client()
    page = client.get("/")
    assert page.status_code == 200 and b"Chairside test" in page.data
    assert NOTICE in json.dumps(client.get("/_dash-layout").get_json(), ensure_ascii=False)
    paths = {p["path_template"] or p["path"] for p in dash.page_registry.values()}
    assert {"/", "/chair/<chair_id>", "/alarms"} <= paths
    assert client.get("/api/v1/chairs").status_code == 200  # the HTTP API is installed

    # a screen's stream: the whole bay first, then only what changed (here: nothing)
    (_, first), (_, second) = events(client, 2)
    assert first["sound"] == "medium" and first["c1|alarm"] == "** SpO2 86 % < 90 %"
    assert first["c1|spo2_cls"].startswith("val val-spo2") and "in-medium" in first["c1|spo2_cls"]
    assert first["popups"].startswith("1:")  # the pop-ups' signature: alarm 1 ...
    assert second == {}  # the bay's clock stands still in this test: nothing changed
    # the pop-ups are rendered by Dash when their signature changes
    answer = client.post("/_dash-update-component", json={
        "output": "popups.children", "outputs": {"id": "popups", "property": "children"},
        "inputs": [{"id": "popup-sig", "property": "data", "value": first["popups"]}],
        "changedPropIds": ["popup-sig.data"]})
    assert answer.status_code == 200
    assert "** SpO2 86 % < 90 %" in json.dumps(answer.get_json()["response"]["popups"]["children"])


# --- issue 10: delayed data on the tile, manual NIBP in the trend -------------------------------


def test_a_tile_with_late_data_shows_delayed_not_online(harness):
    harness.monitor.start_session("c1", "MRN-1", "ann")
    harness.feed("spo2", 97, seconds=6, dt=-75)
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert (view["conn"], view["conn_cls"]) == ("DELAYED 1 min", "conn conn-delayed")
    assert "conn-delayed" in view["tile_cls"] and "conn-online" not in view["tile_cls"]
    assert view["alarm"] == "** SpO2 data delayed (75 s behind)" and "tech" in view["alarmbar_cls"]
    harness.feed("spo2", 97)
    view = tile_view(harness.monitor.status("c1"), harness.clock.now())
    assert (view["conn"], view["conn_cls"], view["alarm"]) == ("ONLINE", "conn conn-online", "")


def test_manual_nibp_readings_are_marked_in_the_trend_figure():
    fig = make_chair_trends_figure(_trends(manual=(T0 + 360,)))
    (manual,) = [t for t in fig.data if t.name == "NIBP manual"]
    assert list(manual.y) == [89.0] and list(manual.text) == ["manual"]
    assert manual.marker.symbol == "circle-open"
    assert [t.name for t in make_chair_trends_figure(_trends()).data].count("NIBP manual") == 0
