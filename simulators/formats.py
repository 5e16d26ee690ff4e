"""The wire formats the simulators speak, as pure functions of a sample (PROTOCOLS.md 2-4).

Each is the inverse of a parser in ``devices.parsers``; the tests parse what these write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devices.parsers.serial_lines import chairside_line
from monitor.parameters import by_key
from monitor.readings import QualityFlag, flag_names
from monitor.timefmt import rfc3339

__all__ = ["NELLCOR_COLUMNS", "NELLCOR_HEADER", "masimo_line", "nellcor_row", "nonin_line",
           "oru_r01", "serial_line", "vitals_json"]

F = QualityFlag
_EXC_BITS = {F.NO_SENSOR: 0x001, F.DEFECTIVE_SENSOR: 0x002, F.LOW_PERFUSION: 0x004,
             F.PULSE_SEARCH: 0x008, F.INTERFERENCE: 0x010, F.SENSOR_OFF: 0x020,
             F.AMBIENT_LIGHT: 0x040, F.UNRECOGNISED_SENSOR: 0x080, F.LOW_SIGNAL_QUALITY: 0x400}
_NELLCOR_STATUS = {F.SENSOR_OFF: "SO", F.NO_SENSOR: "SD", F.LOSS_OF_PULSE: "LP", F.MOTION: "MO",
                   F.PULSE_SEARCH: "PS", F.LOW_BATTERY: "LB"}
#: The flags PROTOCOLS.md section 2 allows in an MQTT payload.
MQTT_FLAGS = ("SENSOR_OFF", "NO_SENSOR", "LOW_PERFUSION", "PULSE_SEARCH", "INTERFERENCE",
              "LOW_SIGNAL_QUALITY", "ARTIFACT", "LOW_BATTERY")
NELLCOR_HEADER = "N-600x VERSION 1.2.3.4 CRC:1A2B SpO2 Limit: 85-100% PR Limit: 50-170bpm"
NELLCOR_COLUMNS = "TIME %SPO2 BPM PA Status"

Values = dict[str, float | None]


def _num(value: float | None, width: int = 3) -> str:
    return "-" * width if value is None else f"{round(value):0{width}d}"


def _local(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)  # simulated devices keep their clocks in UTC


def masimo_line(values: Values, flags: int, t: float, serial_number: str = "0000071234") -> str:
    exc = sum(bit for flag, bit in _EXC_BITS.items() if flags & flag)
    spo2 = "---" if values.get("spo2") is None else f"{_num(values['spo2'])}%"
    return (f"{_local(t):%m/%d/%y %H:%M:%S} SN={serial_number} SPO2={spo2} BPM={_num(values.get('pr'))}"
            f" PI=02.13 SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC={exc:06X}")


def nonin_line(values: Values, flags: int, t: float) -> str:
    return f"SPO2={_num(values.get('spo2'))} HR={_num(values.get('pr'))}"


def nellcor_row(values: Values, flags: int, t: float) -> str:
    codes = [code for flag, code in _NELLCOR_STATUS.items() if flags & flag]
    pa = "---" if values.get("spo2") is None else "50"
    row = f"{_local(t):%d-%b-%y %H:%M:%S}".upper()
    spo2, pr = values.get("spo2"), values.get("pr")
    return " ".join([row, "---" if spo2 is None else str(round(spo2)),
                     "---" if pr is None else str(round(pr)), pa, *codes])


def serial_line(protocol: str, values: Values, flags: int, t: float, seq: int, device: str) -> str:
    if protocol == "masimo":
        return masimo_line(values, flags, t)
    if protocol == "nonin":
        return nonin_line(values, flags, t)
    if protocol == "nellcor":
        return nellcor_row(values, flags, t)
    return chairside_line(values, seq=seq, flags=flag_names(flags), ts=rfc3339(t), device=device)


def vitals_json(values: Values, flags: int, t: float, seq: int, device: str) -> bytes:
    payload: dict[str, object] = {"device": device, "seq": seq, "ts": rfc3339(t)}
    for key in ("hr", "spo2", "pr"):
        if key in values:
            payload[key] = values[key]
    if "nibp_sys" in values:
        payload["nibp"] = {"sys": values["nibp_sys"], "dia": values.get("nibp_dia"),
                           "map": values.get("nibp_map")}
    names = [n for n in flag_names(flags) if n in MQTT_FLAGS]
    if names:
        payload["flags"] = names
    return json.dumps(payload).encode()


def _dtm(t: float) -> str:
    return f"{_local(t):%Y%m%d%H%M%S}+0000"


def oru_r01(values: Values, flags: int, t: float, *, control_id: str, bed: str, device: str) -> str:
    """An IHE PCD-01 ORU^R01 message with one OBX per value (no OBX for a missing value)."""
    segments = [
        f"MSH|^~\\&|CHAIRSIDE_SIM^{device}^EUI-64|SIM|CHAIRSIDE|CHAIRSIDE|{_dtm(t)}||ORU^R01^ORU_R01|"
        f"{control_id}|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        f"PID|||{device}-patient^^^SIM^PI||SIMULATED^PATIENT",
        f"PV1||O|{bed}",
        f"OBR|1|{control_id}^SIM|{control_id}^SIM|182777000^monitoring of patient^SNOMED-CT|||{_dtm(t)}",
    ]
    n = 0
    for key, value in values.items():
        param = by_key(key)
        if param is None or value is None:
            continue
        n += 1
        code, ref = param.mdc_codes[0]
        unit = f"{param.mdc_unit}^{_mdc_unit_ref(param.mdc_unit)}^MDC"
        segments.append(f"OBX|{n}|NM|{code}^{ref}^MDC|1.1.1.{code}|{value:g}|{unit}|||||R|||"
                        f"{_dtm(t)}||||{device}^^0001^EUI-64")
    return "\r".join(segments) + "\r"


def _mdc_unit_ref(code: int) -> str:
    return {264864: "MDC_DIM_BEAT_PER_MIN", 262688: "MDC_DIM_PERCENT", 266016: "MDC_DIM_MMHG"}[code]
