"""Account management by logged-in users (issue 12 point 8): who may change which account
(monitor.user_admin), each change audited in the chain, the /users page and its callback
refused to the roles without the right, the header's "name (role)", and the login and
logout pages in the bay's look. Real SQLite files, real HTTP requests through the app."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

import pytest
from test_auth import PASSWORD, AuthBay, dash_call

from dashboard.app import NOTICE as _NOTICE
from monitor.user_admin import NotPermitted, UserAdmin, refusal
from monitor.users import User, UserError
from station.cli import main

NOTICE = escape(_NOTICE)  # as the HTML pages write it


def _user(name: str, role: str, disabled: bool = False) -> User:
    return User(name, role, disabled, 0.0, 0.0)


ADM, CAT, ANN = _user("adm", "admin"), _user("cat", "charge"), _user("ann", "nurse")


def test_refusal_rules():
    assert refusal(ANN, "add", None, "nurse") == "your role (nurse) may not manage accounts"
    assert refusal(_user("x", "admin", disabled=True), "unlock", ANN) is not None
    for action in ("role", "disable", "password"):  # never one's own account
        assert "your own account" in (refusal(ADM, action, ADM, "nurse") or ""), action
        assert "your own account" in (refusal(CAT, action, CAT, "charge") or ""), action
    # a charge nurse raises nobody to admin, herself included, and leaves admins alone
    assert refusal(CAT, "add", None, "admin") == ("only an administrator may create or change an "
                                                  "administrator account")
    assert refusal(CAT, "role", ANN, "admin") is not None
    for action in ("password", "disable", "role", "unlock", "end_sessions"):
        assert refusal(CAT, action, ADM, "nurse") is not None, action
    # what is allowed
    assert refusal(CAT, "add", None, "nurse") is None and refusal(CAT, "role", ANN, "charge") is None
    assert refusal(CAT, "disable", ANN) is None and refusal(CAT, "password", ANN) is None
    assert refusal(ADM, "role", CAT, "admin") is None
    assert refusal(ADM, "disable", _user("a2", "admin")) is None
    assert refusal(ADM, "end_sessions", ADM) is None and refusal(ADM, "unlock", ANN) is None


@pytest.fixture
def bay(tmp_path):
    b = AuthBay(tmp_path)
    yield b
    b.h.monitor.close()


def test_each_change_is_made_and_audited_in_the_chain(bay):
    admin = UserAdmin(bay.users, bay.h.monitor.audit, remote="192.0.2.7")
    admin.add("adm", "bo", "nurse", "bo-secret-12")
    admin.set_password("adm", "bo", "bo-secret-34")
    admin.set_role("adm", "bo", "charge")
    admin.set_disabled("adm", "bo", True)
    assert bay.users.authenticate("bo", "bo-secret-34") is None  # disabled
    admin.set_disabled("adm", "bo", False)
    admin.unlock("adm", "bo")
    admin.end_sessions("adm", "bo")
    assert bay.users.authenticate("bo", "bo-secret-34").role == "charge"
    with pytest.raises(UserError, match="already has the role charge"):
        admin.set_role("adm", "bo", "charge")
    with pytest.raises(UserError, match="at least 8 characters"):
        admin.set_password("adm", "bo", "short")
    with pytest.raises(UserError, match="no user 'nobody'"):
        admin.set_disabled("adm", "nobody", True)
    with pytest.raises(NotPermitted, match="your own account"):
        admin.set_disabled("adm", "adm", True)
    with pytest.raises(NotPermitted, match="only an administrator"):
        admin.set_role("cat", "ann", "admin")  # a charge nurse making an admin
    with pytest.raises(NotPermitted, match="may not manage accounts"):
        admin.add("ann", "eve", "admin", "eve-secret-12")
    with pytest.raises(NotPermitted, match="not an enabled account"):
        admin.add("old", "eve", "nurse", "eve-secret-12")
    assert bay.users.get("eve") is None and bay.users.get("ann").role == "nurse"
    actions = [a for a in bay.actions() if a.action.startswith("user_")]
    assert [(a.user, a.action) for a in actions] == [
        ("adm", "user_added"), ("adm", "user_password_set"), ("adm", "user_role_set"),
        ("adm", "user_disabled"), ("adm", "user_enabled"), ("adm", "user_unlocked"),
        ("adm", "user_sessions_ended")]
    assert all(a.detail["username"] == "bo" and a.detail["remote"] == "192.0.2.7" for a in actions)
    assert (actions[2].detail["old_role"], actions[2].detail["role"]) == ("nurse", "charge")
    assert main(["audit", "verify", "--db", str(bay.h.config.store.path)]) == 0


def _manage(app: Any, button: str, values: dict[str, Any]) -> dict[str, Any]:
    """The body the /users page's browser posts when ``button`` is clicked."""
    key = next(k for k in app.callback_map if "users-msg.children" in k)
    body = dash_call(app, key, {button: 1, **values})
    body["changedPropIds"] = [f"{button}.n_clicks"]
    return body


def _shown(answer: Any) -> str:
    return json.dumps(answer.get_json()["response"])


def test_a_nurse_cannot_open_the_users_page_nor_run_its_callback(bay):
    nurse = bay.client("ann")
    page = nurse.get("/users")
    assert page.status_code == 403
    text = page.get_data(as_text=True)
    assert "Your role (nurse) may not open this page." in text and NOTICE in text
    # the page's callback, posted by hand: 403, and no account made
    body = _manage(bay.app, "users-add-btn", {"users-new-name": "mallory", "users-new-role": "admin",
                                              "users-new-password": "mallory-pw-12",
                                              "users-new-password2": "mallory-pw-12"})
    answer = nurse.post("/_dash-update-component", json=body)
    assert answer.status_code == 403
    assert bay.users.get("mallory") is None
    # the same for the role field's callback
    key = next(k for k in bay.app.callback_map if k == "users-role.value")
    assert nurse.post("/_dash-update-component", json=dash_call(
        bay.app, key, {"users-account": "adm"})).status_code == 403
    # without login: to the login page; the charge nurse and the admin open it
    assert bay.client().get("/users").headers["Location"].startswith("/login")
    for user in ("cat", "adm"):
        assert bay.client(user).get("/users").status_code == 200
    assert not [a for a in bay.actions() if a.action.startswith("user_")]


def test_the_wall_display_does_not_show_the_users_page(tmp_path):
    b = AuthBay(tmp_path, wall_display=True)
    try:
        client = b.client()
        assert client.get("/").status_code == 200  # the bay, read-only
        answer = client.get("/users")
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
        body = _manage(b.app, "users-disable-btn", {"users-account": "ann"})
        assert client.post("/_dash-update-component", json=body).status_code == 401
        assert not b.users.get("ann").disabled
    finally:
        b.h.monitor.close()


def test_a_charge_nurse_cannot_raise_herself_to_admin_through_the_page(bay):
    charge = bay.client("cat")
    charge.get("/users")
    answer = charge.post("/_dash-update-component", json=_manage(
        bay.app, "users-role-btn", {"users-account": "cat", "users-role": "admin"}))
    assert answer.status_code == 200
    assert "Not done: you cannot change the role of your own account here" in _shown(answer)
    answer = charge.post("/_dash-update-component", json=_manage(
        bay.app, "users-add-btn", {"users-new-name": "cat2", "users-new-role": "admin",
                                   "users-new-password": "cat2-secret-12",
                                   "users-new-password2": "cat2-secret-12"}))
    assert "Not done: only an administrator may create or change an administrator account" in _shown(answer)
    answer = charge.post("/_dash-update-component", json=_manage(
        bay.app, "users-password-btn", {"users-account": "adm", "users-password": "taken-over-12",
                                        "users-password2": "taken-over-12"}))
    assert "Not done: only an administrator" in _shown(answer)
    assert bay.users.authenticate("adm", PASSWORD["adm"]) is not None
    assert bay.users.get("cat").role == "charge" and bay.users.get("cat2") is None
    # what a charge nurse may do, she does (and the password fields are emptied)
    answer = charge.post("/_dash-update-component", json=_manage(
        bay.app, "users-add-btn", {"users-new-name": "dee", "users-new-role": "nurse",
                                   "users-new-password": "dee-secret-12",
                                   "users-new-password2": "dee-secret-12"}))
    response = answer.get_json()["response"]
    assert "Added dee (nurse)." in json.dumps(response)
    assert response["users-new-password"]["value"] == "" and response["users-new-password2"]["value"] == ""
    added = [(a.user, a.action, a.detail["username"]) for a in bay.actions() if a.action.startswith("user_")]
    assert added == [("cat", "user_added", "dee")]


def test_the_header_shows_name_and_role_and_the_users_link_only_to_managers(bay):
    for user, role, link in (("ann", "nurse", False), ("cat", "charge", True), ("adm", "admin", True)):
        layout = bay.client(user).get("/_dash-layout").get_data(as_text=True)
        assert f'"{user} ({role})"' in layout, user
        assert ('"nav-users"' in layout) is link, user


def test_login_and_logout_pages_look_like_the_bay(bay):
    client = bay.client()
    page = client.get("/login").get_data(as_text=True)
    assert "<span class='bay-name'>Infusion bay</span>" in page and NOTICE in page
    assert "class='hdr'" in page and "<h1>Log in</h1>" in page
    token = re.search(r"name='csrf' value='([^']+)'", page).group(1)
    client.post("/login", data={"username": "ann", "password": PASSWORD["ann"], "csrf": token})
    page = client.get("/logout").get_data(as_text=True)
    assert "Logged in as ann (nurse)." in page and NOTICE in page and "Infusion bay" in page


def test_the_api_applies_the_same_rules(bay):
    """The existing account routes go through the same checks: a charge nurse cannot make an
    admin nor disable one over HTTP; nobody disables their own account."""
    charge = bay.client("cat")
    answer = charge.post("/api/v1/users", json={"username": "cat2", "role": "admin",
                                                "password": "cat2-secret-12"})
    assert answer.status_code == 403 and "only an administrator" in answer.get_json()["error"]
    answer = charge.post("/api/v1/users/adm/disable", json={})
    assert answer.status_code == 403 and not bay.users.get("adm").disabled
    answer = bay.client("adm").post("/api/v1/users/adm/disable", json={})
    assert answer.status_code == 403 and "your own account" in answer.get_json()["error"]
    assert charge.post("/api/v1/users/nobody/disable", json={}).status_code == 404
    assert charge.post("/api/v1/users/old/disable", json={}).status_code == 409  # already disabled
    assert charge.post("/api/v1/users", json={"username": "dee", "role": "nurse",
                                              "password": "dee-secret-12"}).status_code == 201
    assert bay.users.get("cat2") is None
    assert [(a.user, a.action, a.detail["username"]) for a in bay.actions() if a.action.startswith("user_")] \
        == [("cat", "user_added", "dee")]
