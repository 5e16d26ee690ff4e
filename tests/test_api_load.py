"""Issue 14, point 6: the API serves many clients cheaply, structurally (bench/api.py has the
rates). A logged-in request opens no SQLite connection and re-signs no cookie, revocation
still applies to the very next request, and the bay's JSON is encoded once per snapshot
(the open alarms' once per change)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness
from flask import Flask
from test_auth import AuthBay

import dashboard.api_read
from dashboard.api import install_api
from dashboard.live import LiveBay


@pytest.fixture
def bay(tmp_path: Path):
    b = AuthBay(tmp_path)
    yield b
    b.h.monitor.close()


def _count_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    opened: list[Any] = []
    real = sqlite3.connect

    def connect(*args: Any, **kw: Any) -> sqlite3.Connection:
        opened.append(args[0] if args else kw.get("database"))
        return real(*args, **kw)

    monkeypatch.setattr(sqlite3, "connect", connect)
    return opened


def test_a_logged_in_api_request_opens_no_sqlite_connection(bay, monkeypatch):
    nurse = bay.client("ann")
    assert nurse.get("/api/v1/chairs").status_code == 200  # this thread's connection: kept from now
    opened = _count_connections(monkeypatch)
    for _ in range(3):
        bay.now[0] += 30  # activity is recorded (a write) on the kept connection too
        for url in ("/api/v1/chairs", "/api/v1/alarms", "/api/v1/chairs/c1"):
            answer = nurse.get(url)
            assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert opened == []
    with closing(sqlite3.connect(bay.h.config.store.path)) as conn:  # the activity was recorded
        (last,) = conn.execute("SELECT last_active FROM auth_sessions WHERE username = 'ann'").fetchone()
    assert last == bay.now[0]


def test_revocation_by_another_writer_applies_to_the_next_request_on_a_kept_connection(bay):
    nurse, charge = bay.client("ann"), bay.client("cat")
    assert nurse.get("/api/v1/config").status_code == 403 and charge.get("/api/v1/chairs").status_code == 200
    with closing(sqlite3.connect(bay.h.config.store.path, isolation_level=None)) as other:  # another process
        other.execute("UPDATE users SET role = 'charge' WHERE username = 'ann'")
        assert nurse.get("/api/v1/config").status_code == 200  # the new role at once
        other.execute("UPDATE auth_sessions SET ended_at = 1, end_reason = 'ended_by_admin' "
                      "WHERE username = 'cat'")
        assert charge.get("/api/v1/chairs").status_code == 401
        other.execute("UPDATE users SET disabled = 1 WHERE username = 'ann'")
        assert nurse.get("/api/v1/chairs").status_code == 401
    assert nurse.get("/api/v1/chairs").status_code == 401  # and stays out


def test_a_session_idle_too_long_ends_on_the_kept_connection(tmp_path):
    b = AuthBay(tmp_path, inactivity_minutes=15)
    try:
        client = b.client("ann")
        b.now[0] += 14 * 60
        assert client.get("/api/v1/chairs").status_code == 200  # activity: the timer starts again
        b.now[0] += 14 * 60
        assert client.get("/api/v1/chairs").status_code == 200
        b.now[0] += 15 * 60 + 1
        assert client.get("/api/v1/chairs").status_code == 401
        assert [a.detail["reason"] for a in b.actions() if a.action == "logout"] == ["inactivity"]
    finally:
        b.h.monitor.close()


def test_the_bay_json_is_encoded_once_per_snapshot(harness: Harness, monkeypatch):
    live = LiveBay(harness.monitor, max_age=3600)
    app = Flask("test")
    install_api(app, live)
    client = app.test_client()
    harness.feed("nibp_sys", 210)  # an open alarm
    made: list[str] = []
    routes = dashboard.api_read  # where the reading routes look the view builders up
    chair_json, alarm_json = routes.chair_json, routes.alarm_json
    monkeypatch.setattr(routes, "chair_json", lambda c, *a: made.append(c.chair) or chair_json(c, *a))
    monkeypatch.setattr(routes, "alarm_json", lambda a: made.append(a.code) or alarm_json(a))
    chairs = [client.get("/api/v1/chairs") for _ in range(5)]
    assert made == ["c1", "c2", "c3"]  # once for five requests
    assert len({r.get_data() for r in chairs}) == 1 and chairs[0].get_json()["chairs"][0]["chair"] == "c1"
    assert chairs[0].mimetype == "application/json" and chairs[0].headers["Cache-Control"] == "no-store"
    live.invalidate()  # a new snapshot: encoded again
    client.get("/api/v1/chairs")
    assert made == ["c1", "c2", "c3"] * 2
    made.clear()
    alarms = [client.get("/api/v1/alarms").get_json()["alarms"] for _ in range(5)]
    assert made == ["NIBP_SYS_HIGH"] and alarms[0][0]["state"] == "active"
    (alarm,) = harness.monitor.open_alarms()
    harness.monitor.acknowledge(alarm.id, "nurse.bob")  # a change: the very next answer shows it
    assert client.get("/api/v1/alarms").get_json()["alarms"][0]["state"] == "acknowledged"
    assert made == ["NIBP_SYS_HIGH"] * 2
