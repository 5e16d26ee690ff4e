"""Login, roles, automatic logoff, accounts and the audit of them (dashboard.auth,
monitor.users, ``chairside user``)."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness
from push_support import view
from werkzeug.routing import Rule

from dashboard.app import create_app
from dashboard.auth import AUTH_KEY, CLOCK_KEY
from dashboard.live import LiveBay
from dashboard.security import BindRefused, check_bind
from monitor.users import UserStore
from station.cli import main

PASSWORD = {"ann": "ann-secret-1", "cat": "cat-secret-1", "adm": "adm-secret-1", "old": "old-secret-1"}
PUBLIC = {"/healthz", "/metrics", "/login", "/_favicon.ico"}
STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/")


class AuthBay:
    def __init__(self, tmp_path: Path, site: Any = None, **auth: Any) -> None:
        self.h = Harness(tmp_path, auth={"enabled": True, **auth})
        users = UserStore(self.h.config.store.path)
        users.add("ann", "nurse", PASSWORD["ann"])
        users.add("cat", "charge", PASSWORD["cat"])
        users.add("adm", "admin", PASSWORD["adm"])
        users.add("old", "nurse", PASSWORD["old"])
        users.set_disabled("old")
        self.users = users
        self.now = [1_000_000.0]
        self.app = create_app(LiveBay(self.h.monitor, max_age=0, site=site))
        self.server = self.app.server
        self.server.config[CLOCK_KEY] = lambda: self.now[0]

    def client(self, user: str | None = None) -> Any:
        client = self.server.test_client()
        if user is not None:
            answer = client.post("/login", json={"username": user, "password": PASSWORD[user]})
            assert answer.status_code == 200, answer.get_data(as_text=True)
        return client

    def actions(self) -> list[Any]:
        self.h.flush()
        return self.h.monitor.store.operator_actions()


@pytest.fixture
def bay(tmp_path: Path):
    b = AuthBay(tmp_path)
    yield b
    b.h.monitor.close()


def _sample(rule: Rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", "x1", url)
    return url


def test_every_route_and_callback_needs_a_session(bay):
    # the Dash app registers its routes (and pages) as it first serves: load once
    assert bay.client().get("/").status_code == 302
    client = bay.client()
    checked = 0
    for rule in bay.server.url_map.iter_rules():
        url = _sample(rule)
        if rule.rule in PUBLIC or rule.rule.startswith(STATIC_PREFIXES) or rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            answer = client.open(url, method=method, json={} if method == "POST" else None)
            checked += 1
            if url.startswith(("/api/", "/live/", "/_dash-", "/_reload-hash")):
                assert answer.status_code == 401, (method, url, answer.status_code)
                assert answer.get_json() == {"error": "login required"}, (method, url)
            else:
                assert answer.status_code == 302, (method, url, answer.status_code)
                assert answer.headers["Location"].startswith("/login"), (method, url)
    assert checked >= 15
    # every Dash callback, by its output, answers 401 without a session
    callbacks = bay.app.callback_map
    assert len(callbacks) >= 5
    for output, spec in callbacks.items():
        body = {"output": output, "outputs": [], "inputs": [
            {"id": i["id"], "property": i["property"], "value": None} for i in spec["inputs"]],
            "state": [], "changedPropIds": []}
        answer = client.post("/_dash-update-component", json=body)
        assert answer.status_code == 401 and answer.get_json() == {"error": "login required"}, output
    # the pages of the Dash page registry redirect to the login
    import dash

    for page in dash.page_registry.values():
        path = re.sub(r"<[^>]+>", "c1", page["path_template"] or page["path"])
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login"), path
    # the public ones stay public
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/login").status_code == 200


def test_login_opens_pages_callbacks_and_api(bay):
    client = bay.client("ann")
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/chairs").status_code == 200
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200 and '"ann"' in layout.get_data(as_text=True)  # the header's name
    assert client.get("/chair/c1").status_code == 200


def _open_session(bay: AuthBay, client: Any) -> str:
    answer = client.post("/api/v1/chairs/c1/sessions", json={"patient": "MRN-1"})
    assert answer.status_code == 201, answer.get_json()
    return str(answer.get_json()["id"])


RULES = [{"parameter": "hr", "high": 130, "priority": "high"}]


@pytest.mark.parametrize(("user", "allowed"), [
    ("ann", {"ack", "pause", "session", "export"}),
    ("cat", {"ack", "pause", "session", "export", "limits", "users", "config"}),
    ("adm", {"ack", "pause", "session", "export", "limits", "users", "config"}),
])
def test_each_role_does_what_it_should_and_gets_403_otherwise(bay, user, allowed):
    h = bay.h
    client = bay.client(user)
    h.feed("nibp_sys", 210, chair="c2")
    (alarm,) = h.monitor.open_alarms()
    sid = _open_session(bay, bay.client("ann"))
    h.feed("hr", 72)
    attempts = {
        "ack": lambda: client.post(f"/api/v1/alarms/{alarm.id}/acknowledge", json={}),
        "pause": lambda: client.post("/api/v1/chairs/c2/pause-audio", json={"duration_s": 30}),
        "session": lambda: client.post("/api/v1/chairs/c3/sessions", json={"patient": "MRN-3"}),
        "export": lambda: client.get(f"/api/v1/sessions/{sid}/export?format=csv"),
        "limits": lambda: client.post(f"/api/v1/sessions/{sid}/limits", json={"rules": RULES}),
        "users": lambda: client.get("/api/v1/users"),
        "config": lambda: client.get("/api/v1/config"),
    }
    for name, attempt in attempts.items():
        answer = attempt()
        if name in allowed:
            assert answer.status_code in (200, 201), (user, name, answer.status_code, answer.get_data())
        else:
            assert answer.status_code == 403, (user, name, answer.status_code)
            assert "may not" in answer.get_json()["error"]
    assert client.get("/api/v1/chairs").status_code == 200  # everyone reads the bay
    actions = bay.actions()
    mine = {a.action for a in actions if a.user == user}
    assert "acknowledge" in mine and "pause_audio" in mine and "export" in mine  # the login's name
    (export,) = [a for a in actions if a.action == "export"]
    assert (export.target, export.detail["format"]) == (sid, "csv")
    if "users" in allowed:
        answer = client.post("/api/v1/users", json={"username": "dee", "role": "nurse",
                                                    "password": "dee-secret-1"})
        assert answer.status_code == 201
        assert client.post("/api/v1/users/dee/disable", json={}).status_code == 200
        assert {a.action for a in bay.actions() if a.user == user} >= {"user_added", "user_disabled"}
    else:
        answer = client.post("/api/v1/users", json={"username": "dee", "role": "admin",
                                                    "password": "dee-secret-1"})
        assert answer.status_code == 403


def dash_call(app: Any, key: str, values: dict[str, Any]) -> dict[str, Any]:
    """The body Dash's front end posts to run the callback ``key`` (of ``app.callback_map``),
    with ``values`` by component id (a wildcard input or state gets no components)."""
    spec = app.callback_map[key]
    outputs = []
    for part in key.strip(".").split("..."):
        cid, prop = part.rsplit(".", 1)
        outputs.append({"id": json.loads(cid) if cid.startswith("{") else cid,
                        "property": prop.split("@")[0]})

    def item(d: dict[str, Any]) -> Any:
        if isinstance(d["id"], dict) or str(d["id"]).startswith("{"):
            return []
        return {"id": d["id"], "property": d["property"], "value": values.get(d["id"])}

    inputs = [item(i) for i in spec["inputs"]]
    return {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": inputs, "state": [item(s) for s in spec["state"]],
            "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs if isinstance(i, dict)]}


def test_dash_callbacks_check_the_role(bay):
    """A nurse may not change limits through the dashboard's callback either (the refusal is
    said in the form, not only in the browser's console); a charge nurse may."""
    _open_session(bay, bay.client("ann"))
    values = {"limits-save": 1, "chair-id": "c1", "nurse-input": "someone else"}
    nurse = bay.client("ann")
    nurse.get("/")  # the app registers its page callbacks as it first serves
    key = next(k for k in bay.app.callback_map if "limits-msg.children" in k and "limits-save" in str(
        bay.app.callback_map[k]["inputs"]))
    answer = nurse.post("/_dash-update-component", json=dash_call(bay.app, key, values))
    assert answer.status_code == 200
    shown = json.dumps(answer.get_json()["response"])
    assert "Not saved: your role (nurse) may not do this (limits)" in shown
    assert "Alarm limits can be changed by a charge nurse or an administrator." in shown  # read-only
    assert [a for a in bay.actions() if a.action == "limits_changed"] == []
    charge = bay.client("cat")
    answer = charge.post("/_dash-update-component", json=dash_call(bay.app, key, values))
    assert answer.status_code in (200, 204), answer.get_data(as_text=True)[:500]


def test_logoff_after_inactivity(tmp_path):
    b = AuthBay(tmp_path, inactivity_minutes=1)
    try:
        client = b.client("ann")
        assert client.get("/api/v1/chairs").status_code == 200
        b.now[0] += 50
        assert client.get("/api/v1/chairs").status_code == 200  # activity: the timer restarts
        b.now[0] += 50
        # the screen's own push stream and its sparklines' refresh are not activity
        assert "c1|hr" in view(client)
        tick = {"output": "x", "outputs": [], "inputs": [], "state": [],
                "changedPropIds": ["spark-tick.n_intervals"]}
        client.post("/_dash-update-component", json=tick)
        b.now[0] += 11
        answer = client.get("/api/v1/chairs")
        assert answer.status_code == 401
        assert client.get("/").headers["Location"].startswith("/login")
        assert any(a.action == "logout" and a.user == "ann" and a.detail["reason"] == "inactivity"
                   for a in b.actions())
    finally:
        b.h.monitor.close()


def test_wrong_password_refused_and_audited(bay):
    client = bay.client()
    answer = client.post("/login", json={"username": "ann", "password": "wrong-password"})
    assert answer.status_code == 401 and "error" in answer.get_json()
    assert client.get("/api/v1/chairs").status_code == 401
    answer = client.post("/login", json={"username": "nobody", "password": "x" * 10})
    assert answer.status_code == 401
    failed = [a for a in bay.actions() if a.action == "login_failed"]
    assert [a.user for a in failed] == ["ann", "nobody"]


def test_login_form_with_csrf_token_and_logout(bay):
    client = bay.client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r"name='csrf' value='([^']+)'", page).group(1)
    form = {"username": "ann", "password": PASSWORD["ann"], "next": "/alarms"}
    assert client.post("/login", data=form).status_code == 400  # no token: refused
    answer = client.post("/login", data={**form, "csrf": token})
    assert answer.status_code == 302 and answer.headers["Location"] == "/alarms"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert client.get("/alarms").status_code == 200
    page = client.get("/logout").get_data(as_text=True)
    token = re.search(r"name='csrf' value='([^']+)'", page).group(1)
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 400
    assert client.post("/logout", data={"csrf": token}).status_code == 302
    assert client.get("/api/v1/chairs").status_code == 401
    kinds = [(a.action, a.user) for a in bay.actions()]
    assert ("login", "ann") in kinds and ("logout", "ann") in kinds


def test_secure_cookies_behind_tls(tmp_path):
    b = AuthBay(tmp_path, secure_cookies=True)
    try:
        answer = b.server.test_client().post("/login", json={"username": "ann", "password": PASSWORD["ann"]})
        assert "Secure" in answer.headers["Set-Cookie"]
    finally:
        b.h.monitor.close()


def test_disabled_user_cannot_log_in_and_loses_its_session(bay):
    answer = bay.client().post("/login", json={"username": "old", "password": PASSWORD["old"]})
    assert answer.status_code == 401
    client = bay.client("ann")
    bay.users.set_disabled("ann")
    assert client.get("/api/v1/chairs").status_code == 401


def test_passwords_are_stored_hashed(bay):
    with closing(sqlite3.connect(bay.h.config.store.path)) as conn:
        rows = conn.execute("SELECT username, password_hash FROM users").fetchall()
    assert len(rows) == 4
    for name, digest in rows:
        assert digest.startswith("$argon2id$") and PASSWORD[name] not in digest
    data = Path(bay.h.config.store.path).read_bytes()
    assert all(p.encode() not in data for p in PASSWORD.values())


def test_secret_key_file_has_mode_0600(bay):
    path = Path(str(bay.h.config.store.path) + ".secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert len(key) >= 64
    assert bay.server.secret_key == key.encode()


def test_wall_display_shows_the_bay_but_cannot_act(tmp_path):
    b = AuthBay(tmp_path, wall_display=True)
    try:
        b.h.feed("nibp_sys", 210)
        (alarm,) = b.h.monitor.open_alarms()
        client = b.client()
        assert client.get("/").status_code == 200
        assert "Wall display" in client.get("/_dash-layout").get_data(as_text=True)
        assert client.get("/api/v1/chairs").status_code == 401
        assert client.post(f"/api/v1/alarms/{alarm.id}/acknowledge", json={}).status_code == 401
        key = next(k for k in b.app.callback_map if "action-msg.children" in k)
        body = dash_call(b.app, key, {})
        ack = {"type": "ack", "alarm": alarm.id, "where": "p"}
        body["inputs"][0] = [{"id": ack, "property": "n_clicks", "value": 1}]
        body["changedPropIds"] = [json.dumps(ack, separators=(",", ":"), sort_keys=True) + ".n_clicks"]
        answer = client.post("/_dash-update-component", json=body)
        assert answer.status_code == 401
        assert alarm.state.value == "active" and b.h.monitor.open_alarms()[0].acknowledged_by is None
    finally:
        b.h.monitor.close()


def test_bind_rules():
    with pytest.raises(BindRefused, match="authentication is disabled"):
        check_bind("0.0.0.0")
    check_bind("0.0.0.0", auth_enabled=True)
    check_bind("127.0.0.1")


def test_auth_is_on_by_default(tmp_path):
    from monitor.config import parse_config

    config = parse_config({"chairs": [{"id": "c1"}]})
    assert (config.auth.enabled, config.auth.inactivity_minutes, config.auth.wall_display,
            config.auth.secure_cookies) == (True, 15, False, False)
    assert config.dashboard.host == "127.0.0.1"


def test_user_command_line(tmp_path, monkeypatch, capsys):
    db = str(tmp_path / "bay.db")

    def stdin(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    stdin("first-pass-1\n")
    assert main(["user", "add", "--db", db, "eve", "--role", "nurse", "--password-stdin"]) == 0
    stdin("first-pass-1\n")
    assert main(["user", "add", "--db", db, "eve", "--role", "nurse", "--password-stdin"]) == 2
    assert main(["user", "add", "--db", db, "bad name", "--role", "nurse", "--password-stdin"]) == 2
    stdin("short\n")
    assert main(["user", "add", "--db", db, "fay", "--role", "nurse", "--password-stdin"]) == 2
    prompts = iter(["fay-pass-12", "fay-pass-12"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    assert main(["user", "add", "--db", db, "fay", "--role", "charge"]) == 0
    with pytest.raises(SystemExit) as info:  # no password on the command line
        main(["user", "add", "--db", db, "gus", "--role", "nurse", "--password", "x"])
    assert info.value.code == 2
    stdin("second-pass-2\n")
    assert main(["user", "passwd", "--db", db, "eve", "--password-stdin"]) == 0
    stdin("second-pass-2\n")
    assert main(["user", "passwd", "--db", db, "nobody", "--password-stdin"]) == 2
    assert main(["user", "disable", "--db", db, "eve"]) == 0
    assert main(["user", "disable", "--db", db, "nobody"]) == 2
    capsys.readouterr()
    assert main(["user", "list", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines() == ["eve\tnurse\tdisabled", "fay\tcharge\tenabled"]
    users = UserStore(db)
    assert users.authenticate("eve", "second-pass-2") is None  # disabled
    assert users.authenticate("fay", "fay-pass-12") is not None
    assert main(["user", "enable", "--db", db, "eve"]) == 0
    assert users.authenticate("eve", "second-pass-2") is not None
    assert users.authenticate("eve", "first-pass-1") is None
    assert main(["audit", "verify", "--db", db]) == 0
    with closing(sqlite3.connect(db)) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM operator_actions ORDER BY id")]
    assert actions == ["user_added", "user_added", "user_password_set", "user_disabled", "user_enabled"]


def test_the_app_keeps_its_auth_state(bay):
    assert bay.server.config[AUTH_KEY].config.enabled
