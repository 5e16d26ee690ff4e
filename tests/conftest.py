from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.bay_store import open_bay_store
from monitor.clock import ManualClock
from monitor.config import BayConfig, parse_config
from monitor.core import Monitor
from monitor.readings import Reading

T0 = 1_800_000_000.0


def scaled(seconds: float) -> float:
    """A deadline for what takes well under ``seconds`` on a quiet machine, stretched for this
    one: by ``CHAIRSIDE_TIMEOUT_SCALE`` when set, else by the load per core (1x to 6x). Every
    deadline of the suite goes through it (``wait_until``, the browser's waits in
    ui_support.py), so a busy CI machine slows the suite down instead of failing it."""
    factor = os.environ.get("CHAIRSIDE_TIMEOUT_SCALE")
    if factor:
        return seconds * float(factor)
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * min(6.0, max(1.0, load))


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds (``scaled``). The
    one way tests wait for another thread or process: on a condition with a deadline, never a
    fixed sleep."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)


def bay_config(tmp_path: Path, chairs: int = 3, **sections: Any) -> BayConfig:
    """A bay on a file in ``tmp_path``. Without an ``auth`` section, login is off (tests of
    other features serve on loopback); tests/test_auth.py passes ``auth`` explicitly."""
    data = {"store": {"path": str(tmp_path / "bay.db")}, "auth": {"enabled": False},
            "chairs": [{"id": f"c{i}", "label": f"Chair {i}"} for i in range(1, chairs + 1)],
            **sections}
    return parse_config(data, "test.toml")


class Harness:
    """A real core on a real SQLite file, with a clock the test moves."""

    def __init__(self, tmp_path: Path, **sections: Any) -> None:
        self.tmp_path = tmp_path
        self.config = bay_config(tmp_path, **sections)
        self.clock = ManualClock(T0)
        self.monitor = self._open()

    def _open(self) -> Monitor:
        store = open_bay_store(self.config.store, self.config.bay.id, commit_interval=0.02)
        monitor = Monitor(self.config, store=store, clock=self.clock)
        monitor.start()
        return monitor

    def restart(self) -> Monitor:
        self.monitor.close()
        self.monitor = self._open()
        return self.monitor

    def reading(self, param: str, value: float | None, chair: str = "c1", flags: int = 0,
                dt: float = 0.0, device: str = "dev-1", seq: int | None = None) -> Reading:
        now = self.clock.now()
        return Reading(chair, param, value, now + dt, now, device, seq, flags)

    def feed(self, param: str, value: float | None, seconds: int = 1, **kw: Any) -> None:
        """One reading a second for ``seconds`` seconds, ticking as a ticker would."""
        for _ in range(seconds):
            self.monitor.ingest([self.reading(param, value, **kw)])
            self.monitor.tick()
            self.clock.advance(1)

    def flush(self) -> None:
        assert self.monitor.store is not None
        assert self.monitor.store.flush(timeout=10)


def harness_on(request: pytest.FixtureRequest, tmp_path: Path, **sections: Any) -> Harness:
    """A Harness on the store backend the test asks for (indirect parametrisation:
    ``@pytest.mark.parametrize("harness", ["sqlite", "postgresql"], indirect=True)``);
    SQLite by default."""
    from store_backends import make_backend

    name = getattr(request, "param", "sqlite")
    if name != "sqlite":
        sections["store"] = make_backend(name, tmp_path, request).section
    return Harness(tmp_path, **sections)


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = harness_on(request, tmp_path)
    yield h
    h.monitor.close()


def pytest_setup_options():
    """Chrome options for dash[testing]'s selenium fixtures (dash_duo): Debian's headless
    Chromium with a full-HD window, and audio allowed without a user gesture so the alarm
    tone code runs in tests as it does after a nurse's click."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--autoplay-policy=no-user-gesture-required",
                "--window-size=1920,1080"):
        options.add_argument(arg)
    return options


# Fixtures shared by every test module: the private PostgreSQL's (pg_server, pg_url,
# pg_server_factory: tests/pg_support.py) and the browser tests' (make_bay, dash_duo).
from pg_support import pg_server, pg_server_factory, pg_url  # noqa: E402, F401
from ui_support import dash_duo, make_bay, shots  # noqa: E402, F401

#: Files whose tests start real processes or do heavy work throughout (brokers, the CLI and
#: make in subprocesses, nginx, argon2 hashing, PDF rendering, API fuzzing): the full tier only.
SLOW_FILES = frozenset({
    "test_end_to_end.py", "test_shutdown.py", "test_first_run.py", "test_supply_chain.py",
    "test_decode.py", "test_deploy.py", "test_cli.py", "test_api_fuzz.py", "test_login_security.py",
    "test_crash_recovery.py", "test_mqtt.py", "test_mqtt_cluster.py", "test_exports.py",
    "test_user_admin.py",
    "test_security_inject.py", "test_hl7_security.py", "test_sound_ui.py",
    "test_pg_support.py", "test_deploy_postgresql.py",  # several PostgreSQL servers each, crashes
    "test_site_users.py", "test_pg_exports_api.py", "test_ha.py", "test_leadership.py",
    "test_serial_network.py", "test_ha_screen.py", "test_ha_takeover.py", "test_chaos.py",
})
BROWSER = frozenset({"dash_duo", "dash_br"})
POSTGRES = frozenset({"pg_server", "pg_url", "pg_server_factory"})  # a private server: a process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow``: a real browser, a private PostgreSQL, or a file of SLOW_FILES. ``make
    test-fast`` leaves them out (unit and component tests, about a minute); ``make test``
    (CI) runs everything."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgresql" in callspec.params.values()
        if BROWSER & uses or POSTGRES & uses or on_postgres or item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


# The store backends side by side (tests/store_backends.py): the `backend` fixture.
from store_backends import backend, pg_backend  # noqa: E402, F401
