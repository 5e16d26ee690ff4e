"""The accounts page (/users) in a real headless Chromium against a real SQLite file (issue
12 point 8): an administrator adds an account, resets its password, changes its role and
disables it, each audited with her name; a nurse has no Users link and gets 403 for the
page; the header shows "name (role)"; the login page is in the bay's look."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import wait_until
from selenium.webdriver.common.keys import Keys
from ui_support import Bay, choose, click, retry_stale, screenshot

from dashboard.app import NOTICE, create_app
from monitor.users import UserStore

USERS = {"admin.ada": ("admin", "ada-secret-123"), "nurse.ann": ("nurse", "ann-secret-1")}


def log_in(dash_duo: Any, bay: Bay, user: str, screenshots: Any = None) -> None:
    store = UserStore(bay.config.store.path)
    for name, (role, password) in USERS.items():
        if store.get(name) is None:
            store.add(name, role, password)
    dash_duo.start_server(create_app(bay.live), navigate=False)
    dash_duo.driver.get(dash_duo.server.url + "/login")
    dash_duo.wait_for_element("input[name=username]", timeout=10)
    if screenshots is not None:
        screenshot(dash_duo, screenshots, "login.png")
    dash_duo.find_element("input[name=username]").send_keys(user)
    dash_duo.find_element("input[name=password]").send_keys(USERS[user][1], Keys.ENTER)
    dash_duo.wait_for_element(".hdr #user-badge", timeout=10)
    click(dash_duo, "#sound-enable")  # the ALARM SOUND OFF bar covers the header until clicked
    wait_until(lambda: not dash_duo.find_element("#sound-enable").is_displayed(), 5, "the sound bar gone")


def type_into(dash_duo: Any, selector: str, text: str) -> None:
    def action() -> None:
        field = dash_duo.find_element(selector)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text)
    retry_stale(action)
    wait_until(lambda: retry_stale(lambda: dash_duo.find_element(selector).get_attribute("value")) == text,
               5, f"text in {selector}")


def user_actions(bay: Bay) -> list[tuple[str, str, str]]:
    assert bay.monitor.store.flush(timeout=5)
    return [(a.user, a.action, a.detail["username"]) for a in bay.monitor.store.operator_actions()
            if a.action.startswith("user_")]


def row_text(dash_duo: Any, user: str) -> str:
    found = dash_duo.driver.find_elements("css selector", f"#users-table tr[data-user='{user}']")
    return str(retry_stale(lambda: found[0].text)) if found else ""


@pytest.mark.screenshots
def test_an_admin_adds_resets_changes_role_and_disables_each_audited(make_bay, dash_duo, shots):
    bay = make_bay(chairs=2, auth={"enabled": True})
    log_in(dash_duo, bay, "admin.ada", shots)
    assert dash_duo.find_element("#user-badge").text == "admin.ada (admin)"
    click(dash_duo, "#nav-users")
    dash_duo.wait_for_element("#users-table tr[data-user='nurse.ann']", timeout=10)

    # add
    type_into(dash_duo, "#users-new-name", "nurse.bo")
    type_into(dash_duo, "#users-new-password", "bo-first-pass-1")
    type_into(dash_duo, "#users-new-password2", "bo-first-pass-1")
    click(dash_duo, "#users-add-btn")
    dash_duo.wait_for_text_to_equal("#users-msg", "Added nurse.bo (nurse).", timeout=5)
    wait_until(lambda: "nurse.bo nurse enabled" in row_text(dash_duo, "nurse.bo"), 5, "the new row")
    assert dash_duo.find_element("#users-new-password").get_attribute("value") == ""
    users = UserStore(bay.config.store.path)
    assert users.authenticate("nurse.bo", "bo-first-pass-1") is not None

    # reset the password (a mistyped repeat first: refused, nothing changed)
    choose(dash_duo, "#users-account", "nurse.bo")
    type_into(dash_duo, "#users-password", "bo-second-pass-2")
    type_into(dash_duo, "#users-password2", "bo-second-pass-X")
    click(dash_duo, "#users-password-btn")
    dash_duo.wait_for_text_to_equal("#users-msg", "Not done: the two passwords differ", timeout=5)
    assert "error" in dash_duo.find_element("#users-msg").get_attribute("class")
    type_into(dash_duo, "#users-password", "bo-second-pass-2")
    type_into(dash_duo, "#users-password2", "bo-second-pass-2")
    click(dash_duo, "#users-password-btn")
    dash_duo.wait_for_text_to_equal("#users-msg", "Password of nurse.bo reset.", timeout=5)
    assert users.authenticate("nurse.bo", "bo-first-pass-1") is None
    assert users.authenticate("nurse.bo", "bo-second-pass-2") is not None

    # change the role
    choose(dash_duo, "#users-role", "charge")
    click(dash_duo, "#users-role-btn")
    dash_duo.wait_for_text_to_equal("#users-msg", "nurse.bo is now charge (was nurse).", timeout=5)
    wait_until(lambda: "nurse.bo charge enabled" in row_text(dash_duo, "nurse.bo"), 5, "the new role")
    assert users.require("nurse.bo").role == "charge"

    # disable
    click(dash_duo, "#users-disable-btn")
    dash_duo.wait_for_text_to_equal(
        "#users-msg", "nurse.bo disabled: the account cannot log in, its open sessions ended.", timeout=5)
    wait_until(lambda: "disabled" in row_text(dash_duo, "nurse.bo"), 5, "the row disabled")
    assert users.authenticate("nurse.bo", "bo-second-pass-2") is None

    # her own account: refused on the screen
    choose(dash_duo, "#users-account", "admin.ada")
    click(dash_duo, "#users-disable-btn")
    dash_duo.wait_for_contains_text("#users-msg", "Not done: you cannot disable your own account here",
                                    timeout=5)
    assert not users.require("admin.ada").disabled
    screenshot(dash_duo, shots, "users.png")

    assert user_actions(bay) == [("admin.ada", "user_added", "nurse.bo"),
                                 ("admin.ada", "user_password_set", "nurse.bo"),
                                 ("admin.ada", "user_role_set", "nurse.bo"),
                                 ("admin.ada", "user_disabled", "nurse.bo")]


def test_a_nurse_has_no_users_link_and_cannot_reach_the_page(make_bay, dash_duo):
    bay = make_bay(chairs=2, auth={"enabled": True})
    log_in(dash_duo, bay, "nurse.ann")
    assert dash_duo.find_element("#user-badge").text == "nurse.ann (nurse)"
    dash_duo.wait_for_element(".hdr-nav .nav-link", timeout=5)
    assert dash_duo.driver.find_elements("css selector", "#nav-users") == []
    dash_duo.driver.get(dash_duo.server.url + "/users")
    dash_duo.wait_for_contains_text("main.login", "Your role (nurse) may not open this page.", timeout=10)
    assert dash_duo.driver.find_elements("css selector", "#users-table") == []
    # the page's own pieces in the bay's look: its name and the notice
    assert dash_duo.find_element(".hdr .bay-name").text == "Infusion bay 2"
    assert dash_duo.find_element(".hdr .notice").text == NOTICE
    assert user_actions(bay) == []
