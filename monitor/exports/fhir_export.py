"""FHIR R4 (4.0.1) JSON: the session as a Bundle of type ``collection``.

Entries, each with a ``urn:uuid:`` fullUrl (UUIDs derived from the session id and the
reading, so exporting the same session again gives the same ids):

- one **Patient** with the session's patient label or MRN as its identifier (Chairside knows
  no more of the patient);
- one **Encounter** for the session (class AMB, period from start to end, status
  ``finished``, or ``in-progress`` for a session still running), identified by the
  session id;
- one **Observation** per reading, following the FHIR vital-signs profiles: category
  ``vital-signs``, LOINC code(s) (heart rate 8867-4, pulse rate by oximetry 8889-8, SpO2
  59408-5 and 2708-6, MAP 8478-0) plus the IEEE 11073 MDC code as a further coding (system
  ``urn:iso:std:iso:11073:10101``), UCUM units, ``effectiveDateTime`` the device time,
  ``issued`` the time Chairside received it, ``subject``, ``encounter`` and ``device``
  references. A reading without a value (sensor off) has a ``dataAbsentReason``;
  signal-quality flags are carried as a note;
- the values of one NIBP cuff cycle become one **blood-pressure panel** (LOINC 85354-9, with
  systolic 8480-6 and diastolic 8462-4 components) and one **MAP** Observation;
- one **Device** per source device (identifier and name as the device reported them),
  written last, once the readings have named them all.

A partial export (the session had not ended) is tagged in ``Bundle.meta.tag``
(``urn:chairside:export-status`` ``partial``) and its Encounter is ``in-progress``.

Written incrementally: the Bundle's opening, then one entry per line (``json.dumps`` of
fixed parts prepared once, values formatted per reading), then the closing; memory stays
flat whatever the session's length. Every reading is kept: nothing is downsampled.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from monitor.exports.report_data import (
    NIBP_CYCLE_WINDOW_S,
    NibpCycle,
    SessionRecord,
    session_readings,
    with_nibp_cycles,
)
from monitor.parameters import PARAMETERS, Parameter, by_key
from monitor.readings import SENSOR_MISSING, QualityFlag, Reading, flag_names
from monitor.store.protocol import Store
from monitor.timefmt import Rfc3339Formatter, rfc3339

__all__ = ["FHIR_VERSION", "LOINC_DISPLAY", "MDC_SYSTEM", "write_fhir"]

FHIR_VERSION = "4.0.1"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MDC_SYSTEM = "urn:iso:std:iso:11073:10101"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
STATUS_TAG_SYSTEM = "urn:chairside:export-status"
SESSION_ID_SYSTEM = "urn:chairside:session"
DEVICE_ID_SYSTEM = "urn:chairside:device"
PATIENT_ID_SYSTEM = "urn:chairside:patient-label"
_SD = "http://hl7.org/fhir/StructureDefinition/"
BP_PANEL = "85354-9"

LOINC_DISPLAY = {
    "8867-4": "Heart rate",
    "8889-8": "Heart rate by Pulse oximetry",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "2708-6": "Oxygen saturation in Arterial blood",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8478-0": "Mean blood pressure",
    BP_PANEL: "Blood pressure panel with all children optional",
}
#: The most specific FHIR R4 vital-signs profile of each observation.
PROFILES = {"hr": _SD + "heartrate", "spo2": _SD + "oxygensat", "pr": _SD + "vitalsigns",
            "nibp_map": _SD + "vitalsigns", "nibp_sys": _SD + "vitalsigns",
            "nibp_dia": _SD + "vitalsigns", BP_PANEL: _SD + "bp"}
CATEGORY = [{"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}],
             "text": "Vital Signs"}]
_FLUSH_ENTRIES = 500


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _code(p: Parameter) -> dict[str, Any]:
    mdc_code, mdc_name = p.mdc_codes[0]
    coding = [{"system": LOINC, "code": c, "display": LOINC_DISPLAY[c]} for c in p.loinc]
    coding.append({"system": MDC_SYSTEM, "code": str(mdc_code), "display": mdc_name})
    return {"coding": coding, "text": LOINC_DISPLAY[p.loinc[0]]}


def _quantity_parts(p: Parameter) -> tuple[str, str]:
    """The JSON of a valueQuantity around its number: (before, after)."""
    before, after = _dumps({"value": 0, "unit": p.unit, "system": UCUM, "code": p.ucum}).split("0", 1)
    return before, after


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _absent(flags: int) -> dict[str, Any]:
    code, display = ("not-performed", "Not Performed") if flags & SENSOR_MISSING else ("unknown", "Unknown")
    out: dict[str, Any] = {"coding": [{"system": ABSENT_SYSTEM, "code": code, "display": display}]}
    if flags:
        out["text"] = "device reported no value: " + ", ".join(flag_names(flags))
    return out


class _Writer:
    """Entries to ``out``: one per line, separated by commas, flushed in batches."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.pending: list[str] = []
        self.count = 0

    def add(self, entry: str) -> None:
        self.pending.append(entry)
        if len(self.pending) >= _FLUSH_ENTRIES:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            lead = ",\n" if self.count else "\n"
            self.out.write((lead + ",\n".join(self.pending)).encode("utf-8"))
            self.count += len(self.pending)
            self.pending.clear()


def write_fhir(store: Store, record: SessionRecord, out: BinaryIO) -> int:
    """The ``fhir`` format; returns the number of readings exported."""
    ctx = record.ctx
    s = ctx.session
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:chairside:session:{s.id}")
    patient_id = str(uuid.uuid5(ns, "patient"))
    encounter_id = str(uuid.uuid5(ns, "encounter"))
    now = rfc3339(ctx.now)
    status = "partial" if ctx.partial else "complete"
    head = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(ns, f"bundle/{ctx.now!r}")),
        "meta": {"lastUpdated": now, "tag": [{
            "system": STATUS_TAG_SYSTEM, "code": status,
            "display": "Partial: the session had not ended when exported" if ctx.partial
            else "Complete: the session had ended"}]},
        "identifier": {"system": SESSION_ID_SYSTEM, "value": s.id},
        "type": "collection",
        "timestamp": now,
    }
    out.write(_dumps(head)[:-1].encode("utf-8") + b',"entry":[')
    w = _Writer(out)
    subject = {"reference": f"urn:uuid:{patient_id}", "display": s.patient}
    encounter = {"reference": f"urn:uuid:{encounter_id}"}
    w.add(_dumps({"fullUrl": f"urn:uuid:{patient_id}", "resource": {
        "resourceType": "Patient", "id": patient_id,
        "identifier": [{"use": "usual", "type": {"text": "Patient label or MRN"},
                        "system": PATIENT_ID_SYSTEM, "value": s.patient}]}}))
    period = {"start": rfc3339(s.started_at)}
    if s.ended_at is not None:
        period["end"] = rfc3339(s.ended_at)
    w.add(_dumps({"fullUrl": f"urn:uuid:{encounter_id}", "resource": {
        "resourceType": "Encounter", "id": encounter_id,
        "identifier": [{"system": SESSION_ID_SYSTEM, "value": s.id}],
        "status": "in-progress" if ctx.partial else "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                  "display": "ambulatory"},
        "type": [{"text": "Infusion session" + (f": {ctx.protocol_label}" if ctx.protocol_label else "")}],
        "subject": subject, "period": period,
        "location": [{"location": {"display": f"{ctx.chair_label} ({s.chair})"}}],
    }}))

    devices: dict[str, str] = {}  # device name -> Device uuid
    observations = _Observations(ns, subject, encounter, devices)
    n = 0
    for item in with_nibp_cycles(session_readings(store, ctx)):
        if isinstance(item, NibpCycle):
            n += len(item.readings)
            for entry in observations.nibp(item):
                w.add(entry)
        else:
            n += 1
            w.add(observations.single(item))
    for name, device_id in devices.items():
        w.add(_dumps({"fullUrl": f"urn:uuid:{device_id}", "resource": {
            "resourceType": "Device", "id": device_id,
            "identifier": [{"system": DEVICE_ID_SYSTEM, "value": name}],
            "deviceName": [{"name": name, "type": "user-friendly-name"}]}}))
    w.flush()
    out.write(b"\n]}\n")
    return n


class _Observations:
    """Observation entries as JSON text, from parts prepared once per parameter."""

    def __init__(self, ns: uuid.UUID, subject: dict[str, Any], encounter: dict[str, Any],
                 devices: dict[str, str]) -> None:
        self.ns = ns
        self.devices = devices
        self.seen: dict[float, set[str]] = {}  # names used per recent time (identical readings)
        self.latest = float("-inf")
        self.effective, self.issued = Rfc3339Formatter(), Rfc3339Formatter()
        common = {"subject": subject, "encounter": encounter}
        self.fixed: dict[str, str] = {}
        self.quantity: dict[str, tuple[str, str]] = {}
        for p in PARAMETERS:
            self.fixed[p.key] = _dumps({"meta": {"profile": [PROFILES[p.key]]}, "status": "final",
                                        "category": CATEGORY, "code": _code(p), **common})[1:-1]
            self.quantity[p.key] = _quantity_parts(p)
        panel_code = {"coding": [{"system": LOINC, "code": BP_PANEL, "display": LOINC_DISPLAY[BP_PANEL]}],
                      "text": "Blood pressure (NIBP)"}
        self.fixed[BP_PANEL] = _dumps({"meta": {"profile": [PROFILES[BP_PANEL]]}, "status": "final",
                                       "category": CATEGORY, "code": panel_code, **common})[1:-1]

    def _id(self, name: str, t: float) -> str:
        """A UUID from the reading's identity; a second identical reading gets another."""
        if t > self.latest:
            self.latest = t
            if len(self.seen) > 512:  # NIBP cycles come at most a window late
                for old in [x for x in self.seen if x < t - 2 * NIBP_CYCLE_WINDOW_S]:
                    del self.seen[old]
        used = self.seen.setdefault(t, set())
        key, k = name, 1
        while key in used:
            k += 1
            key = f"{name}#{k}"
        used.add(key)
        return str(uuid.uuid5(self.ns, key))

    def _device(self, name: str) -> str:
        device_id = self.devices.get(name)
        if device_id is None:
            device_id = self.devices[name] = str(uuid.uuid5(self.ns, f"device/{name}"))
        return device_id

    def _value(self, key: str, value: float | None, flags: int) -> str:
        if value is None:
            return '"dataAbsentReason":' + _dumps(_absent(flags))
        before, after = self.quantity[key]
        return f'"valueQuantity":{before}{_number(value)}{after}'

    def _entry(self, obs_id: str, fixed: str, t: float, received: float, body: str, flags: int,
               device: str, has_value: bool) -> str:
        note = ""
        if flags and has_value:
            texts = [{"text": "entered manually (a nurse's reading, not a device's)"}] \
                if flags & QualityFlag.MANUAL else []
            quality = flags & ~QualityFlag.MANUAL
            if quality:
                texts.append({"text": "signal quality: " + ", ".join(flag_names(quality))})
            note = ',"note":' + _dumps(texts)
        return (f'{{"fullUrl":"urn:uuid:{obs_id}","resource":{{"resourceType":"Observation",'
                f'"id":"{obs_id}",{fixed},"effectiveDateTime":"{self.effective(t)}",'
                f'"issued":"{self.issued(received)}",{body}{note},'
                f'"device":{{"reference":"urn:uuid:{self._device(device)}"}}}}}}')

    def single(self, r: Reading) -> str:
        obs_id = self._id(f"{r.parameter}|{r.device}|{r.device_time!r}|{r.seq}", r.device_time)
        fixed = self.fixed.get(r.parameter)
        if fixed is None:  # a parameter added to the store but not to this exporter
            raise ValueError(f"no FHIR mapping for parameter {r.parameter!r}")
        return self._entry(obs_id, fixed, r.device_time, r.receive_time,
                           self._value(r.parameter, r.value, r.flags), r.flags, r.device,
                           r.value is not None)

    def nibp(self, cycle: NibpCycle) -> Iterator[str]:
        sys_r, dia_r = cycle.readings.get("nibp_sys"), cycle.readings.get("nibp_dia")
        if sys_r is not None or dia_r is not None:
            components = []
            for key, r in (("nibp_sys", sys_r), ("nibp_dia", dia_r)):
                p = by_key(key)
                assert p is not None
                value = self._value(key, None if r is None else r.value, 0 if r is None else r.flags)
                components.append(f'{{"code":{_dumps(_code(p))},{value}}}')
            flags = (sys_r.flags if sys_r else 0) | (dia_r.flags if dia_r else 0)
            obs_id = self._id(f"bp|{cycle.device}|{cycle.time!r}", cycle.time)
            body = '"component":[' + ",".join(components) + "]"
            yield self._entry(obs_id, self.fixed[BP_PANEL], cycle.time,
                              min(r.receive_time for r in (sys_r, dia_r) if r is not None),
                              body, flags, cycle.device, True)
        map_r = cycle.readings.get("nibp_map")
        if map_r is not None:
            yield self.single(map_r)
