"""Runs a scenario: the patient models (pure) drive one emitter per chair (I/O).

``step(t)`` emits everything for simulated second ``t`` at once (tests call it directly and
move the core's clock in step); ``run()`` paces the steps in real time, or ``speed`` times
faster. Device times are ``epoch + t``. History on demand: with ``epoch`` in the past
(``chairside simulate --from -12h``), the steps whose device time has passed go at full
speed, stamped with their own times, and the rest is paced: twelve hours of a bay are made
in minutes over the real transports, and none of it lies in the future.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.emitters import Emitter, MllpEmitter, MqttEmitter, PtyEmitter
from simulators.mllp_client import client_context
from simulators.scenario import ChairScript, Scenario

__all__ = ["Endpoints", "Simulation"]


@dataclass(frozen=True)
class Endpoints:
    """Where the simulated devices go: a folder for the serial links, a broker, a listener
    (and its standbys)."""

    serial_dir: Path
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_prefix: str = "chairside"
    bay: str = "bay1"
    hl7_host: str = "127.0.0.1"
    hl7_port: int = 2575
    # the gateway fails over to these (host, port) listeners when hl7_host:hl7_port does not
    # answer: a bay's standby server (docs/high-availability.md)
    hl7_standby: tuple[tuple[str, int], ...] = ()
    # MLLP over TLS: the CA of the listener's certificate; a client certificate and key
    hl7_tls_ca: Path | None = None
    hl7_tls_cert: Path | None = None
    hl7_tls_key: Path | None = None

    def hl7_ssl_context(self) -> ssl.SSLContext | None:
        """The HL7 gateway's TLS context, None for plain MLLP (no ``hl7_tls_ca``)."""
        if self.hl7_tls_ca is None:
            return None
        return client_context(self.hl7_tls_ca, self.hl7_tls_cert, self.hl7_tls_key)


class Simulation:
    def __init__(self, scenario: Scenario, endpoints: Endpoints, epoch: float | None = None, *,
                 clock: Callable[[], float] = time.time,
                 emitter: Callable[[ChairScript], Emitter] | None = None) -> None:
        """``emitter``: each chair's emitter (default: its transport's, at ``endpoints``)."""
        self.scenario = scenario
        self.endpoints = endpoints
        self.clock = clock  # the wall clock (the devices' time); tests pass their own
        self.epoch = clock() if epoch is None else epoch
        self._hl7_tls = endpoints.hl7_ssl_context() if any(
            c.transport == "hl7" for c in scenario.chairs) else None
        make = emitter or (lambda c: self._emitter(c.chair, c.transport, c.protocol, c.device))
        self.emitters: dict[str, Emitter] = {c.chair: make(c) for c in scenario.chairs}
        self._seq = dict.fromkeys(self.emitters, 0)
        self._opened: set[str] = set()

    def _emitter(self, chair: str, transport: str, protocol: str, device: str) -> Emitter:
        e = self.endpoints
        if transport == "serial":
            return PtyEmitter(self.serial_link(chair), protocol, device)
        if transport == "mqtt":
            return MqttEmitter(e.mqtt_host, e.mqtt_port, prefix=e.mqtt_prefix, bay=e.bay, chair=chair,
                               device=device)
        return MllpEmitter(e.hl7_host, e.hl7_port, bed=self.bed(chair), device=device,
                           ssl_context=self._hl7_tls, standby=e.hl7_standby)

    def serial_link(self, chair: str) -> Path:
        return self.endpoints.serial_dir / f"tty-{chair}"

    @staticmethod
    def bed(chair: str) -> str:
        return f"BAY1^^{chair}"

    def open(self, transports: frozenset[str] | None = None) -> None:
        """Open the emitters (of ``transports`` only, e.g. the serial lines, which must exist
        before a reader opens them; the rest later). Each opens once."""
        self.endpoints.serial_dir.mkdir(parents=True, exist_ok=True)
        for script in self.scenario.chairs:
            if script.chair not in self._opened and (transports is None or script.transport in transports):
                self.emitters[script.chair].open()
                self._opened.add(script.chair)

    def close(self) -> None:
        for emitter in self.emitters.values():
            emitter.close()

    def step(self, t: float) -> None:
        for script in self.scenario.chairs:
            emitter = self.emitters[script.chair]
            outage = script.outage(t)
            emitter.set_outage(outage)
            if outage == "unplug":
                continue
            sample = script.model.sample(t)
            values = dict(sample.values)
            bp = script.model.nibp(t)
            if bp:
                values.update(bp)
            self._seq[script.chair] += 1
            emitter.emit(values, sample.flags, self.epoch + t, self._seq[script.chair])

    def run(self, stop: threading.Event, *, start_s: float = 0, until_s: float | None = None,
            speed: float = 1.0) -> None:
        """Steps ``start_s`` up to ``until_s`` (default: the scenario's end): those whose device
        time has already passed at once, the rest ``speed`` simulated seconds per second."""
        until = self.scenario.duration_s if until_s is None else until_s
        t = start_s
        paced: tuple[float, float] | None = None  # (monotonic, t) when pacing began
        while t < until and not stop.is_set():
            self.step(t)
            t += 1
            if self.epoch + t <= self.clock():
                continue  # history: its time has come already
            if paced is None:
                paced = (time.monotonic(), t)
            begun, first = paced
            stop.wait(max(0.0, begun + (t - first) / speed - time.monotonic()))

    def sources_config(self) -> list[dict[str, Any]]:
        """The ``[[sources]]`` a bay configuration needs to read this simulation."""
        e = self.endpoints
        sources: list[dict[str, Any]] = []
        beds = {}
        for c in self.scenario.chairs:
            if c.transport == "serial":
                sources.append({"kind": "serial", "name": f"serial-{c.chair}", "chair": c.chair,
                                "port": str(self.serial_link(c.chair)), "protocol": c.protocol,
                                "reconnect_max_s": 2})
            elif c.transport == "hl7":
                beds[self.bed(c.chair)] = c.chair
        if any(c.transport == "mqtt" for c in self.scenario.chairs):
            sources.append({"kind": "mqtt", "name": "mqtt", "host": e.mqtt_host, "port": e.mqtt_port,
                            "bay": e.bay, "topic_prefix": e.mqtt_prefix, "reconnect_max_s": 2})
        if beds:
            sources.append({"kind": "hl7", "name": "hl7", "host": e.hl7_host, "port": e.hl7_port,
                            "beds": beds})
        return sources
