"""A scenario's monitors straight into the core, in this process: no port, broker or socket.

For component tests and benchmarks that want realistic readings (the patient models, the
scenario's events and outages) without a transport: :class:`SinkEmitter` is an emitter that
turns what a simulated monitor would send into :class:`~monitor.readings.Reading` objects and
hands them to a :class:`~monitor.seam.Sink` (the core's ``Monitor``); :func:`in_process`
builds a :class:`~simulators.runner.Simulation` whose every chair has one. ``step(t)`` then
gives the core second ``t`` of every chair, stamped ``epoch + t``, received at the core's
clock (a test moves both)."""

from __future__ import annotations

from pathlib import Path

from monitor.readings import Reading
from monitor.seam import IngestResult, Sink
from simulators.runner import Endpoints, Simulation
from simulators.scenario import Scenario

__all__ = ["SinkEmitter", "in_process"]


class SinkEmitter:
    """One simulated monitor whose readings go straight to ``sink``."""

    def __init__(self, sink: Sink, chair: str, device: str) -> None:
        self.sink, self.chair, self.device = sink, chair, device
        self.outage: str | None = None
        self.results: list[IngestResult] = []  # the core's answers, newest last

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def set_outage(self, kind: str | None) -> None:
        self.outage = kind  # (an unplugged monitor is not asked to emit at all)

    def emit(self, values: dict[str, float | None], flags: int, t: float, seq: int) -> None:
        if self.outage is not None:  # a network outage: the reading never arrives
            return
        received = self.sink.clock.now()
        self.results.append(self.sink.ingest(
            [Reading(self.chair, key, value, t, received, self.device, seq, flags)
             for key, value in values.items()]))


def in_process(scenario: Scenario, sink: Sink, epoch: float) -> Simulation:
    """``scenario`` with every chair's monitor feeding ``sink`` directly (no ``open()``
    needed: nothing is connected)."""
    return Simulation(scenario, Endpoints(serial_dir=Path("unused")), epoch=epoch, clock=sink.clock.now,
                      emitter=lambda c: SinkEmitter(sink, c.chair, c.device))
