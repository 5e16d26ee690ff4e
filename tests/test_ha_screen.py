"""An open bay screen across a takeover (issue 16, point 3), in real headless Chromium through
the real HAProxy of deploy/haproxy-chairside.cfg (TLS) in front of two real ``chairside run``
of one bay on PostgreSQL, fed by a device over a real Mosquitto: kill -9 of the leader, and
the same page, with the same login, shows live values from the new leader by itself and says
that the standby took over (assets/push.js); back from the same server, it says nothing."""

from __future__ import annotations

import base64
import hashlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from conftest import scaled, wait_until
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from store_backends import Backend
from test_ha import PASSWORD, USER, Proxy, Server, bay_toml, role, with_login

from dashboard.app import TAKEOVER
from simulators.broker import Mosquitto, free_port
from simulators.formats import vitals_json

HEADLESS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--window-size=1600,900")
HR = ".tile[data-chair='c1'] .val-hr"


def spki_pin(crt: Path) -> str:
    """The certificate's public key as Chromium's --ignore-certificate-errors-spki-list takes
    it: only the proxy's own self-signed certificate is let through, nothing else."""
    key = x509.load_pem_x509_certificate(crt.read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class Device:
    """A monitor publishing its heart rate over MQTT every half second, as a device does."""

    def __init__(self, port: int, topic: str) -> None:
        self.hr = 71
        self.topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-screen-device",
                                  protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seq = 0
        while not self.stopped.wait(0.5):  # the device's own pace, not a wait in the test
            seq += 1
            self.client.publish(self.topic, vitals_json({"hr": self.hr, "spo2": 97}, 0, time.time(), seq,
                                                        "mon-1"), qos=1)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(scaled(5))
        self.client.disconnect()
        self.client.loop_stop()


def chromium(profile: Path, crt: Path) -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    pin = f"--ignore-certificate-errors-spki-list={spki_pin(crt)}"
    for flag in (*HEADLESS, f"--user-data-dir={profile}", pin):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def test_an_open_bay_screen_follows_a_kill_9_takeover_and_says_so(pg_backend: Backend,
                                                                  tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    config = with_login(bay_toml(pg_backend, tmp_path), tmp_path)
    config.write_text(config.read_text() + f"""[[sources]]\nkind = "mqtt"\nname = "broker"
host = "127.0.0.1"\nport = {broker.port}\nbay = "neuro"\nclient_id = "chairside-neuro"\n""")
    a = Server(config, free_port(), tmp_path / "a.log")
    b = Server(config, free_port(), tmp_path / "b.log")
    proxy = Proxy(tmp_path, a, b)
    device = Device(broker.port, "chairside/neuro/c1/vitals")
    driver: webdriver.Chrome | None = None
    try:
        wait_until(lambda: {role(a.port), role(b.port)} == {"leader", "standby"}, 30,
                   "one leader, one standby")
        leader, standby = (a, b) if role(a.port) == "leader" else (b, a)
        driver = chromium(tmp_path / "profile", proxy.crt)

        def js(script: str) -> Any:
            return driver.execute_script(script)

        def hr() -> str:
            return js(f'var e = document.querySelector("{HR}"); return e ? e.textContent : ""')

        # the nurse logs in through the proxy's login page and is taken to the bay
        wait_until(lambda: _opens(driver, proxy.base + "/login"), 30, "the login page through the proxy")
        driver.find_element(By.NAME, "username").send_keys(USER)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.NAME, "password").submit()
        wait_until(lambda: hr() == "71", 20, "the device's heart rate on the bay screen")
        first = js("return window.chairsidePush.server")
        assert first and not js("return document.body.classList.contains('taken-over')")
        # the proxy restarted: the stream comes back from the same server, and that says nothing
        proxy.stop()
        wait_until(lambda: js("return document.body.classList.contains('disconnected')"), 10, "no connection")
        proxy.start()
        device.hr = 72
        wait_until(lambda: hr() == "72", 15, "live again through the restarted proxy")
        assert js("return window.chairsidePush.server") == first
        assert not js("return document.body.classList.contains('taken-over')")
        js("window.csSamePage = 1")  # gone if the page were reloaded or sent to the login

        assert leader.kill() == -signal.SIGKILL
        device.hr = 93  # what the device measures from now on
        wait_until(lambda: hr() == "93", 15, "a value measured after the kill on the same page")
        assert role(standby.port) == "leader"
        assert js("return window.csSamePage") == 1 and driver.current_url.rstrip("/") == proxy.base
        assert js("return window.chairsidePush.server") not in (None, first)
        banner = driver.find_element(By.CSS_SELECTOR, ".takeover-banner")
        assert banner.is_displayed() and banner.text == TAKEOVER
        assert not js("return document.body.classList.contains('disconnected')")
        # the sound follows the new leader's view as ever (nothing alarms here: "silent")
        sound = js("return window.chairsidePush.state.sound")
        assert js("return window.chairsideAudio.state") == sound == "silent"
        banner.click()
        wait_until(lambda: not banner.is_displayed(), 5, "the banner clicked away")
        assert not [e for e in driver.get_log("browser") if e["source"] == "javascript"]  # no script error
    finally:
        if driver is not None:
            driver.quit()
        device.close()
        proxy.stop()
        a.kill()
        b.kill()
        broker.stop()


def _opens(driver: webdriver.Chrome, url: str) -> bool:
    """The page at ``url`` opened with its form (the proxy answers 503 until it sees the leader)."""
    driver.get(url)
    return bool(driver.find_elements(By.NAME, "username"))
