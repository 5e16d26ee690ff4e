"""What the report shows, gathered in one pass over the session's readings: HR, PR and SpO2
as float arrays (16 bytes a sample), the NIBP cycles, and the readings per device.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np

from monitor.exports.pdf_report.style import CONTINUOUS
from monitor.exports.report_data import NibpCycle, SessionRecord, session_readings, with_nibp_cycles
from monitor.store.protocol import Store

__all__ = ["ReportData", "Series", "collect"]


@dataclass(slots=True)
class Series:
    times: array = field(default_factory=lambda: array("d"))
    values: array = field(default_factory=lambda: array("d"))
    missing: int = 0  # readings without a value

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.frombuffer(self.times, dtype=np.float64), np.frombuffer(self.values, dtype=np.float64)


@dataclass(slots=True)
class ReportData:
    series: dict[str, Series]
    cycles: list[NibpCycle]
    devices: dict[str, int]  # device -> readings
    readings: int


def collect(store: Store, record: SessionRecord) -> ReportData:
    series = {key: Series() for key in CONTINUOUS}
    cycles: list[NibpCycle] = []
    devices: dict[str, int] = {}
    n = 0
    nan = math.nan
    for item in with_nibp_cycles(session_readings(store, record.ctx)):
        if isinstance(item, NibpCycle):
            cycles.append(item)
            n += len(item.readings)
            devices[item.device] = devices.get(item.device, 0) + len(item.readings)
            continue
        n += 1
        devices[item.device] = devices.get(item.device, 0) + 1
        s = series.get(item.parameter)
        if s is None:
            continue
        s.times.append(item.device_time)
        if item.value is None:
            s.values.append(nan)
            s.missing += 1
        else:
            s.values.append(item.value)
    cycles.sort(key=lambda c: c.time)
    return ReportData(series, cycles, devices, n)

