"""Issue 15, point 5 (exports and API): the same session through a real core on SQLite and on
PostgreSQL exports byte for byte the same; the HTTP API's tests (tests/test_api.py) run again on
a PostgreSQL bay; account management through the API works there too."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Harness
from site_support import PgHarness, login

# test_api's tests, collected here again: their `harness` is this module's, on PostgreSQL
from test_api import (  # noqa: F401
    api,
    test_acknowledging_a_cleared_alarm_is_a_conflict,
    test_alarms_acknowledge_and_audit,
    test_chairs_have_the_documented_fields,
    test_healthz_through_a_real_server,
    test_pause_audio,
    test_session_and_csv_export,
    test_the_whole_session_workflow_through_the_api_audited,
)

import monitor.sessions
from dashboard.app import create_app
from dashboard.auth import AUTH_KEY, CLOCK_KEY
from dashboard.live import LiveBay
from monitor.audit import verify_records, verify_site_records
from monitor.bay_store import bay_database
from monitor.exports import export_session
from monitor.records import SessionEventKind
from monitor.users import UserStore


@pytest.fixture
def harness(tmp_path: Path, pg_url: str) -> Iterator[Harness]:
    h = PgHarness(tmp_path, pg_url, "bay1", tmp_path / "audit.key")
    yield h
    h.monitor.close()


def _session(h: Harness) -> str:
    """One scripted session: readings of two devices, a limit alarm acknowledged, steps, the end."""
    m = h.monitor
    s = m.start_session("c1", "MRN-7", "nurse.ann", protocol="ketamine")
    h.feed("hr", 72, seconds=5)
    h.feed("spo2", 97, seconds=3, device="dev-2")
    m.session_step(s.id, SessionEventKind.BOLUS, "nurse.ann", detail="2 g")
    h.feed("nibp_sys", 210, seconds=2)
    (alarm,) = m.open_alarms()
    m.acknowledge(alarm.id, "nurse.bob")
    h.feed("nibp_sys", 120, seconds=2)
    m.session_step(s.id, SessionEventKind.NOTE, "nurse.ann", detail="feels warm")
    m.end_session(s.id, "nurse.ann")
    h.flush()
    return s.id


def test_the_same_session_exports_the_same_from_either_backend(tmp_path, pg_url, monkeypatch):
    monkeypatch.setattr(monitor.sessions, "uuid", SimpleNamespace(uuid4=lambda: uuid.UUID(int=7)))
    exports = []
    (tmp_path / "sqlite").mkdir()
    for h in (Harness(tmp_path / "sqlite"), PgHarness(tmp_path / "pg", pg_url, "bay1", tmp_path / "k")):
        try:
            sid = _session(h)
            session = h.monitor.store.get_session(sid)
            out = {}
            for fmt in ("csv", "fhir", "zip"):
                buf = io.BytesIO()
                export_session(h.monitor.store, session, fmt, buf, h.clock.now(), config=h.config)
                out[fmt] = buf.getvalue()
            exports.append(out)
        finally:
            h.monitor.close()
    sqlite, pg = exports
    assert sqlite["csv"].count(b"\n") == 13 and b"nibp_sys" in sqlite["csv"]
    assert sqlite["fhir"].count(b'"resourceType":"Observation"') == 12
    with zipfile.ZipFile(io.BytesIO(sqlite["zip"])) as z:  # the session's events and alarms
        everything = b"".join(z.read(name) for name in z.namelist())
    assert b"feels warm" in everything and b"NIBP_SYS_HIGH" in everything
    assert pg == sqlite


def test_accounts_through_the_api_on_postgresql(tmp_path, pg_url):
    h = PgHarness(tmp_path, pg_url, "bay1", tmp_path / "audit.key", auth={"enabled": True})
    server = create_app(LiveBay(h.monitor, max_age=0)).server
    server.config[CLOCK_KEY] = lambda: 1_000_000.0
    database = bay_database(h.config.store, "bay1")
    try:
        UserStore(database, h.key).add("adm", "admin", "adm-secret-long-1")
        admin, answer = login(server, "adm", "adm-secret-long-1")
        assert answer.status_code == 200
        answer = admin.post("/api/v1/users", json={"username": "dee", "role": "nurse",
                                                   "password": "dee-secret-1"})
        assert answer.status_code == 201
        dee, _ = login(server, "dee", "dee-secret-1")
        listed = {u["username"]: u for u in admin.get("/api/v1/users").get_json()["users"]}
        assert (listed["dee"]["role"], listed["dee"]["sessions"]) == ("nurse", 1)
        assert admin.post("/api/v1/users/dee/role", json={"role": "charge"}).get_json()["role"] == "charge"
        assert admin.post("/api/v1/users/dee/password", json={"password": "dee-secret-22"}).status_code == 200
        assert dee.get("/api/v1/chairs").status_code == 401  # its sessions ended with the password
        assert admin.post("/api/v1/users/dee/disable", json={}).get_json()["disabled"] is True
        assert admin.post("/api/v1/users/dee/enable", json={}).get_json()["disabled"] is False
        answer = admin.post("/api/v1/users/dee/end-sessions", json={})
        assert answer.get_json()["sessions_ended"] == 0
        assert admin.post("/api/v1/users/dee/unlock", json={}).status_code == 200
        assert admin.post("/api/v1/users/nobody/disable", json={}).status_code == 404
        h.flush()
        actions = [a.action for a in h.monitor.store.operator_actions() if a.user == "adm"]
        assert actions == ["login", "user_added", "user_role_set", "user_password_set", "user_disabled",
                           "user_enabled", "user_sessions_ended", "user_unlocked"]
        assert verify_records(database, h.key).ok
        site = verify_site_records(database, h.key)
        assert site is not None and site.ok and site.sealed == {"users": 2, "bay_roles": 0}
    finally:
        server.config[AUTH_KEY].sessions.close()
        h.monitor.close()
