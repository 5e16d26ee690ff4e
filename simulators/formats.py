"""What the simulated devices put on the wire: a sample (values, flags, time) as one frame of
the chair's wire format. The formats themselves are the wire layer's (:mod:`wire.registry`):
here only what a simulated device chooses to send (a fixed Masimo serial number and
perfusion index, a Nellcor pulse amplitude, its clock in UTC).
"""

from __future__ import annotations

from monitor.seam import Frame
from wire.hl7.pcd01 import oru_r01
from wire.mqtt_json import format_vitals
from wire.registry import DIALECTS

__all__ = ["oru_r01", "serial_header", "serial_line", "vitals_json"]

Values = dict[str, float | None]
MASIMO_SN = "0000071234"


def serial_line(protocol: str, values: Values, flags: int, t: float, seq: int, device: str) -> str:
    """One line (no terminator) of the serial dialect ``protocol``."""
    dialect = DIALECTS[protocol]
    if dialect.parameters is not None:  # an oximeter sends its own parameters only
        values = {k: v for k, v in values.items() if k in dialect.parameters}
    if protocol == "masimo":
        frame = Frame(values, flags, f"masimo-{MASIMO_SN}", time=t,
                      extra={"pi": 2.13, "spco": None, "spmet": None, "alarm": 0})
    elif protocol == "nellcor":
        frame = Frame(values, flags, time=t,
                      extra={"pulse_amplitude": None if values.get("spo2") is None else 50})
    elif protocol == "chairside":
        frame = Frame(values, flags, device, seq, t)
    else:
        frame = Frame(values, flags, time=t)
    return dialect.format(frame)


def serial_header(protocol: str) -> tuple[str, ...]:
    """The lines the device repeats now and then (Nellcor's header and column line)."""
    return DIALECTS[protocol].header


def vitals_json(values: Values, flags: int, t: float, seq: int, device: str) -> bytes:
    """One MQTT ``vitals`` payload."""
    return format_vitals(Frame(values, flags, device, seq, t))
