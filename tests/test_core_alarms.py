"""Issue 10 points 6, 7 and 8 through the core and the HTTP API, on a real SQLite file:
NIBP overdue only where NIBP is expected, manual NIBP, one clinical event one alarm,
acknowledge per chair, delayed data and device clocks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from conftest import T0, Harness
from flask import Flask

from dashboard.api import install_api
from dashboard.live import LiveBay
from monitor.readings import QualityFlag, Reading, parse_flags
from monitor.records import AlarmState

SOURCES = [
    {"kind": "serial", "name": "ox1", "chair": "c1", "port": "/dev/null-ox1", "protocol": "masimo"},
    {"kind": "serial", "name": "vt2", "chair": "c2", "port": "/dev/null-vt2", "protocol": "chairside"},
]
PROTOCOLS = {
    "mag": {"label": "Magnesium", "drug": "Magnesium sulfate", "nibp_interval_min": 15},
    "mag_manual": {"label": "Magnesium, manual BP", "drug": "Magnesium sulfate",
                   "nibp_interval_min": 15, "manual_nibp": True},
}
OVERDUE_AT = 15 * 60 + 300 + 1  # the protocol's interval + 5 min


@pytest.fixture
def bay(tmp_path: Path):
    h = Harness(tmp_path, sources=SOURCES, protocols=PROTOCOLS)
    app = Flask("test")
    live = LiveBay(h.monitor, max_age=0)
    install_api(app, live)
    yield h, app.test_client()
    h.monitor.close()


def _cycle(h: Harness, sys_: float, dia: float, mean: float, chair: str = "c1", device: str = "cuff") -> None:
    """One cuff cycle as an adapter hands it over: one batch, one device time."""
    now = h.clock.now()
    h.monitor.ingest([Reading(chair, k, v, now, now, device, None, 0)
                      for k, v in (("nibp_sys", sys_), ("nibp_dia", dia), ("nibp_map", mean))])


# --- point 6: NIBP overdue only where NIBP is expected; manual NIBP ----------------------


def test_nibp_overdue_only_on_chairs_whose_sources_can_deliver_nibp(bay):
    h, client = bay
    for chair in ("c1", "c2", "c3"):  # c1 oximeter only, c2 a Chairside line, c3 no source
        answer = client.post(f"/api/v1/chairs/{chair}/sessions",
                             json={"user": "ann", "patient": f"P-{chair}", "protocol": "mag"})
        assert answer.status_code == 201
    h.clock.advance(OVERDUE_AT)
    h.monitor.tick()
    alarms = client.get("/api/v1/alarms?state=active").get_json()["alarms"]
    assert sorted((a["chair"], a["code"]) for a in alarms) == [("c2", "NIBP_OVERDUE"), ("c3", "NIBP_OVERDUE")]


def test_a_protocol_demanding_manual_bp_and_a_manual_reading_satisfying_it(bay):
    h, client = bay
    answer = client.post("/api/v1/chairs/c1/sessions",
                         json={"user": "ann", "patient": "P-1", "protocol": "mag_manual"})
    sid = answer.get_json()["id"]
    h.feed("spo2", 97)
    h.clock.advance(OVERDUE_AT)
    h.monitor.tick()
    (overdue,) = [a for a in client.get("/api/v1/alarms").get_json()["alarms"] if a["code"] == "NIBP_OVERDUE"]
    assert overdue["chair"] == "c1" and overdue["priority"] == "low"

    answer = client.post(f"/api/v1/sessions/{sid}/manual-nibp", json={"user": "ann", "sys": 128, "dia": 82})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert (body["sys"], body["dia"], body["map"], body["manual"], body["chair"]) == (128, 82, 97, True, "c1")
    codes = [a["code"] for a in client.get("/api/v1/alarms").get_json()["alarms"]]
    assert "NIBP_OVERDUE" not in codes  # the reading satisfied the cycle
    chair = client.get("/api/v1/chairs/c1").get_json()
    assert chair["vitals"]["nibp_sys"]["value"] == 128 and chair["vitals"]["nibp_map"]["value"] == 97
    # marked manual in the trend (the buffer's flags) and in the export's flags column
    w = h.monitor.trend("c1", "nibp_sys", 600)
    assert int(w.flags[-1]) & QualityFlag.MANUAL
    h.clock.advance(1)  # a running session exports up to now
    h.flush()
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/api/v1/sessions/{sid}/export?format=csv").get_data(as_text=True))))
    manual = [r for r in rows if r["parameter"].startswith("nibp_")]
    assert [(r["parameter"], r["value"], r["device"], r["flags"]) for r in manual] == [
        ("nibp_sys", "128", "manual", "MANUAL"), ("nibp_dia", "82", "manual", "MANUAL"),
        ("nibp_map", "97", "manual", "MANUAL")]
    assert all(r["flags"] == "" for r in rows if r["parameter"] == "spo2")
    # audited as an operator action
    (action,) = [a for a in h.monitor.store.operator_actions() if a.action == "manual_nibp"]
    assert (action.user, action.chair, action.target) == ("ann", "c1", sid)
    assert action.detail == {"nibp_sys": 128, "nibp_dia": 82, "nibp_map": 97}
    # the cycle is watched from the manual reading on
    h.clock.advance(OVERDUE_AT)
    h.monitor.tick()
    assert "NIBP_OVERDUE" in [a["code"] for a in client.get("/api/v1/alarms").get_json()["alarms"]]


def test_a_manual_nibp_is_judged_against_the_limits_like_any_cycle(bay):
    h, client = bay
    sid = h.monitor.start_session("c1", "P-1", "ann").id
    assert client.post(f"/api/v1/sessions/{sid}/manual-nibp",
                       json={"user": "ann", "sys": 75, "dia": 40, "map": 50}).status_code == 201
    (alarm,) = client.get("/api/v1/alarms").get_json()["alarms"]
    assert (alarm["priority"], alarm["message"]) == (
        "high", "NIBP 75/40 mmHg (MAP 50): sys 75 < 80, MAP 50 < 65")


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"sys": 120}, 400, "dia must be a number"),
    ({"sys": "120", "dia": 80}, 400, "sys must be a number"),
    ({"sys": True, "dia": 80}, 400, "sys must be a number"),
    ({"sys": 120, "dia": 80, "map": "x"}, 400, "map must be a number of mmHg (or null)"),
    ({"sys": 320, "dia": 80}, 400, "NIBP sys must be a number from 40 to 300 mmHg, not 320"),
    ({"sys": 120, "dia": 10}, 400, "NIBP dia must be a number from 15 to 200 mmHg, not 10"),
    ({"sys": 80, "dia": 90}, 400, "diastolic (90) must be below systolic (80)"),
])
def test_manual_nibp_refuses_bad_values_naming_the_problem(bay, body, status, error):
    h, client = bay
    sid = h.monitor.start_session("c1", "P-1", "ann").id
    answer = client.post(f"/api/v1/sessions/{sid}/manual-nibp", json={"user": "ann", **body})
    assert answer.status_code == status and error in answer.get_json()["error"]
    assert h.monitor.status("c1").vitals["nibp_sys"].value is None


def test_manual_nibp_needs_an_open_session(bay):
    h, client = bay
    assert client.post("/api/v1/sessions/nope/manual-nibp",
                       json={"user": "ann", "sys": 120, "dia": 80}).status_code == 404
    s = h.monitor.start_session("c1", "P-1", "ann")
    h.monitor.end_session(s.id, "ann")
    answer = client.post(f"/api/v1/sessions/{s.id}/manual-nibp", json={"user": "ann", "sys": 120, "dia": 80})
    assert answer.status_code == 409 and "has ended" in answer.get_json()["error"]


def test_a_device_cannot_claim_a_manual_reading():
    with pytest.raises(ValueError, match="MANUAL"):
        parse_flags(["SENSOR_OFF", "MANUAL"])


# --- point 7: one clinical event, one alarm; acknowledge per chair ------------------------


def test_one_cuff_cycle_breaking_two_limits_is_one_alarm_in_the_api(bay):
    h, client = bay
    _cycle(h, 75, 40, 50)
    (alarm,) = client.get("/api/v1/alarms?state=active").get_json()["alarms"]
    assert (alarm["priority"], alarm["code"], alarm["message"]) == (
        "high", "NIBP_SYS_LOW", "NIBP 75/40 mmHg (MAP 50): sys 75 < 80, MAP 50 < 65")


def test_an_unplugged_oximeter_is_one_technical_alarm(bay):
    h, client = bay
    h.monitor.start_session("c1", "P-1", "ann")
    for _ in range(5):
        h.monitor.ingest([h.reading("spo2", 97, device="ox1"), h.reading("pr", 70, device="ox1"),
                          h.reading("hr", 70, device="ecg")])
        h.clock.advance(1)
    h.monitor.report_connection("c1", "ox1", False, "read error")  # the serial source's word
    for _ in range(60):
        h.feed("hr", 70, device="ecg")
    alarms = client.get("/api/v1/alarms").get_json()["alarms"]
    assert [(a["code"], a["message"]) for a in alarms] == [
        ("DEVICE_OFFLINE", "Monitor offline (serial line)")]  # ox1: a serial source; its name in the note


def test_acknowledge_a_whole_chair_in_one_action_audited_per_alarm(bay):
    h, client = bay
    h.monitor.start_session("c1", "P-1", "ann")
    _cycle(h, 75, 40, 50)
    h.feed("spo2", 82, seconds=16)
    _cycle(h, 210, 100, 140, chair="c2")
    open_c1 = [a for a in h.monitor.open_alarms() if a.chair == "c1"]
    assert len(open_c1) == 2
    answer = client.post("/api/v1/chairs/c1/acknowledge", json={"user": "nurse.bob"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["chair"] == "c1" and len(body["alarms"]) == 2
    assert {(a["state"], a["acknowledged_by"]) for a in body["alarms"]} == {("acknowledged", "nurse.bob")}
    states = {a.chair: a.state for a in h.monitor.open_alarms() if a.chair == "c2"}
    assert states == {"c2": AlarmState.ACTIVE}  # another chair's alarm is untouched
    h.flush()
    acks = [a for a in h.monitor.store.operator_actions() if a.action == "acknowledge"]
    assert sorted(a.target for a in acks) == sorted(str(a.id) for a in open_c1)
    assert {(a.user, a.chair) for a in acks} == {("nurse.bob", "c1")}
    # nothing left to acknowledge: a second click changes nothing and records nothing
    assert client.post("/api/v1/chairs/c1/acknowledge", json={"user": "nurse.bob"}).get_json()["alarms"] == []
    assert client.post("/api/v1/chairs/c9/acknowledge", json={"user": "n"}).status_code == 404
    assert client.post("/api/v1/chairs/c1/acknowledge", json={}).status_code == 400


# --- point 8: delayed data, device clocks -------------------------------------------------


def test_delayed_data_shows_in_the_api_and_raises_a_technical_alarm(bay):
    h, client = bay
    h.monitor.start_session("c1", "P-1", "ann")
    h.feed("spo2", 97, seconds=6, dt=-75)  # arriving every second, taken 75 s before
    chair = client.get("/api/v1/chairs/c1").get_json()
    assert chair["connection"] == "online"  # docs/protocols.md: still online, stale or offline
    assert chair["delayed"] is True and chair["delayed_s"] == {"spo2": 75}
    (alarm,) = chair["alarms"]
    assert (alarm["code"], alarm["kind"], alarm["message"]) == (
        "DATA_DELAYED", "technical", "SpO2 data delayed (75 s behind)")
    h.feed("spo2", 97)  # current again
    chair = client.get("/api/v1/chairs/c1").get_json()
    assert chair["delayed"] is False and chair["delayed_s"] == {} and chair["alarms"] == []


def test_a_device_clock_ahead_cannot_keep_a_value_fresh(bay):
    h, client = bay
    h.monitor.ingest([h.reading("hr", 72, dt=+240)])  # stamped 4 min ahead (within the skew allowed)
    h.clock.advance(11)  # nothing more arrives
    vital = client.get("/api/v1/chairs/c1").get_json()["vitals"]["hr"]
    assert vital["stale"] is True and vital["age_s"] >= 11


def test_a_device_clock_ahead_cannot_postpone_an_alarm_through_the_core(bay):
    h, _ = bay
    h.monitor.ingest([h.reading("spo2", 80, dt=+240)])
    h.clock.advance(1)
    h.feed("spo2", 80, seconds=10)
    assert [a.code for a in h.monitor.open_alarms()] == ["SPO2_LOW"]
    assert h.clock.now() - T0 <= 11


@pytest.mark.parametrize(("sections", "lag", "delayed"), [
    ({}, 15, True),  # default: the display's staleness limit (10 s): a stale value is DELAYED
    ({}, 8, False),
    ({"display": {"stale_after_s": 20}}, 15, False),
    ({"alarms": {"data_delayed_after_s": 60}}, 45, False),
    ({"alarms": {"data_delayed_after_s": 60}}, 75, True),
])
def test_the_delayed_limit_is_the_staleness_limit_unless_configured(tmp_path, sections, lag, delayed):
    h = Harness(tmp_path, **sections)
    try:
        h.monitor.start_session("c1", "P-1", "ann")
        h.feed("hr", 72, seconds=6, dt=-lag)
        status = h.monitor.status("c1")
        assert bool(status.delayed) is delayed and status.connection == "online"
        assert [a.code for a in status.alarms] == (["DATA_DELAYED"] if delayed else [])
    finally:
        h.monitor.close()
