"""The dashboard's browser-test support: a bay with a clock the test moves, Dash's test
browser serving the app through Chairside's own WebServer, and small Selenium helpers.
The fixtures (``make_bay``, ``dash_duo``) reach every test module through conftest.py."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import scaled, wait_until
from selenium.common.exceptions import StaleElementReferenceException

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.server import WebServer
from monitor.clock import ManualClock
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.readings import Reading
from monitor.store import SqliteStore

__all__ = ["Bay", "choose", "click", "dash_duo", "js", "make_bay", "retry_stale", "screenshot", "set_nurse",
           "shots", "start", "tile_class", "tile_text"]

#: Where screenshots go: docs/screenshots only for `make screenshots` (which sets this
#: variable); a plain test run keeps them in a temporary folder and never writes the tree.
SCREENSHOTS_ENV = "CHAIRSIDE_SCREENSHOTS"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The folder screenshots go to (see SCREENSHOTS_ENV)."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver: Any, folder: Path, name: str) -> Path:
    """A PNG of what ``driver`` (a selenium driver, or dash_duo) shows now."""
    path = folder / name
    assert getattr(driver, "driver", driver).save_screenshot(str(path))
    return path


class Bay:
    """A core with a clock the test moves, and the LiveBay the dashboard reads."""

    def __init__(self, tmp_path: Path, chairs: int = 3, start: float | None = None,
                 labels: list[str] | None = None, **sections: Any) -> None:
        ids = [f"c{i:02d}" for i in range(1, chairs + 1)]
        self.config = parse_config({
            "bay": {"id": "bay2", "name": "Infusion bay 2"},
            "store": {"path": str(tmp_path / "bay.db")},
            "auth": {"enabled": False},  # login: tests/test_auth.py
            "chairs": [{"id": c, "label": (labels[i] if labels else f"Chair {i + 1}")}
                       for i, c in enumerate(ids)],
            **sections,
        }, "test")
        self.chairs = ids
        self.clock = ManualClock(time.time() if start is None else start)
        self.monitor = Monitor(self.config, store=SqliteStore(self.config.store.path, commit_interval=0.02),
                               clock=self.clock)
        self.monitor.start()
        self.live = LiveBay(self.monitor)

    def reading(self, chair: str, param: str, value: float | None, flags: int = 0) -> Reading:
        now = self.clock.now()
        return Reading(chair, param, value, now, now, f"dev-{chair}", None, flags)

    def second(self, values: dict[str, dict[str, float | None]]) -> None:
        """One simulated second: ``{chair: {param: value}}`` ingested, a tick, the clock on."""
        self.monitor.ingest([self.reading(c, p, v) for c, vs in values.items() for p, v in vs.items()])
        self.monitor.tick()
        self.clock.advance(1)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.monitor.tick()

    def close(self) -> None:
        self.monitor.close()


@pytest.fixture
def make_bay(tmp_path: Path) -> Iterator[Any]:
    bays: list[Bay] = []

    def make(**kw: Any) -> Bay:
        bays.append(Bay(tmp_path, **kw))
        return bays[-1]

    yield make
    for bay in bays:
        bay.close()


def js(dash_duo: Any, script: str) -> Any:
    return dash_duo.driver.execute_script(script)


def tile_class(dash_duo: Any, chair: str) -> str:
    return dash_duo.find_element(f".tile[data-chair='{chair}']").get_attribute("class")


def tile_text(dash_duo: Any, chair: str, cls: str) -> str:
    return dash_duo.find_element(f".tile[data-chair='{chair}'] .{cls}").text


WAITS = ("wait_for_element_by_css_selector", "wait_for_no_elements",  # (wait_for_element calls the first)
         "wait_for_text_to_equal", "wait_for_contains_text", "wait_for_contains_class",
         "wait_for_class_to_equal", "wait_for_style_to_equal", "wait_for_element_by_id")


def _scaled_wait(wait: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(wait)

    def scaled_wait(*args: Any, **kwargs: Any) -> Any:
        call = signature.bind(*args, **kwargs)
        timeout = call.arguments.get("timeout")
        call.arguments["timeout"] = scaled(timeout if timeout is not None else 10.0)
        return wait(*call.args, **call.kwargs)
    return scaled_wait


@pytest.fixture
def dash_duo(dash_br: Any) -> Iterator[Any]:
    """Dash's test browser driving the app as production serves it: through Chairside's own
    WebServer (waitress). Dash's threaded test server stops by raising SystemExit into its
    thread, which can land in a request still being served."""
    servers: list[WebServer] = []

    def start_server(app: Any, navigate: bool = True) -> None:
        server = WebServer(app.server, port=0)
        server.start()
        servers.append(server)
        dash_br.server = server
        if navigate:  # (without: the test goes where it wants, e.g. to the login page)
            dash_br.server_url = server.url

    dash_br.start_server = start_server
    for name in WAITS:  # every browser wait's deadline, scaled for the machine's load
        setattr(dash_br, name, _scaled_wait(getattr(dash_br, name)))
    yield dash_br
    for server in servers:
        server.stop()


def retry_stale(action: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Do ``action`` again if a re-render replaced its element between find and use."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise


def click(dash_duo: Any, selector: str, timeout: float = 5.0) -> None:
    """Click what ``selector`` finds, again if a re-render replaced it meanwhile."""
    retry_stale(lambda: dash_duo.find_element(selector).click(), timeout)


def set_nurse(dash_duo: Any, name: str) -> None:
    field = dash_duo.find_element("#nurse-input")
    field.clear()
    field.send_keys(name)
    wait_until(lambda: field.get_attribute("value") == name, 5, "nurse name in the field")


def choose(dash_duo: Any, dropdown: str, label: str) -> None:
    """Pick an option of a dcc.Dropdown by its label (once the opened menu shows it)."""
    click(dash_duo, dropdown)

    def option() -> Any:
        found = [o for o in dash_duo.find_elements(".dash-dropdown-option") if o.text == label]
        return found[0] if found else None

    wait_until(option, 5, f"option {label!r}")
    option().click()


def start(dash_duo: Any, bay: Bay, path: str = "/") -> None:
    dash_duo.start_server(create_app(bay.live))
    if path != "/":
        dash_duo.driver.get(dash_duo.server_url + path)
    dash_duo.wait_for_element(".hdr", timeout=10)
