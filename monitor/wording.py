"""The words a nurse reads in alarm and event texts: clinical language, units where a
nurse expects them, never internal keys or source names (those go to the log and to the
alarm event's note).

Units in limit messages (docs/clinical.md's ``SpO2 86 < 90`` form): the measured value always
carries its unit (``HR 134 bpm``, ``NIBP sys 75 mmHg``); the limit carries it only when it
is a percentage (``SpO2 86 % < 90 %``), the way a saturation limit is said aloud.
"""

from __future__ import annotations

from monitor.parameters import by_key

__all__ = ["label", "limit_text", "sensor_name", "transport_name", "with_unit"]

#: display units a nurse uses (a rate per minute is read as beats per minute)
_DISPLAY_UNIT = {"/min": "bpm"}


def label(key: str) -> str:
    """``SpO2`` for ``spo2``; an unknown key as it is."""
    param = by_key(key)
    return param.label if param else key


def _unit(key: str) -> str:
    param = by_key(key)
    return "" if param is None else _DISPLAY_UNIT.get(param.unit, param.unit)


def with_unit(key: str, value: float) -> str:
    """``86 %``, ``134 bpm``, ``75 mmHg``."""
    param = by_key(key)
    text = param.format(value) if param else f"{value:g}"
    unit = _unit(key)
    return f"{text} {unit}" if unit else text


def limit_text(key: str, value: float, limit: float, low: bool, name: str | None = None) -> str:
    """``SpO2 86 % < 90 %``, ``NIBP sys 75 mmHg < 80``; ``name`` replaces the label."""
    unit = _unit(key)
    bound = f"{limit:g} %" if unit == "%" else f"{limit:g}"
    return f"{name or label(key)} {with_unit(key, value)} {'<' if low else '>'} {bound}"


def sensor_name(key: str) -> str:
    """What a nurse calls the sensor delivering ``key``: ``SpO2 sensor``, ``ECG leads``."""
    if key == "hr":
        return "ECG leads"
    if key.startswith("nibp"):
        return "NIBP cuff"
    if key == "pr":
        return "SpO2 sensor"
    return f"{label(key)} sensor"


def transport_name(kind: str) -> str:
    """How a source's transport is named in a message: ``MQTT``, ``serial line``, ``HL7
    gateway``; an unknown kind: empty."""
    return {"mqtt": "MQTT", "serial": "serial line", "hl7": "HL7 gateway"}.get(kind, "")
