"""The limits form in a real headless Chromium, logged in as a nurse or a charge nurse,
against a real core on a real SQLite file (issue 10, points 2 and 3): a nurse sees the
limits read-only; a charge nurse's widening asks in a dialog and is saved and audited only
on Confirm; a refused value is said in the form, whose fields go back to the limits in force."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import wait_until
from selenium.webdriver.common.keys import Keys
from ui_support import Bay, click, retry_stale, screenshot

from dashboard.app import create_app
from monitor.users import UserStore

USERS = {"nurse.ann": ("nurse", "ann-secret-1"), "charge.cat": ("charge", "cat-secret-1")}
LIMITS_READ_ONLY = "Alarm limits can be changed by a charge nurse or an administrator."
SPO2_LOW = "input[id*='spo2_low_limit_medium'][id*='value']"
HR_HIGH_HIGH = "input[id*='hr_high_limit_high'][id*='value']"


def open_chair_as(dash_duo: Any, bay: Bay, user: str) -> str:
    """Log ``user`` in through the login form and open chair c01, which has a session."""
    store = UserStore(bay.config.store.path)
    for name, (role, password) in USERS.items():
        if store.get(name) is None:
            store.add(name, role, password)
    session = bay.monitor.status("c01").session or bay.monitor.start_session("c01", "MRN-7", "nurse.ann")
    bay.second({"c01": {"spo2": 97, "hr": 72}})
    dash_duo.start_server(create_app(bay.live), navigate=False)
    dash_duo.driver.get(dash_duo.server.url + "/login")
    dash_duo.find_element("input[name=username]").send_keys(user)
    dash_duo.find_element("input[name=password]").send_keys(USERS[user][1], Keys.ENTER)
    dash_duo.wait_for_element(".hdr", timeout=10)
    dash_duo.driver.get(dash_duo.server.url + "/chair/c01")
    dash_duo.wait_for_element(SPO2_LOW, timeout=10)
    return session.id


def type_into(dash_duo: Any, selector: str, text: str) -> None:
    def action() -> None:
        field = dash_duo.find_element(selector)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text) if text else field.send_keys(Keys.DELETE)
    retry_stale(action)
    wait_until(lambda: retry_stale(lambda: dash_duo.find_element(selector).get_attribute("value")) == text,
               5, f"{text!r} in {selector}")


def value_of(dash_duo: Any, selector: str) -> str:
    return str(retry_stale(lambda: dash_duo.find_element(selector).get_attribute("value")))


def limits_actions(bay: Bay) -> list[Any]:
    assert bay.monitor.store.flush(timeout=5)
    return [a for a in bay.monitor.store.operator_actions() if a.action == "limits_changed"]


def dialog_shown(dash_duo: Any) -> bool:
    return bool(dash_duo.driver.find_elements("css selector", "#limits-confirm .modal"))


@pytest.mark.screenshots
def test_a_nurse_sees_the_limits_read_only_with_who_may_change_them(make_bay, dash_duo, shots):
    bay = make_bay(chairs=2, auth={"enabled": True})
    open_chair_as(dash_duo, bay, "nurse.ann")
    dash_duo.wait_for_contains_text(".limits-read-only", LIMITS_READ_ONLY, timeout=5)
    assert dash_duo.driver.find_elements("css selector", "#limits-save") == []  # no Save button
    fields = dash_duo.find_elements(".limits input")
    assert len(fields) > 10 and all(not f.is_enabled() for f in fields)
    assert value_of(dash_duo, SPO2_LOW) == "90"
    dash_duo.driver.execute_script("document.querySelector('#limits-panel').scrollIntoView()")
    screenshot(dash_duo, shots, "limits-read-only-nurse.png")


@pytest.mark.screenshots
def test_a_charge_nurse_widens_a_limit_after_a_confirmation_dialog(make_bay, dash_duo, shots):
    bay = make_bay(chairs=2, auth={"enabled": True})
    session_id = open_chair_as(dash_duo, bay, "charge.cat")
    type_into(dash_duo, SPO2_LOW, "88")
    type_into(dash_duo, HR_HIGH_HIGH, "160")
    assert not dialog_shown(dash_duo)
    click(dash_duo, "#limits-save")
    wait_until(lambda: dialog_shown(dash_duo), 5, "the confirmation dialog")
    dash_duo.wait_for_contains_text("#limits-confirm", "Widen alarm limits?", timeout=5)
    items = [li.text for li in dash_duo.find_elements("#limits-confirm-list li")]
    assert items == ["SpO2 low limit 90 % → 88 %", "HR high limit (high priority) 150 /min → 160 /min"]
    assert limits_actions(bay) == [] and bay.monitor.session(session_id).limit_overrides == ()
    screenshot(dash_duo, shots, "limits-widening-dialog.png")

    click(dash_duo, "#limits-confirm-ok")
    dash_duo.wait_for_contains_text(
        "#limits-msg", "Limits saved by charge.cat: SpO2 low limit 90 % → 88 %; "
        "HR high limit (high priority) 150 /min → 160 /min", timeout=5)
    wait_until(lambda: not dialog_shown(dash_duo), 5, "the dialog closed")
    rules = {r.id: r for r in bay.monitor.engine.rules("c01")}
    assert (rules["spo2_low_limit_medium"].threshold, rules["hr_high_limit_high"].threshold) == (88, 160)
    (action,) = limits_actions(bay)
    assert (action.user, action.target, action.detail["confirmed"]) == ("charge.cat", session_id, True)
    assert [(c["text"], c["old"], c["new"]) for c in action.detail["changes"]] == [
        ("SpO2 low limit 90 % → 88 %", 90.0, 88.0),
        ("HR high limit (high priority) 150 /min → 160 /min", 150.0, 160.0)]

    # Cancel: nothing saved, the field back to the limit in force
    type_into(dash_duo, SPO2_LOW, "86")
    click(dash_duo, "#limits-save")
    wait_until(lambda: dialog_shown(dash_duo), 5, "the confirmation dialog again")
    assert [li.text for li in dash_duo.find_elements("#limits-confirm-list li")] == [
        "SpO2 low limit 88 % → 86 % (profile default 90 %)"]
    click(dash_duo, "#limits-confirm-cancel")
    dash_duo.wait_for_contains_text("#limits-msg", "Not saved: the change was cancelled.", timeout=5)
    wait_until(lambda: value_of(dash_duo, SPO2_LOW) == "88", 5, "the field back at 88")
    assert not dialog_shown(dash_duo) and len(limits_actions(bay)) == 1


def test_an_invalid_limit_is_refused_in_the_form_and_nothing_is_saved(make_bay, dash_duo):
    bay = make_bay(chairs=2, auth={"enabled": True})
    open_chair_as(dash_duo, bay, "charge.cat")
    before = bay.monitor.engine.rules("c01")
    for selector, text, message in (
        (HR_HIGH_HIGH, "60", "Not saved: HR high limit (high priority) 60 /min must be above the "
                             "medium-priority limit 120 /min"),
        (SPO2_LOW, "150", "Not saved: SpO2 low limit: must be from 50 to 100 % (got 150)"),
        (SPO2_LOW, "", "Not saved: SpO2 low limit: enter a number"),
    ):
        original = value_of(dash_duo, selector)
        type_into(dash_duo, selector, text)
        click(dash_duo, "#limits-save")
        dash_duo.wait_for_contains_text("#limits-msg", message, timeout=5)
        assert "error" in dash_duo.find_element("#limits-msg").get_attribute("class")
        wait_until(lambda s=selector, o=original: value_of(dash_duo, s) == o, 5,  # type: ignore[misc]
                   f"{selector} back to the limit in force")
        assert not dialog_shown(dash_duo)
    assert bay.monitor.engine.rules("c01") == before and limits_actions(bay) == []
