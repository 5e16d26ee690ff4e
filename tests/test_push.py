"""The push channel (dashboard/push.py, assets/push.js): every screen gets what changed, at
once, over one Server-Sent Events stream per tab; a lost stream shows and sounds.

Server side through Flask's test client and a real WebServer; the screen side in a real
headless Chromium (tests/ui_support.py)."""

from __future__ import annotations

import http.client
import logging

from conftest import Harness, wait_until
from push_support import Stream, events, view
from test_auth import AuthBay
from ui_support import js, start

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.pages import LIVE_KEY
from dashboard.push import BayFeed, delta, sse, stream
from dashboard.server import WebServer
from monitor.records import SessionEventKind


def test_delta_is_what_changed():
    assert delta({}, {"a": "1"}) == {"a": "1"}
    assert delta({"a": "1", "b": "2"}, {"a": "1", "b": "3"}) == {"b": "3"}
    assert delta({"a": "1"}, {"a": "1"}) == {}


def test_the_core_says_when_what_a_screen_shows_changed(harness: Harness):
    calls = []
    harness.monitor.on_change(lambda: calls.append(1))
    harness.monitor.ingest([harness.reading("hr", 72)])
    assert len(calls) == 1  # readings taken
    harness.monitor.ingest([harness.reading("hr", 900)])  # refused: nothing changed
    harness.monitor.tick()  # nothing due
    assert len(calls) == 1
    session = harness.monitor.start_session("c1", "MRN-1", "ann")
    assert len(calls) == 2  # a session event
    harness.monitor.session_step(session.id, SessionEventKind.NOTE, "ann", "drowsy")
    assert len(calls) == 3


def test_a_reading_reaches_every_stream_as_only_what_changed(harness: Harness):
    harness.feed("hr", 70)
    client = create_app(LiveBay(harness.monitor)).server.test_client()
    with Stream(client) as one, Stream(client) as two:
        for stream in (one, two):
            first = stream.until(lambda d: True)
            assert first["c1|hr"] == "70" and first["c2|patient"] == "No session" and "clock" in first
        harness.monitor.ingest([harness.reading("hr", 75)])
        for stream in (one, two):
            change = stream.until(lambda d: "c1|hr" in d)
            assert change["c1|hr"] == "75"
            assert "c2|patient" not in change and "c1|spo2" not in change  # unchanged: not sent


def test_only_an_ha_pairs_first_event_names_its_server(harness: Harness):
    harness.feed("hr", 70)
    live = LiveBay(harness.monitor)
    assert "server" not in view(create_app(live).server.test_client())  # a single server: nothing to tell
    feed = BayFeed(live)
    assert feed.join()
    body = stream(feed, seen=lambda: None, allowed=lambda: True, hello={"server": "host:42:ab"})
    assert next(body) == "retry: 1000\n\n"
    first = next(body)
    assert '"server":"host:42:ab"' in first and '"c1|hr":"70"' in first  # with the whole view
    harness.monitor.ingest([harness.reading("hr", 75)])
    while (event := next(body)) == sse({}):
        pass
    assert "server" not in event and '"c1|hr":"75"' in event  # the first event only
    body.close()


def test_an_alarm_raised_by_time_alone_is_pushed(harness: Harness):
    client = create_app(LiveBay(harness.monitor)).server.test_client()
    harness.feed("spo2", 86, seconds=3)
    with Stream(client) as stream:
        assert stream.until(lambda d: True)["c1|alarm"] == ""
        harness.feed("spo2", 86, seconds=14)  # past the 15 s annunciation delay
        change = stream.until(lambda d: d.get("c1|alarm"))
        assert change["c1|alarm"] == "** SpO2 86 % < 90 %" and change["sound"] == "medium"
        assert "flash-medium" in change["c1|tile_cls"] and change["popups"].startswith("1:")


def test_a_login_that_ends_closes_the_stream(tmp_path):
    b = AuthBay(tmp_path, inactivity_minutes=1)
    try:
        b.server.config[LIVE_KEY].feed.check_every = 0  # check the login before every event
        client = b.client("ann")
        with Stream(client) as stream:
            stream.until(lambda d: True)
            b.now[0] += 50
            b.h.monitor.ingest([b.h.reading("hr", 70)])
            stream.until(lambda d: "c1|hr" in d)  # still logged in
            b.now[0] += 11  # the stream itself is not activity: 61 s idle
            b.h.monitor.ingest([b.h.reading("hr", 71)])
            got = stream.next()
            while got is not None and got[0] == "message":
                got = stream.next()
            assert got == ("auth", {"reason": "login ended"})
            assert stream.next() is None  # and it ends
        assert client.get("/live/check").status_code == 401  # where the screen then asks
        assert [a.detail["reason"] for a in b.actions() if a.action == "logout"] == ["inactivity"]
    finally:
        b.h.monitor.close()


def test_the_wall_display_has_its_stream_and_a_stranger_none(tmp_path):
    b = AuthBay(tmp_path, wall_display=True)
    try:
        b.h.feed("nibp_sys", 210)
        assert "NIBP sys 210" in view(b.client())["c1|alarm"]  # loopback: the wall display
        stranger = b.server.test_client()
        stranger.environ_base["REMOTE_ADDR"] = "192.0.2.1"
        answer = stranger.get("/live/stream?tab=" + "a" * 32)
        assert answer.status_code == 401 and answer.get_json() == {"error": "login required"}
    finally:
        b.h.monitor.close()


def test_more_screens_than_allowed_are_told_to_come_back(harness: Harness):
    live = LiveBay(harness.monitor)
    live.feed.max_streams = 1
    client = create_app(live).server.test_client()
    with Stream(client) as first:
        first.until(lambda d: True)
        assert events(client) == [("busy", {"retry_s": 5})]
        assert live.feed.streams == 1
    assert live.feed.streams == 0  # the tab went: its place is free
    assert events(client)[0][0] == "message"


def test_stopping_the_server_ends_open_streams_at_once(harness: Harness, caplog):
    live = LiveBay(harness.monitor)
    server = WebServer(create_app(live).server, port=0)
    server.start()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("GET", "/live/stream?tab=" + "b" * 32)
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("Content-Type").startswith("text/event-stream")
        got = b""
        while b"data: " not in got:  # the first event
            got += answer.read1()
        wait_until(lambda: live.feed.streams == 1, 10, "the stream open")
        with caplog.at_level(logging.WARNING, "chairside.web"):
            server.stop()
        assert not [r for r in caplog.records if "still running" in r.getMessage()]
        while answer.read1():  # the rest of what was sent, then the end
            pass
        assert live.feed.streams == 0
    finally:
        conn.close()
        server.stop()


# --- the screen ----------------------------------------------------------------------------


def test_pushed_values_patch_the_tiles_in_place(make_bay, dash_duo):
    bay = make_bay(chairs=3)
    bay.second({"c01": {"spo2": 97, "hr": 72}, "c02": {"spo2": 98, "hr": 80}})
    start(dash_duo, bay)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-hr", "72", timeout=10)
    # mark the elements: a re-render would replace them and lose the marks
    js(dash_duo, "document.querySelector(\".tile[data-chair='c01'] .val-hr\").csMark = 1;"
                 "document.querySelector(\".tile[data-chair='c02']\").csMark = 2;")
    events_before = js(dash_duo, "return window.chairsidePush.events")
    for hr in (90, 130):
        bay.monitor.ingest([bay.reading("c01", "hr", hr)])
        dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-hr", str(hr), timeout=10)
    assert js(dash_duo, "return document.querySelector(\".tile[data-chair='c01'] .val-hr\").csMark") == 1
    assert js(dash_duo, "return document.querySelector(\".tile[data-chair='c02']\").csMark") == 2
    assert js(dash_duo, "return window.chairsidePush.events") > events_before
    # a chair page shows the same pushed values in its tile
    dash_duo.find_element(".tile[data-chair='c01'] a.chair-name").click()
    dash_duo.wait_for_element(".chair-page .tile[data-chair='c01']", timeout=10)
    bay.monitor.ingest([bay.reading("c01", "hr", 101)])
    dash_duo.wait_for_text_to_equal(".chair-page .tile[data-chair='c01'] .val-hr", "101", timeout=10)
    assert not [e for e in dash_duo.get_logs() if e["source"] == "javascript"]  # no script error


def test_a_lost_push_connection_shows_and_sounds_and_resumes_by_itself(make_bay, dash_duo):
    bay = make_bay(chairs=2)
    bay.second({"c01": {"spo2": 97, "hr": 71}})
    start(dash_duo, bay)
    dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-hr", "71", timeout=10)
    assert js(dash_duo, "return window.chairsideAudio.staleMs") <= 2500  # shown within 3 s
    assert not dash_duo.find_element(".disconnected-banner").is_displayed()
    port = dash_duo.server.port
    dash_duo.server.stop()  # the server goes away (a restart, a network cut)
    wait_until(lambda: js(dash_duo, "return document.body.classList.contains('disconnected')"), 10,
               "the screen marked disconnected")
    assert dash_duo.find_element(".disconnected-banner").is_displayed()
    assert js(dash_duo, "return window.chairsideAudio.state") == "medium"  # and it sounds
    # the server is back on the same address: the screen reconnects by itself
    bay.monitor.ingest([bay.reading("c01", "hr", 88)])
    again = WebServer(create_app(bay.live).server, port=port)
    again.start()
    try:
        wait_until(lambda: not js(dash_duo, "return document.body.classList.contains('disconnected')"), 15,
                   "the screen live again")
        dash_duo.wait_for_text_to_equal(".tile[data-chair='c01'] .val-hr", "88", timeout=10)
        assert js(dash_duo, "return window.chairsideAudio.state") == "silent"
    finally:
        again.stop()
