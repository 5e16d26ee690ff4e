"""The alarm sound of a bay screen in real headless Chromium, started as docs/kiosk.md says
(its launch flags are read from there): the choice to sound survives a reload and a browser
restart; a browser that blocks autoplay turns the header into the "ALARM SOUND OFF" bar until
a click; /metrics and the alarms page follow what each screen reports.

These tests start their own Chromium (a persistent profile per test, a given autoplay
policy) and quit it in a ``finally``; the server is Chairside's own WebServer.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from ui_support import Bay, screenshot

from dashboard.app import create_app
from dashboard.server import WebServer

KIOSK_DOC = Path(__file__).resolve().parent.parent / "docs" / "kiosk.md"
HEADLESS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1600,900")
BAR = "ALARM SOUND OFF — click to enable"


def kiosk_flags() -> list[str]:
    """The Chromium flags of docs/kiosk.md's launch command (the block after its marker)."""
    text = KIOSK_DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- kiosk-flags -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/kiosk.md lost its launch command"
    flags = re.findall(r"^\s*(--[a-z0-9-]+(?:=\S+)?)\s*\\?$", block.group(1), re.M)
    assert "--autoplay-policy=no-user-gesture-required" in flags and "--kiosk" in flags
    return flags


def chromium(profile: Path, flags: list[str]) -> webdriver.Chrome:
    """A Chromium with its own persistent profile (as a kiosk has), headless for the test."""
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in [*HEADLESS, *(f for f in flags if not f.startswith("--user-data-dir=")),
                 f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


class Screen:
    """One browser on the bay's dashboard."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        self.url = url

    def js(self, script: str) -> Any:
        return self.driver.execute_script(script)

    def open(self, path: str = "/") -> None:
        self.driver.get(self.url + path)
        wait_until(lambda: self.js("return !!document.querySelector('.hdr') && !!window.chairsideAudio"),
                   15, "the dashboard loaded")

    def status(self) -> str:
        return str(self.js("return window.chairsideAudio.status()"))

    def bar(self) -> Any:
        return self.driver.find_element("css selector", "#sound-enable")

    def bar_covers_the_header(self) -> bool:
        bar, header = self.bar(), self.driver.find_element("css selector", ".hdr")
        return (bar.is_displayed() and bar.text == BAR and bar.rect["width"] == header.rect["width"]
                and bar.rect["height"] >= header.rect["height"] - 2)


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("chairside_screens_")}


def screens(url: str) -> tuple[float, float, float]:
    m = metrics(url)
    return (m["chairside_screens_connected"], m["chairside_screens_audible"],
            m["chairside_screens_sound_blocked"])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Bay, str]]:
    """A bay with a high-priority alarm sounding on chair 1, served on a free port."""
    bay = Bay(tmp_path, chairs=2)
    bay.second({"c01": {"nibp_sys": 210, "spo2": 97}, "c02": {"spo2": 98}})
    server = WebServer(create_app(bay.live).server, port=0)
    server.start()
    try:
        yield bay, server.url
    finally:
        server.stop()
        bay.close()


def test_kiosk_screen_stays_audible_after_a_reload_and_a_browser_restart(served, tmp_path):
    _, url = served
    profile = tmp_path / "kiosk-profile"
    driver = chromium(profile, kiosk_flags())
    try:
        screen = Screen(driver, url)
        screen.open()
        # never enabled on this screen: the whole header is the bar, and the server knows
        wait_until(screen.bar_covers_the_header, 10, "the ALARM SOUND OFF bar")
        assert screen.status() == "off"
        wait_until(lambda: screens(url) == (1, 0, 0), 10, "/metrics: one screen, not audible")

        screen.bar().click()
        wait_until(lambda: screen.status() == "audible", 5, "audible after the click")
        wait_until(lambda: not screen.bar().is_displayed(), 5, "the bar gone")
        assert screen.js("return localStorage.getItem('chairside-sound')") == "on"
        wait_until(lambda: screens(url) == (1, 1, 0), 10, "/metrics: the screen audible")

        driver.refresh()  # a reload: no click since
        wait_until(lambda: screen.js("return !!window.chairsideAudio && window.chairsideAudio.audible()"),
                   10, "audible after the reload, without a click")
        assert screen.js("return window.chairsideAudio.status()") == "audible"
        wait_until(lambda: screen.js("return window.chairsideAudio.state") == "high", 5, "the high alarm")
        wait_until(lambda: screen.js("return window.chairsideAudio.bursts") > 0, 10, "a tone played")
        assert not screen.bar().is_displayed()
    finally:
        driver.quit()

    driver = chromium(profile, kiosk_flags())  # the browser (or the machine) restarted
    try:
        screen = Screen(driver, url)
        screen.open()
        wait_until(lambda: screen.status() == "audible", 10, "audible after a browser restart")
        assert not screen.bar().is_displayed()
        assert screen.js("return window.chairsideAudio.state") == "high"
        wait_until(lambda: screens(url)[1] >= 1, 10, "/metrics: audible again")
    finally:
        driver.quit()


def test_kiosk_url_with_sound_on_needs_no_click_at_all(served, tmp_path):
    _, url = served
    driver = chromium(tmp_path / "fresh-profile", kiosk_flags())
    try:
        screen = Screen(driver, url)
        screen.open("/?sound=on")  # a new kiosk, nobody has ever clicked
        wait_until(lambda: screen.status() == "audible", 10, "audible from the URL")
        assert not screen.bar().is_displayed()
        assert screen.js("return localStorage.getItem('chairside-sound')") == "on"
    finally:
        driver.quit()


@pytest.mark.screenshots
def test_blocked_autoplay_turns_the_header_into_the_bar_until_a_click(served, tmp_path, shots):
    _, url = served
    # Chromium's own default on the desktop: no sound before a click on each page
    driver = chromium(tmp_path / "profile", ["--autoplay-policy=document-user-activation-required"])
    try:
        screen = Screen(driver, url)
        screen.open()
        wait_until(screen.bar_covers_the_header, 10, "the ALARM SOUND OFF bar")
        screenshot(driver, shots, "sound-off-bar.png")
        screen.bar().click()
        wait_until(lambda: screen.status() == "audible", 5, "audible after the click")

        driver.refresh()  # remembered, but this browser blocks it without a new click
        wait_until(lambda: screen.js("return !!window.chairsideAudio") and screen.status() == "blocked",
                   10, "blocked after the reload")
        wait_until(screen.bar_covers_the_header, 10, "the bar back after the reload")
        assert screen.js("return window.chairsideAudio.audible()") is False
        # the tab before the reload stops ticking and expires; the new one reports blocked
        wait_until(lambda: screens(url) == (1, 0, 1), 20, "/metrics: no screen audible, one blocked")

        screen.open("/alarms")  # (a new page load: blocked as well)
        wait_until(screen.bar_covers_the_header, 10, "the bar on the alarms page")
        note = lambda: driver.find_element("css selector", "#alarms-sound").text  # noqa: E731
        wait_until(lambda: note().startswith("No bay screen can sound alarms:")
                   and "blocked by the browser" in note(), 20, "the alarms page's warning")
        assert "warning" in driver.find_element("css selector", "#alarms-sound").get_attribute("class")

        # a click anywhere on the bar (here near the header's left end) makes the screen audible
        click = ActionBuilder(driver)
        click.pointer_action.move_to_location(30, 20).click()
        click.perform()
        wait_until(lambda: screen.status() == "audible", 5, "audible after a click on the bar")
        wait_until(lambda: not screen.bar().is_displayed(), 5, "the bar gone")
        wait_until(lambda: screens(url)[1] == 1, 10, "/metrics: one screen audible")
        wait_until(lambda: note().startswith("Alarm sound on at 1 of"), 10, "the warning gone")
    finally:
        driver.quit()
