"""Issue 12, points 1 and 2, each by performing the attack: revocable server-side sessions
with an absolute lifetime (a copied cookie dies with its session), and the throttling of
password guessing (delays, lockout, admin unlock, constant cost, a bounded audit trail, the
NIST password policy, guessers that cannot hold the web server)."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, extract_parameters
from conftest import wait_until
from test_auth import PASSWORD, AuthBay

from dashboard.server import WebServer
from monitor.logins import CheckGate, Failures, ThrottlePolicy, after_failure, wait_s
from monitor.users import UserError, UserStore, password_problem
from station.cli import main

COOKIE = "chairside_session"


@pytest.fixture
def bay(tmp_path: Path):
    b = AuthBay(tmp_path)
    yield b
    b.h.monitor.close()


def _copy_cookie(bay: AuthBay, client: Any) -> Any:
    """A second client holding a copy of ``client``'s session cookie (a stolen cookie)."""
    thief = bay.server.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def _actions(bay: AuthBay, *names: str) -> list[Any]:
    return [a for a in bay.actions() if a.action in names]


# --- point 1: sessions ---------------------------------------------------------------------


def test_a_cookie_copied_before_logout_is_worthless_after_it(bay):
    nurse = bay.client("ann")
    thief = _copy_cookie(bay, nurse)
    assert thief.get("/api/v1/chairs").status_code == 200  # the copy works while the session lives
    assert nurse.post("/logout", json={}).status_code == 200
    answer = thief.post("/api/v1/chairs/c1/pause-audio", json={"duration_s": 60})
    assert answer.status_code == 401 and answer.get_json() == {"error": "login required"}
    assert thief.get("/").headers["Location"].startswith("/login")
    assert _actions(bay, "pause_audio") == []  # nothing was done, nor audited to the nurse


def test_session_records_hold_no_token_and_logout_ends_the_record(bay):
    nurse = bay.client("ann")
    cookie = nurse.get_cookie(COOKIE).value
    token = bay.server.session_interface.get_signing_serializer(bay.server).loads(cookie)["sid"]
    with closing(sqlite3.connect(bay.h.config.store.path)) as conn:
        rows = conn.execute("SELECT id, username, ended_at FROM auth_sessions").fetchall()
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), "ann", None)]
    assert token.encode() not in Path(bay.h.config.store.path).read_bytes()
    nurse.post("/logout", json={})
    with closing(sqlite3.connect(bay.h.config.store.path)) as conn:
        assert conn.execute("SELECT end_reason FROM auth_sessions").fetchall() == [("logout",)]


def test_a_password_change_from_the_command_line_ends_every_session(bay, monkeypatch):
    nurse, other_tab = bay.client("ann"), bay.client("ann")
    thief = _copy_cookie(bay, nurse)
    monkeypatch.setattr("sys.stdin", io.StringIO("ann-new-secret-2\n"))
    assert main(["user", "passwd", "--db", str(bay.h.config.store.path), "ann", "--password-stdin"]) == 0
    for client in (nurse, other_tab, thief):
        assert client.get("/api/v1/chairs").status_code == 401
    assert _login(bay.client(), "ann", PASSWORD["ann"]).status_code == 401
    assert _login(bay.client(), "ann", "ann-new-secret-2").status_code == 200


def test_admin_password_reset_disable_and_end_sessions_revoke_at_once(bay):
    admin = bay.client("adm")
    nurse, nurse_2 = bay.client("ann"), bay.client("ann")
    charge = bay.client("cat")
    listed = {u["username"]: u for u in admin.get("/api/v1/users").get_json()["users"]}
    assert listed["ann"]["sessions"] == 2
    assert nurse.post("/api/v1/users/cat/end-sessions", json={}).status_code == 403  # a nurse may not
    answer = admin.post("/api/v1/users/ann/end-sessions", json={})
    assert answer.status_code == 200 and answer.get_json()["sessions_ended"] == 2
    assert nurse.get("/api/v1/chairs").status_code == 401 and nurse_2.get("/api/v1/chairs").status_code == 401
    assert charge.get("/api/v1/chairs").status_code == 200  # the others keep theirs
    answer = admin.post("/api/v1/users/cat/password", json={"password": "password1"})
    assert answer.status_code == 400 and "commonly used" in answer.get_json()["error"]
    assert charge.get("/api/v1/chairs").status_code == 200  # a refused password changes nothing
    assert admin.post("/api/v1/users/cat/password", json={"password": "cat-new-secret-3"}).status_code == 200
    assert charge.get("/api/v1/chairs").status_code == 401
    nurse = bay.client("ann")
    assert admin.post("/api/v1/users/ann/disable", json={}).status_code == 200
    assert nurse.get("/api/v1/chairs").status_code == 401
    assert admin.post("/api/v1/users/ann/enable", json={}).status_code == 200
    nurse = bay.client("ann")
    assert admin.post("/api/v1/users/ann/role", json={"role": "charge"}).get_json()["role"] == "charge"
    assert nurse.get("/api/v1/config").status_code == 200  # the new role applies at once
    assert admin.post("/api/v1/users/ann/role", json={"role": "root"}).status_code == 400
    assert admin.post("/api/v1/users/nobody/unlock", json={}).status_code == 404
    done = [(a.action, a.user, a.detail.get("username")) for a in bay.actions()
            if a.action.startswith("user_")]
    assert done == [("user_sessions_ended", "adm", "ann"), ("user_password_set", "adm", "cat"),
                    ("user_disabled", "adm", "ann"), ("user_enabled", "adm", "ann"),
                    ("user_role_set", "adm", "ann")]


def test_a_session_ends_after_its_lifetime_however_active(tmp_path):
    b = AuthBay(tmp_path, session_max_hours=1, inactivity_minutes=15)
    try:
        client = b.client("ann")
        for _ in range(5):  # busy all the time: every 10 minutes
            b.now[0] += 600
            assert client.get("/api/v1/chairs").status_code == 200
        b.now[0] += 599
        assert client.get("/api/v1/chairs").status_code == 200  # 59:59
        b.now[0] += 1
        assert client.get("/api/v1/chairs").status_code == 401  # 60:00: over
        assert [a.detail["reason"] for a in _actions(b, "logout")] == ["lifetime"]
    finally:
        b.h.monitor.close()


def test_the_cookie_is_set_at_login_only_not_renewed_by_use(bay):
    client = bay.server.test_client()
    login = client.post("/login", json={"username": "ann", "password": PASSWORD["ann"]})
    assert "Set-Cookie" in login.headers
    for _ in range(3):
        bay.now[0] += 60
        answer = client.get("/api/v1/chairs")
        assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert client.get("/").status_code == 200 and "Set-Cookie" not in client.get("/").headers


# --- point 2: guessing ---------------------------------------------------------------------


def test_throttle_decisions():
    p = ThrottlePolicy(free=3, delay_s=1, max_delay_s=8, lockout=10, lockout_s=900)
    f = None
    waits = []
    for i in range(10):
        f = after_failure(f, p, 100.0 + i)
        waits.append(wait_s(f, p, 100.0 + i))
    assert waits[:3] == [0, 0, 0]  # the free ones
    assert waits[3:9] == [1, 2, 4, 8, 8, 8]  # doubling, capped
    assert f.failures == 10 and f.locked_until == 109 + 900 and waits[9] == 900
    assert wait_s(f, p, 109 + 900) == 0  # the lock has run out ...
    assert after_failure(f, p, 109 + 900).failures == 1  # ... and the count starts again
    old = Failures(5, 0, 0)
    assert wait_s(old, p, 900) == 0 and after_failure(old, p, 900).failures == 1  # forgotten
    assert after_failure(None, ThrottlePolicy(lockout=0), 0).locked_until is None  # lockout off


def test_check_gate_bounds_the_password_checks():
    gate = CheckGate(parallel=1, waiting=0)
    assert gate.enter()
    assert not gate.enter()  # full: refused at once
    gate.leave()
    assert gate.enter()
    gate.leave()
    waiting = CheckGate(parallel=1, waiting=1, wait_s=0.01)
    assert waiting.enter()
    assert not waiting.enter()  # waited its short while, then refused
    waiting.leave()


def _login(client: Any, user: str, password: str, **kw: Any) -> Any:
    return client.post("/login", json={"username": user, "password": password}, **kw)


def test_guessing_is_delayed_then_locked_and_the_right_password_refused(bay):
    client = bay.client()
    statuses = [_login(client, "ann", f"wrong-guess-{i}").status_code for i in range(4)]
    assert statuses == [401, 401, 401, 401]  # three free, then the fourth sets a delay
    early = _login(client, "ann", PASSWORD["ann"])
    assert early.status_code == 429 and early.headers["Retry-After"] == "1"
    assert "try again in 1 s" in early.get_json()["error"]
    for i in range(6):  # wait out each delay (1, 2, 4 ... s): the 10th failure locks
        bay.now[0] += 2 ** i
        assert _login(client, "ann", f"wrong-guess-{i + 4}").status_code == 401
    bay.now[0] += 120
    for _ in range(25):  # the right password during the lock: refused, unchecked
        locked = _login(client, "ann", PASSWORD["ann"])
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 600
    nobody = _login(client, "nobody", "some-password-9")  # the address is not locked yet
    assert nobody.status_code == 401
    failed = _actions(bay, "login_failed")
    assert [a.detail["failures"] for a in failed if a.user == "ann"] == list(range(1, 11))
    (lock,) = _actions(bay, "login_locked")
    assert (lock.user, lock.detail["scope"], lock.detail["failures"], lock.detail["minutes"]) == (
        "ann", "account", 10, 15)
    bay.now[0] += 15 * 60  # the lock ends: the right password works, the refusals are counted once
    assert _login(client, "ann", PASSWORD["ann"]).status_code == 200
    (refused,) = _actions(bay, "login_refused")
    assert (refused.user, refused.detail["scope"], refused.detail["attempts"]) == ("ann", "account", 26)


def test_an_admin_unlocks_a_locked_account(tmp_path, monkeypatch):
    b = AuthBay(tmp_path, login_free_failures=1, lockout_failures=2)
    try:
        client = b.client()
        assert _login(client, "ann", "wrong-guess-1").status_code == 401
        b.now[0] += 1
        assert _login(client, "ann", "wrong-guess-2").status_code == 401
        assert _login(client, "ann", PASSWORD["ann"]).status_code == 429
        admin = b.client("adm")
        listed = {u["username"]: u for u in admin.get("/api/v1/users").get_json()["users"]}
        assert listed["ann"]["locked_until"] is not None and listed["cat"]["locked_until"] is None
        assert client.post("/api/v1/users/ann/unlock", json={}).status_code == 401
        answer = admin.post("/api/v1/users/ann/unlock", json={})
        assert answer.status_code == 200 and answer.get_json()["failures_forgotten"] == 2
        assert _login(client, "ann", PASSWORD["ann"]).status_code == 200
        (unlock,) = _actions(b, "user_unlocked")
        assert (unlock.user, unlock.detail) == (
            "adm", {"username": "ann", "failures": 2, "remote": "127.0.0.1"})
        # and from the command line
        b.now[0] += 1
        for i in range(2):
            b.now[0] += 1
            _login(b.client(), "cat", f"wrong-guess-{i}")
        assert _login(b.client(), "cat", PASSWORD["cat"]).status_code == 429
        assert main(["user", "unlock", "--db", str(b.h.config.store.path), "cat"]) == 0
        assert _login(b.client(), "cat", PASSWORD["cat"]).status_code == 200
    finally:
        b.h.monitor.close()


def test_one_address_guessing_many_names_is_locked(tmp_path):
    b = AuthBay(tmp_path, address_free_failures=2, address_lockout_failures=4)
    try:
        attacker = b.client()
        there = {"environ_base": {"REMOTE_ADDR": "192.0.2.66"}}
        for i, name in enumerate(["ann", "cat", "nobody", "x" * 20]):
            b.now[0] += 2 ** i
            assert _login(attacker, name, "spray-password-1", **there).status_code == 401
        answer = _login(attacker, "adm", PASSWORD["adm"], **there)  # even the right one
        assert answer.status_code == 429
        elsewhere = {"environ_base": {"REMOTE_ADDR": "192.0.2.7"}}
        assert _login(b.client(), "adm", PASSWORD["adm"], **elsewhere).status_code == 200
        (lock,) = _actions(b, "login_locked")
        assert (lock.detail["scope"], lock.detail["remote"]) == ("address", "192.0.2.66")
    finally:
        b.h.monitor.close()


def test_unknown_empty_and_real_names_cost_one_hash_each_and_answer_alike(bay, monkeypatch):
    # argon2's own public PasswordHasher.verify, counted: whatever hasher object monitor.users
    # keeps, every password check goes through it
    real_verify = PasswordHasher.verify
    checked: list[str] = []

    def counting(self: PasswordHasher, digest: str, password: str) -> bool:
        checked.append(digest)
        return real_verify(self, digest, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    with closing(sqlite3.connect(bay.h.config.store.path)) as conn:
        (real_digest,) = conn.execute("SELECT password_hash FROM users LIMIT 1").fetchone()
    answers = []
    for name in ("ann", "old", "nobody", "", "bad name!"):
        checked.clear()
        answer = _login(bay.client(), name, "wrong-password-1")
        answers.append((answer.status_code, answer.get_json()))
        assert len(checked) == 1, name  # one argon2 check, whatever the name
        assert extract_parameters(checked[0]) == extract_parameters(real_digest)
    assert len(set(json.dumps(a) for a in answers)) == 1  # nothing tells them apart


def test_a_flood_of_empty_names_leaves_a_few_counted_audit_records(bay):
    client = bay.client()
    for _ in range(300):  # the assessor's flood: 300 attempts in 10 s
        bay.now[0] += 10 / 300
        assert _login(client, "", "").status_code in (401, 429)
    failed = _actions(bay, "login_failed")
    assert 4 <= len(failed) <= 10  # not 300
    bay.now[0] += 15 * 60  # later, one more attempt: the refused ones in one counted record each
    _login(client, "", "")
    summary = {a.detail["scope"]: a.detail["attempts"] for a in _actions(bay, "login_refused")}
    assert summary["account"] == 300 - len(failed)
    assert len(bay.actions()) < 20


@pytest.mark.parametrize(("password", "role", "problem"), [
    ("password", "nurse", "commonly used"),
    ("12345678", "nurse", "commonly used"),
    ("iloveyou123", "nurse", "commonly used"),
    ("        ", "nurse", "one character repeated"),
    ("aaaaaaaaaaaa", "admin", "one character repeated"),
    ("short-1", "nurse", "at least 8 characters"),
    ("eleven-char", "admin", "at least 12 characters"),
    ("eve12345", "nurse", "the user name"),
    ("EVE", "nurse", "at least 8"),
    ("x" * 1025, "nurse", "at most 1024"),
])
def test_password_policy_refuses(tmp_path, password, role, problem):
    assert problem in (password_problem(password, "eve", role) or "")
    with pytest.raises(UserError, match=problem):
        UserStore(tmp_path / "bay.db").add("eve", role, password)


def test_password_policy_accepts_good_ones(tmp_path):
    assert password_problem("ann-secret-1", "ann", "nurse") is None
    assert password_problem("correct horse battery", "adm", "admin") is None
    users = UserStore(tmp_path / "bay.db")
    users.add("eve", "nurse", "violet-kettle-9")
    with pytest.raises(UserError, match="at least 12"):  # an admin's password is longer
        users.add("root", "admin", "violet-kett")


def test_the_api_and_the_command_line_refuse_weak_passwords(bay, monkeypatch, capsys):
    admin = bay.client("adm")
    answer = admin.post("/api/v1/users", json={"username": "dee", "role": "nurse", "password": "12345678"})
    assert answer.status_code == 400 and "commonly used" in answer.get_json()["error"]
    monkeypatch.setattr("sys.stdin", io.StringIO("password\n"))
    assert main(["user", "add", "--db", str(bay.h.config.store.path), "dee", "--role", "nurse",
                 "--password-stdin"]) == 2
    assert "commonly used" in capsys.readouterr().err


def _post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_eight_parallel_guessers_do_not_hold_the_web_server(tmp_path):
    """Throttling off (huge limits), so only the bound on password checks protects the
    server: of 8 guessers at once most are told "busy" at once, and /healthz and the bay's
    pages keep answering from the threads that logins may not take."""
    b = AuthBay(tmp_path, login_free_failures=1000, address_free_failures=1000, lockout_failures=0,
                address_lockout_failures=0)
    server = WebServer(b.server, port=0, threads=4, auth_enabled=True)
    server.start()
    answers: list[tuple[int, dict[str, str]]] = []
    try:
        def guess(n: int) -> None:
            for i in range(3):
                answers.append(_post_json(server.url + "/login", {"username": "ann",
                                                                  "password": f"guess-{n}-{i}"}))

        guessers = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
        for t in guessers:
            t.start()
        health = []
        while any(t.is_alive() for t in guessers) and len(health) < 20:
            with urllib.request.urlopen(server.url + "/healthz", timeout=60) as answer:
                health.append(answer.status)
        for t in guessers:
            t.join(120)
        wait_until(lambda: len(answers) == 24, 10, "every guess answered")
    finally:
        server.stop()
        b.h.monitor.close()
    assert health and set(health) == {200}
    statuses = [s for s, _ in answers]
    assert set(statuses) <= {401, 503} and statuses.count(503) >= 1
    assert all(h.get("Retry-After") == "1" for s, h in answers if s == 503)
