"""The demonstration bay: simulated monitors on real transports, read by a real bay.

``chairside demo`` starts, in one process: a private Mosquitto on a free loopback port (when
the ``mosquitto`` binary is installed; otherwise the MQTT chairs move to serial lines), the
``demo-bay`` scenario's simulated monitors (pseudo-terminals, MQTT clients, an MLLP
gateway), a bay whose configured sources read them exactly as they would read hardware, an
infusion session on every chair, and the dashboard. Everything lives in a temporary folder
that goes away when the demo stops.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from monitor.config import BayConfig, parse_config
from monitor.records import SessionEventKind
from simulators.broker import MOSQUITTO, Mosquitto, free_port
from simulators.patient import PatientModel
from simulators.runner import Endpoints, Simulation
from simulators.scenario import ChairScript, Scenario, load_scenario
from station.service import BayService

__all__ = ["Demo", "demo_scenario"]

log = logging.getLogger("chairside.demo")
PRESETS = ("magnesium", "ketamine", "dhe", "antiemetic", "fluids")
EXTRA_TRANSPORTS = (("mqtt", "chairside"), ("serial", "chairside"), ("hl7", "chairside"))


def demo_scenario(chairs: int, *, broker: bool) -> Scenario:
    """The shipped ``demo-bay`` scenario cut or extended to ``chairs`` chairs (the extra
    ones quiet, on rotating transports); without a broker MQTT chairs use serial lines."""
    base = load_scenario("demo-bay")
    scripts: list[ChairScript] = list(base.chairs[:chairs])
    for i in range(len(scripts), chairs):
        transport, protocol = EXTRA_TRANSPORTS[i % len(EXTRA_TRANSPORTS)]
        model = PatientModel(seed=7000 + i, nibp_interval_s=300)
        scripts.append(ChairScript(f"c{i + 1:02d}", transport, protocol, f"sim-c{i + 1:02d}", model, ()))
    if not broker:
        scripts = [replace(s, transport="serial", protocol="chairside", outages=tuple(
            o for o in s.outages if o.kind != "broker_outage")) if s.transport == "mqtt" else s
            for s in scripts]
    return replace(base, chairs=tuple(scripts))


class Demo:
    def __init__(self, chairs: int, workdir: Path, *, host: str = "127.0.0.1", port: int = 8050,
                 web: bool = True) -> None:
        self.workdir = workdir
        self.host, self.port, self.web = host, port, web
        have_broker = shutil.which("mosquitto") is not None or Path(MOSQUITTO).exists()
        if not have_broker:
            log.warning("mosquitto is not installed: the demo's MQTT chairs use serial lines")
        self.scenario = demo_scenario(chairs, broker=have_broker)
        self.broker = Mosquitto(workdir / "broker") if have_broker else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.service: BayService | None = None
        self.server: Any = None
        self.sim: Simulation | None = None

    def config(self, endpoints: Endpoints, sim: Simulation) -> BayConfig:
        return parse_config({
            "bay": {"id": "demo", "name": "Demo infusion bay"},
            "store": {"path": str(self.workdir / "demo.db")},
            "dashboard": {"host": self.host, "port": self.port},
            # the demo runs without login, so on loopback only (check_bind refuses others)
            "auth": {"enabled": False},
            "chairs": [{"id": c.chair, "label": f"Chair {int(c.chair[1:])}"} for c in self.scenario.chairs],
            "sources": sim.sources_config(),
        }, "<demo>")

    def start(self, check: Callable[[], None] = lambda: None) -> None:
        """Start the broker, the bay, the simulated monitors and the dashboard. ``check`` is
        called between the steps (it raises to interrupt); after an interruption or a
        failure, :meth:`stop` stops whatever had started."""
        if self.broker is not None:
            self.broker.start()
        check()
        endpoints = Endpoints(self.workdir / "serial", mqtt_port=self.broker.port if self.broker else 1,
                              hl7_port=free_port())
        self.sim = sim = Simulation(self.scenario, endpoints)
        sim.open(frozenset({"serial"}))  # the lines exist before the bay opens them (no warnings)
        self.service = BayService(self.config(endpoints, sim))
        self.service.start(check)
        sim.open()  # the gateways and MQTT devices, once the bay listens
        check()
        monitor = self.service.monitor
        for i, chair in enumerate(self.scenario.chairs):
            preset = PRESETS[i % len(PRESETS)]
            session = monitor.start_session(chair.chair, f"DEMO-{i + 1:03d}", "demo", protocol=preset)
            if i % 4 != 3:  # most chairs infusing already; every fourth one still being set up
                monitor.session_step(session.id, SessionEventKind.INFUSION_STARTED, "demo",
                                     "infusion started (demo)")
        thread = threading.Thread(target=sim.run, args=(self._stop,), name="simulation", daemon=True)
        thread.start()
        self._threads.append(thread)
        check()
        if self.web:
            from dashboard.app import create_app
            from dashboard.live import LiveBay
            from dashboard.server import WebServer

            app = create_app(LiveBay(monitor, self.service.sources), title="Chairside demo")
            self.server = WebServer(app.server, self.host, self.port, auth_enabled=False)
            self.server.start()

    def stop(self) -> None:
        """Stop in an order in which nothing uses what has gone: the simulated monitors stop
        sending, then the dashboard, then the bay (before its monitors disconnect, so that
        stopping raises no "device offline" alarms), then the monitors disconnect (the MQTT
        ones say ``offline`` while the broker is still there), and last the broker. Safe
        after a start that was interrupted or failed half-way."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.server is not None:
            self.server.stop()
        if self.service is not None:
            self.service.stop()
        if self.sim is not None:
            self.sim.close()
            log.info("simulated monitors switched off")
        if self.broker is not None:
            self.broker.stop()
            log.info("private MQTT broker stopped")

    def wait_ready(self, timeout: float = 20.0, stop: Any = None) -> bool:
        """True once every source is connected (the bay is reading all its monitors); False
        after ``timeout`` or once ``stop`` (anything with a ``wait(seconds)`` that returns
        True when a stop was requested, e.g. :class:`~station.lifecycle.StopSignals`) says so."""
        assert self.service is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.state.value == "connected" for s in self.service.sources):
                return True
            if stop is None:
                time.sleep(0.05)
            elif stop.wait(0.05):
                return False
        return False
