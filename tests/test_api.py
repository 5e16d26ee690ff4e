"""The HTTP API (docs/protocols.md#api) against a real core on a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request

import pytest
from conftest import Harness
from flask import Flask

from dashboard.api import install_api
from dashboard.live import LiveBay
from dashboard.server import WebServer


@pytest.fixture
def api(harness: Harness):
    live = LiveBay(harness.monitor, max_age=60)
    app = Flask("test")
    install_api(app, live)
    return app.test_client(), live


def test_chairs_have_the_documented_fields(harness, api):
    client, _ = api
    s = harness.monitor.start_session("c1", "MRN-1", "nurse.ann", protocol="ketamine")
    harness.feed("spo2", 97)
    harness.feed("nibp_sys", 210)
    body = client.get("/api/v1/chairs").get_json()
    c1 = body["chairs"][0]
    assert set(c1) >= {"chair", "bay", "connection", "vitals", "news2", "alarms", "session"}
    assert (c1["chair"], c1["bay"], c1["connection"]) == ("c1", "bay1", "online")
    assert c1["vitals"]["spo2"]["value"] == 97 and c1["vitals"]["spo2"]["ts"].endswith("Z")
    assert c1["news2"]["partial"] is True
    assert [a["code"] for a in c1["alarms"]] == ["NIBP_SYS_HIGH"]
    assert c1["session"]["id"] == s.id and c1["session"]["protocol"] == "ketamine"
    assert body["chairs"][1]["session"] is None and body["chairs"][1]["connection"] == "offline"


def test_alarms_acknowledge_and_audit(harness, api):
    client, _ = api
    harness.feed("nibp_sys", 210)
    (alarm,) = client.get("/api/v1/alarms?state=active").get_json()["alarms"]
    assert set(alarm) >= {"id", "chair", "kind", "code", "priority", "state", "message", "raised_at",
                          "value", "limit"}
    assert (alarm["kind"], alarm["priority"], alarm["state"], alarm["value"], alarm["limit"]) == (
        "physiological", "high", "active", 210, 200)
    answer = client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", json={"user": "nurse.bob"})
    assert answer.status_code == 200
    assert answer.get_json()["state"] == "acknowledged"
    assert answer.get_json()["acknowledged_by"] == "nurse.bob"
    assert answer.headers["Cache-Control"] == "no-store"
    harness.flush()
    (action,) = harness.monitor.store.operator_actions()
    assert (action.user, action.action, action.target) == ("nurse.bob", "acknowledge", str(alarm["id"]))
    history = client.get("/api/v1/alarm-events").get_json()["events"]
    assert [e["new_state"] for e in history] == ["active", "acknowledged"]
    # state=all: the same shape as state=active, each alarm as it stands now
    (everything,) = client.get("/api/v1/alarms?state=all").get_json()["alarms"]
    assert (everything["id"], everything["state"]) == (alarm["id"], "acknowledged")


def test_pause_audio(harness, api):
    client, _ = api
    harness.feed("nibp_sys", 185)
    answer = client.post("/api/v1/chairs/c1/pause-audio", json={"user": "n", "duration_s": 30})
    assert answer.status_code == 200 and answer.get_json()["alarms"][0]["state"] == "paused"


@pytest.mark.parametrize(("method", "url", "body", "status", "message"), [
    ("post", "/api/v1/alarms/999/acknowledge", {"user": "n"}, 404, "no alarm with id 999"),
    ("post", "/api/v1/alarms/abc/acknowledge", {"user": "n"}, 404, "no alarm with id 'abc'"),
    ("post", "/api/v1/alarms/1/acknowledge", None, 400, "send a JSON object"),
    ("post", "/api/v1/alarms/1/acknowledge", {"who": "n"}, 400, 'needs "user"'),
    ("post", "/api/v1/chairs/c9/pause-audio", {"user": "n"}, 404, "no chair 'c9'"),
    ("post", "/api/v1/chairs/c1/pause-audio", {"user": "n", "duration_s": 9999}, 400, "duration_s"),
    ("get", "/api/v1/chairs/c9", None, 404, "no chair 'c9'"),
    ("get", "/api/v1/alarms?state=bogus", None, 400, "state must be"),
    ("get", "/api/v1/alarms?state=all&limit=0", None, 400, "limit must be"),
    ("get", "/api/v1/alarm-events?limit=x", None, 400, "limit must be"),
    ("get", "/api/v1/sessions/nope", None, 404, "no session with id 'nope'"),
    ("get", "/api/v1/sessions/nope/export?format=csv", None, 404, "no session with id 'nope'"),
    ("get", "/api/v1/nothing-here", None, 404, "not found"),
    ("delete", "/api/v1/chairs", None, 405, "not allowed"),
])
def test_bad_requests_get_json_4xx(api, method, url, body, status, message):
    client, _ = api
    answer = getattr(client, method)(url, json=body) if body is not None else getattr(client, method)(url)
    assert answer.status_code == status
    assert message.lower() in answer.get_json()["error"].lower()


def test_acknowledging_a_cleared_alarm_is_a_conflict(harness, api):
    client, _ = api
    harness.feed("nibp_sys", 190)
    (alarm,) = harness.monitor.open_alarms()
    harness.feed("nibp_sys", 120)
    harness.flush()
    answer = client.post(f"/api/v1/alarms/{alarm.id}/acknowledge", json={"user": "n"})
    assert answer.status_code == 409 and "is cleared" in answer.get_json()["error"]


def test_session_and_csv_export(harness, api):
    client, _ = api
    s = harness.monitor.start_session("c1", "MRN-2", "nurse.ann")
    harness.feed("hr", 72, seconds=3)
    session = client.get(f"/api/v1/sessions/{s.id}").get_json()
    assert session["patient"] == "MRN-2" and session["events"][0]["kind"] == "session_started"
    answer = client.get(f"/api/v1/sessions/{s.id}/export?format=csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert f"{s.id}-partial.csv" in answer.headers["Content-Disposition"]  # still running
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["time_utc", "chair", "session_id", "parameter", "value", "unit", "device", "flags"]
    assert [r[3:5] for r in rows[1:]] == [["hr", "72"]] * 3
    answer = client.get(f"/api/v1/sessions/{s.id}/export?format=docx")
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "format must be one of csv, zip, fhir, hl7, pdf, not 'docx'"


def test_a_change_is_answered_once_it_is_on_disk(harness, api):
    client, _ = api
    answer = client.post("/api/v1/chairs/c1/sessions", json={"user": "n", "patient": "MRN-9"})
    assert answer.status_code == 201 and "Chairside-Durable" not in answer.headers
    stats = harness.monitor.store.stats()
    assert stats["committed_ticket"] == stats["ticket"]  # committed before the answer left
    (stored,) = harness.monitor.store.open_sessions()
    assert stored.id == answer.get_json()["id"]


def test_many_readers_share_one_snapshot(harness, api):
    client, live = api
    for _ in range(10):  # ten tabs polling within the cache's age
        assert client.get("/api/v1/chairs").status_code == 200
    assert live.snapshots_taken == 1


def test_healthz_through_a_real_server(harness):
    live = LiveBay(harness.monitor)
    app = Flask("test")
    install_api(app, live)
    server = WebServer(app, port=0)
    server.start()
    try:
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as answer:
            assert answer.status == 200
            body = json.load(answer)
        assert body["status"] == "ok" and body["adapters"] == [] and body["store"]["writer_alive"]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{server.url}/api/v1/chairs/c9", timeout=10)
        assert info.value.code == 404 and json.load(info.value) == {"error": "no chair 'c9'"}
        info.value.close()
    finally:
        server.stop()


def test_the_whole_session_workflow_through_the_api_audited(harness, api):
    client, _ = api
    m = harness.monitor
    s = client.post("/api/v1/chairs/c1/sessions", json={"user": "n", "patient": "MRN-9",
                                                        "protocol": "magnesium"}).get_json()
    url = f"/api/v1/sessions/{s['id']}"
    asked = client.post(f"{url}/steps", json={"user": "n", "step": "infusion_started", "detail": "100 mL/h"})
    assert asked.status_code == 409 and "no baseline" in asked.get_json()["error"]
    assert "confirm" in asked.get_json()
    steps = [("infusion_started", "100 mL/h", True), ("rate_changed", "rate 50 mL/h", False),
             ("infusion_paused", "", False), ("infusion_resumed", "", False), ("bolus", "2 g", False),
             ("note", "feels warm", False), ("infusion_stopped", "", False),
             ("observation_started", "", False)]
    for step, detail, confirm in steps:
        answer = client.post(f"{url}/steps", json={"user": "nurse.ann", "step": step, "detail": detail,
                                                   "confirm": confirm})
        assert answer.status_code == 200, (step, answer.get_json())
    assert answer.get_json()["state"] == "observation"
    wrong = client.post(f"{url}/steps", json={"user": "n", "step": "infusion_paused"})
    assert wrong.status_code == 409 and "observation" in wrong.get_json()["error"]
    bad = client.post(f"{url}/steps", json={"user": "n", "step": "session_ended"})
    assert bad.status_code == 400 and "own routes" in bad.get_json()["error"]
    assert client.post(f"{url}/steps", json={"user": "n", "step": "note"}).status_code == 409  # needs text
    assert client.post(f"{url}/end", json={"user": "nurse.ann"}).status_code == 200
    harness.flush()
    kinds = [a.action for a in m.store.operator_actions() if a.target == s["id"]]
    assert kinds == ["start_session", *[step for step, _, _ in steps], "session_ended"]
