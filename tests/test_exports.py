"""Post-session exports (CSV, zip, FHIR R4, HL7 ORU^R01, PDF) from a real core on a real
SQLite file: one 25-minute session with infusion events, alarms acknowledged and paused,
limit changes and notes, and one session still running (exported partial)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7
import pytest
from conftest import T0, Harness, bay_config

from monitor.exports import FORMATS, UnknownFormat, export_filename, export_session
from monitor.exports.csv_export import CSV_COLUMNS, write_csv, zip_folder
from monitor.exports.hl7_export import read_hl7_file
from monitor.exports.report_data import NibpCycle, software_version, with_nibp_cycles
from monitor.localtime import machine_zone
from monitor.readings import QualityFlag, Reading
from monitor.records import SessionEventKind as K
from monitor.timefmt import rfc3339
from station.cli import main
from wire.hl7.mllp import frame
from wire.hl7.pcd01 import parse_pcd01

PARTIAL_PATIENT = "Zoë Ng|^~&\\7"  # HL7 separators and a non-ASCII letter in a label
NIBP_AT = (5, 305, 605, 905, 1205)  # seconds after the start: one cuff cycle each
NIBP_VALUES = {5: (124, 79, 94), 305: (131, 82, 98), 605: (128, 80, 96), 905: (186, 101, 129),
               1205: (121, 76, 91)}


class Bay:
    """Two sessions on a real store: ``ended`` on c1 (25 min, ketamine) and ``running`` on c2."""

    def __init__(self, tmp: Path) -> None:
        self.h = h = Harness(tmp, bay={"timezone": "UTC"})  # the PDF in UTC: see test_pdf_times_*
        m = h.monitor
        self.ended = m.start_session("c1", "MRN-0042", "nurse.ann", protocol="ketamine")
        self.running = m.start_session("c2", PARTIAL_PATIENT, "nurse.ann", protocol="magnesium")
        sid = self.ended.id
        for i in range(1500):
            t = h.clock.now()
            spo2: float | None = 86.0 if 600 <= i < 660 else 97.0
            flags = 0
            if i == 50:
                spo2, flags = None, int(QualityFlag.SENSOR_OFF)
            batch = [
                Reading("c1", "hr", float(72 + round(6 * math.sin(i / 90))), t, t, "ecg-7", i),
                Reading("c1", "pr", 71.0, t, t, "rad97-0012", i),
                Reading("c1", "spo2", spo2, t, t, "rad97-0012", i,
                        int(QualityFlag.LOW_PERFUSION) if i == 70 else flags),
            ]
            if i in NIBP_VALUES:
                batch += [Reading("c1", k, float(v), t, t, "cuff-3", i)
                          for k, v in zip(("nibp_sys", "nibp_dia", "nibp_map"), NIBP_VALUES[i], strict=True)]
            if i < 180:
                batch.append(Reading("c2", "spo2", 98.0, t, t, "nonin-2", i))
            m.ingest(batch)
            m.tick()
            if i == 119:  # the pre-infusion baseline, proposed and confirmed
                m.confirm_baseline(sid, "nurse.ann")
            elif i == 120:
                m.session_step(sid, K.INFUSION_STARTED, "nurse.ann", "250 mL/h")
                m.session_step(self.running.id, K.INFUSION_STARTED, "nurse.ann", "100 mL/h")
            elif i == 400:
                m.session_step(sid, K.RATE_CHANGED, "nurse.bob", "rate 125 mL/h")
            elif i == 500:
                m.session_step(sid, K.NOTE, "nurse.bob", "Mild dizziness <reported> & fluids offered")
            elif i == 630:
                (alarm,) = [a for a in m.open_alarms() if a.chair == "c1"]
                m.acknowledge(alarm.id, "nurse.bob")
            elif i == 700:
                m.set_limits(sid, [{"parameter": "spo2", "low": 88, "priority": "medium", "delay_s": 15}],
                             "dr.lee", confirm=True)  # widens the profile's 90: confirmed
            elif i == 910:
                m.pause_audio("c1", "nurse.cat")
            elif i == 1200:
                m.session_step(sid, K.OBSERVATION_STARTED, "nurse.ann")
            h.clock.advance(1)
        self.ended = m.end_session(sid, "nurse.ann")
        self.running = m.session(self.running.id)
        h.flush()
        self.store = m.store
        self.now = h.clock.now()

    def export(self, session, fmt: str) -> bytes:
        out = io.BytesIO()
        export_session(self.store, session, fmt, out, self.now, config=self.h.config)
        return out.getvalue()

    def readings(self, session) -> list[Reading]:
        end = session.ended_at if session.ended_at is not None else self.now
        return list(self.store.iter_readings(session.chair, session.started_at, end))


@pytest.fixture(scope="module")
def bay(tmp_path_factory):
    b = Bay(tmp_path_factory.mktemp("exports"))
    yield b
    b.h.monitor.close()


# --- csv and zip -------------------------------------------------------------------------


def test_csv_is_the_contract_readings_csv(bay):
    data = bay.export(bay.ended, "csv").decode("utf-8")
    rows = list(csv.reader(io.StringIO(data)))
    assert tuple(rows[0]) == CSV_COLUMNS
    readings = bay.readings(bay.ended)
    assert len(rows) - 1 == len(readings) == 1500 * 3 + 5 * 3
    assert rows[1] == [rfc3339(T0), "c1", bay.ended.id, "hr", "72", "/min", "ecg-7", ""]
    sensor_off = next(r for r in rows if r[3] == "spo2" and r[4] == "")
    assert sensor_off[0] == rfc3339(T0 + 50) and sensor_off[7] == "SENSOR_OFF"
    assert {r[3] for r in rows[1:]} == {"hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_map"}
    assert all(r[1] == "c1" for r in rows[1:])  # the other chair's readings are not in it
    text = io.StringIO()  # the same bytes as the plain CSV writer
    write_csv(bay.store, bay.ended, text, bay.now)
    assert text.getvalue() == data


def test_zip_holds_every_record_of_the_session(bay):
    with zipfile.ZipFile(io.BytesIO(bay.export(bay.ended, "zip"))) as zf:
        folder = f"chairside-c1-{bay.ended.id}"
        assert sorted(zf.namelist()) == sorted(f"{folder}/{n}" for n in (
            "readings.csv", "alarms.csv", "events.csv", "actions.csv", "session.csv"))
        assert zf.read(f"{folder}/readings.csv") == bay.export(bay.ended, "csv")

        def table(name: str) -> list[dict[str, str]]:
            return list(csv.DictReader(io.StringIO(zf.read(f"{folder}/{name}").decode("utf-8"))))

        alarms = table("alarms.csv")
        spo2 = [a for a in alarms if a["code"] == "SPO2_LOW"]
        assert [(a["new_state"], a["user"]) for a in spo2] == [
            ("active", ""), ("acknowledged", "nurse.bob"), ("cleared", "")]
        assert spo2[0]["message"] == "SpO2 86 % < 92 %" and spo2[0]["priority"] == "medium"
        nibp = [(a["new_state"], a["user"]) for a in alarms if a["code"] == "NIBP_SYS_HIGH"]
        assert nibp[:2] == [("active", ""), ("paused", "nurse.cat")] and nibp[-1][0] == "cleared"
        events = table("events.csv")
        assert [e["kind"] for e in events if e["kind"] != "baseline_set"] == [
            "session_started", "infusion_started", "rate_changed", "note", "limits_changed",
            "observation_started", "session_ended"]
        started = next(e for e in events if e["kind"] == "infusion_started")
        assert started["time_utc"] == rfc3339(T0 + 120) and started["detail"] == "250 mL/h"
        baseline = next(e for e in events if e["kind"] == "baseline_set")
        assert baseline["time_utc"] == rfc3339(T0 + 119) and baseline["user"] == "nurse.ann"
        assert json.loads(next(e for e in events if e["kind"] == "limits_changed")["data"])["rules"][0][
            "low"] == 88
        actions = table("actions.csv")
        assert ("nurse.bob", "acknowledge") in {(a["user"], a["action"]) for a in actions}
        assert ("nurse.cat", "pause_audio") in {(a["user"], a["action"]) for a in actions}
        (session,) = table("session.csv")
        assert session["export_status"] == "complete" and session["patient"] == "MRN-0042"
        assert session["readings"] == str(4515) and session["ended_by"] == "nurse.ann"
        assert session["protocol_label"] == "Ketamine, sub-dissociative (example)"
        assert session["software_version"] == software_version()
        assert session["baseline_spo2"] == "97"


class _Pipe:
    """A write-only, unseekable sink, like a socket or standard output."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)

    def flush(self) -> None:
        pass


def test_zip_of_a_running_session_is_marked_partial_and_streams_to_a_pipe(bay):
    pipe = _Pipe()
    result = export_session(bay.store, bay.running, "zip", pipe, bay.now, config=bay.h.config)  # type: ignore[arg-type]
    assert result.partial
    with zipfile.ZipFile(io.BytesIO(bytes(pipe.data))) as zf:
        folder = f"chairside-c2-{bay.running.id}-partial"
        assert all(n.startswith(folder + "/") for n in zf.namelist())
        (session,) = csv.DictReader(io.StringIO(zf.read(f"{folder}/session.csv").decode("utf-8")))
        assert session["export_status"] == "partial" and session["ended_at_utc"] == ""
        assert session["covers_until_utc"] == rfc3339(bay.now) and session["patient"] == PARTIAL_PATIENT
        assert zf.testzip() is None


# --- FHIR ----------------------------------------------------------------------------------


def test_fhir_bundle_validates_against_the_r4_models_and_follows_the_vital_signs_profiles(bay):
    from fhir.resources.R4B.bundle import Bundle

    data = json.loads(bay.export(bay.ended, "fhir"))
    Bundle.model_validate(data)  # raises on any structural error
    assert data["type"] == "collection" and data["meta"]["tag"][0]["code"] == "complete"
    resources = [e["resource"] for e in data["entry"]]
    urls = [e["fullUrl"] for e in data["entry"]]
    assert len(set(urls)) == len(urls) and all(u.startswith("urn:uuid:") for u in urls)
    by_url = dict(zip(urls, resources, strict=True))
    (patient,) = [r for r in resources if r["resourceType"] == "Patient"]
    assert patient["identifier"][0]["value"] == "MRN-0042"
    (encounter,) = [r for r in resources if r["resourceType"] == "Encounter"]
    assert encounter["status"] == "finished" and encounter["identifier"][0]["value"] == bay.ended.id
    devices = {r["deviceName"][0]["name"] for r in resources if r["resourceType"] == "Device"}
    assert devices == {"ecg-7", "rad97-0012", "cuff-3"}
    obs = [r for r in resources if r["resourceType"] == "Observation"]
    assert len(obs) == 1500 * 3 + 5 * 2  # every reading; each cuff cycle a BP panel and a MAP

    def codes(r: dict, system: str) -> list[str]:
        return [c["code"] for c in r["code"]["coding"] if c["system"] == system]

    mdc = "urn:iso:std:iso:11073:10101"
    for r in obs:
        assert r["category"][0]["coding"][0]["code"] == "vital-signs" and r["status"] == "final"
        assert by_url[r["subject"]["reference"]] is patient
        assert by_url[r["device"]["reference"]]["resourceType"] == "Device"
        assert by_url[r["encounter"]["reference"]] is encounter
        assert "valueQuantity" in r or "dataAbsentReason" in r or "component" in r
        if "valueQuantity" in r:
            assert r["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    hr = next(r for r in obs if codes(r, "http://loinc.org") == ["8867-4"])
    assert codes(hr, mdc) == ["147842"] and hr["valueQuantity"]["code"] == "/min"
    assert hr["effectiveDateTime"] == rfc3339(T0) and hr["meta"]["profile"] == [
        "http://hl7.org/fhir/StructureDefinition/heartrate"]
    spo2 = [r for r in obs if "2708-6" in codes(r, "http://loinc.org")]
    assert codes(spo2[0], "http://loinc.org") == ["59408-5", "2708-6"] and codes(spo2[0], mdc) == ["150456"]
    assert spo2[0]["valueQuantity"]["code"] == "%"
    absent = [r for r in spo2 if "dataAbsentReason" in r]
    assert len(absent) == 1 and absent[0]["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    assert absent[0]["effectiveDateTime"] == rfc3339(T0 + 50)
    assert any("LOW_PERFUSION" in r.get("note", [{}])[0].get("text", "") for r in spo2)
    assert any(codes(r, "http://loinc.org") == ["8889-8"] for r in obs)
    panels = [r for r in obs if codes(r, "http://loinc.org") == ["85354-9"]]
    assert len(panels) == 5
    high = next(p for p in panels if p["effectiveDateTime"] == rfc3339(T0 + 905))
    comps = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in high["component"]}
    assert comps["8480-6"]["value"] == 186 and comps["8462-4"]["value"] == 101
    assert comps["8480-6"]["code"] == "mm[Hg]"
    maps = [r for r in obs if codes(r, "http://loinc.org") == ["8478-0"]]
    assert sorted(m["valueQuantity"]["value"] for m in maps) == sorted(v[2] for v in NIBP_VALUES.values())
    assert codes(maps[0], mdc) == ["150023"]


def test_fhir_of_a_running_session_is_tagged_partial_and_ids_are_stable(bay):
    from fhir.resources.R4B.bundle import Bundle

    first = bay.export(bay.running, "fhir")
    data = json.loads(first)
    Bundle.model_validate(data)
    assert data["meta"]["tag"][0]["code"] == "partial"
    encounter = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert encounter["status"] == "in-progress" and "end" not in encounter["period"]
    patient = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["identifier"][0]["value"] == PARTIAL_PATIENT
    assert first == bay.export(bay.running, "fhir")  # same session, same time: same bytes


# --- HL7 -----------------------------------------------------------------------------------


def test_hl7_messages_parse_back_to_the_readings(bay):
    messages = list(read_hl7_file(bay.export(bay.ended, "hl7")))
    assert len(messages) == 25  # one per minute
    got = []
    not_measured = 0
    for text in messages:
        parsed = parse_pcd01(text)
        assert parsed.message_type == "ORU^R01" and not parsed.rejections
        not_measured += parsed.not_measured
        got += [(o.parameter, o.value, o.time, o.equipment) for o in parsed.observations]
        msg = hl7.parse(text)
        assert str(msg.segment("MSH")[9]) == "ORU^R01^ORU_R01"
        assert str(msg.segment("PID")[3]) == "MRN-0042"
        assert str(msg.segment("PID")[5]) == "MRN-0042^^^^^^D"  # the label as display name
        assert str(msg.segment("PV1")[3]) == "bay1^^c1"
        assert str(msg.segment("OBR")[25]) == "F"
        assert "NTE|1||PARTIAL" not in text
    want = [(r.parameter, r.value, r.device_time, r.device) for r in bay.readings(bay.ended)
            if r.value is not None]
    assert sorted(got) == sorted(want) and not_measured == 1
    ids = [str(hl7.parse(t).segment("MSH")[10]) for t in messages]
    assert len(set(ids)) == len(ids) and all(len(i) <= 20 for i in ids)
    obx = hl7.parse(messages[0]).segments("OBX")[0]
    assert str(obx[3]) == "147842^MDC_ECG_HEART_RATE^MDC" and str(obx[6]) == "264864^MDC_DIM_BEAT_PER_MIN^MDC"
    assert str(obx[14]) == "20270115080000.000+0000" and str(obx[18]) == "ecg-7"
    assert "|150456^MDC_PULS_OXIM_SAT_O2^MDC|2.0.0.102||262688^MDC_DIM_PERCENT^MDC|||||X|||" \
        "20270115080050.000+0000||||rad97-0012\rNTE|1||signal quality: SENSOR_OFF\r" in messages[0]
    assert "\rNTE|1||signal quality: LOW_PERFUSION\r" in messages[1]


def test_hl7_of_a_running_session_is_preliminary_and_escapes_the_label(bay):
    messages = list(read_hl7_file(bay.export(bay.running, "hl7")))
    assert len(messages) == 3
    for text in messages:
        msg = hl7.parse(text)
        assert str(msg.segment("OBR")[25]) == "P"
        assert str(msg.segment("NTE")[3]).startswith("PARTIAL EXPORT")
        assert msg.unescape(str(msg.segment("PID")[3])) == PARTIAL_PATIENT
        assert msg.unescape(str(msg.segment("PID")[5][0][0])) == PARTIAL_PATIENT
        assert len(parse_pcd01(text).observations) == 60


# --- every standard format, read by a strict validator of its standard ----------------------


def _validate_hl7_strictly(data: bytes) -> int:
    """Every message of an ``hl7`` export through hl7apy's STRICT validation, at the version
    its MSH-12 claims; returns the number of messages."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    from wire.hl7.v2 import read_header

    messages = list(read_hl7_file(data))
    for text in messages:
        header = read_header(text)
        assert header is not None and header.version == "2.6"
        parsed = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)
        assert parsed.version == header.version and parsed.name == "ORU_R01"
        assert parsed.validate() is True  # raises naming the first violation
        assert parsed.to_er7() == text.rstrip("\r")  # hl7apy read every segment
    return len(messages)


def _validate_fhir_strictly(data: bytes) -> int:
    """The ``fhir`` export through fhir.resources' R4B models; returns the number of entries."""
    from fhir.resources.R4B.bundle import Bundle

    bundle = Bundle.model_validate(json.loads(data))
    return len(bundle.entry or [])


STANDARD_VALIDATORS = {"hl7": _validate_hl7_strictly, "fhir": _validate_fhir_strictly}
NOT_STANDARDS = {"csv", "zip", "pdf"}  # Chairside's own CSV columns, a zip of them, a report


def test_every_export_format_is_a_validated_standard_or_none():
    assert set(FORMATS) == set(STANDARD_VALIDATORS) | NOT_STANDARDS
    assert not set(STANDARD_VALIDATORS) & NOT_STANDARDS


@pytest.mark.parametrize("fmt", sorted(STANDARD_VALIDATORS))
@pytest.mark.parametrize("which", ["ended", "running"])
def test_every_standard_format_passes_its_strict_validator(bay, fmt, which):
    """Issue 11 point 10 (every HL7 message failed v2.6 strict validation: no PID-5)."""
    session = getattr(bay, which)
    assert STANDARD_VALIDATORS[fmt](bay.export(session, fmt)) > 0


def test_hl7_strict_validation_catches_a_missing_patient_name(bay):
    """The validator is strict enough to refuse what the export used to send."""
    from hl7apy.exceptions import ValidationError

    (text, *_) = read_hl7_file(bay.export(bay.ended, "hl7"))
    old = text.replace("PID|1||MRN-0042||MRN-0042^^^^^^D\r", "PID|1||MRN-0042\r")
    assert old != text
    with pytest.raises(ValidationError, match="PID_5"):
        _validate_hl7_strictly(frame(old))


# --- PDF -----------------------------------------------------------------------------------


def _pdf_text(pdf: bytes, tmp_path: Path, name: str) -> tuple[str, int]:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    return text, pages


def test_pdf_report_carries_the_session_record(bay, tmp_path):
    pdf = bay.export(bay.ended, "pdf")
    assert pdf.startswith(b"%PDF-")
    text, pages = _pdf_text(pdf, tmp_path, "ended")
    assert pages == 2
    flat = " ".join(text.split())
    assert "Infusion session report" in flat and "PARTIAL" not in flat
    for expected in (
        "MRN-0042", "Chair 1 (c1), bay bay1", "Ketamine, sub-dissociative (example)", "0.2 mg/kg/h IV",
        # infusion events with their times and who recorded them
        "08:02:00 +0:02 Infusion started 250 mL/h nurse.ann", "08:06:40 +0:06 Rate changed rate 125 mL/h",
        "08:11:40 +0:11 Limits changed limits: SpO2 low limit 92 % → 88 % (profile default",  # (wraps)
        "08:20:00 +0:20 Observation started", "08:25:00 +0:25 Session ended",
        # baseline (captured over the first 5 minutes) and trends
        "Baseline and range", "Trends", "SpO2 (%) 97",
        # the alarm log: who acknowledged or paused what
        "SpO2 86 % < 92 %", "08:10:30 nurse.bob", "NIBP 186/101 mmHg", "(MAP 129): sys 186 > 170",  # (wraps)
        "08:15:10 nurse.cat (to", "08:17:10)",
        # notes, escaped as text
        "Mild dizziness <reported> & fluids offered",
        f"Chairside {software_version()}", "Page 1 of 2", "Page 2 of 2",
    ):
        assert expected in flat, expected
    for i, (sys_, dia, mean) in NIBP_VALUES.items():  # every NIBP reading in the table
        t = rfc3339(T0 + i)[11:19]
        assert f"{t} +0:{i // 60:02d} {sys_} {dia} {mean}" in flat, t
    assert f"Exported {rfc3339(bay.now)[:10]} {rfc3339(bay.now)[11:19]} UTC" in flat


def test_pdf_of_a_running_session_is_marked_partial_on_every_page(bay, tmp_path):
    text, pages = _pdf_text(bay.export(bay.running, "pdf"), tmp_path, "running")
    assert "Infusion session report — PARTIAL" in text
    assert text.count("PARTIAL — session not ended") == pages
    assert PARTIAL_PATIENT in text  # any label prints (embedded DejaVu Sans)
    flat = " ".join(text.split())
    assert "No NIBP reading in this session." in flat and "No notes." in flat
    assert "08:03:29 medium ** No SpO2 data (technical) — — still active" in flat  # c2's SpO2 stopped
    pdf = tmp_path / "running.pdf"  # and the first page renders (pdftoppm, poppler-utils)
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
                   check=True, timeout=60)
    assert (tmp_path / "p-1.png").stat().st_size > 5000


# --- time zones: the report in the bay's local time, the machine formats in UTC (issue 14.4) --

ZONES = [  # zone, its abbreviation and UTC offset in January 2027 (known answers, not computed)
    ("America/New_York", "EST", "UTC-05:00", -5.0),
    ("Asia/Kolkata", "IST", "UTC+05:30", 5.5),
]


def _zone_config(tmp_path: Path, zone: str):
    if datetime.fromtimestamp(T0, machine_zone()).utcoffset() == \
            datetime.fromtimestamp(T0, ZoneInfo(zone)).utcoffset():
        pytest.skip(f"this machine is in {zone}'s offset: the test would not tell them apart")
    return bay_config(tmp_path, bay={"timezone": zone})  # the same chairs and labels as the bay


def _export_with(bay: Bay, session, fmt: str, config) -> bytes:
    out = io.BytesIO()
    export_session(bay.store, session, fmt, out, bay.now, config=config)
    return out.getvalue()


@pytest.mark.parametrize(("zone", "abbr", "offset", "hours"), ZONES)
def test_pdf_times_are_the_bays_local_time_with_the_zone_named(bay, tmp_path, zone, abbr, offset, hours):
    config = _zone_config(tmp_path, zone)

    def local(seconds: float) -> str:  # T0 is 2027-01-15 08:00:00 UTC
        return f"{datetime(2027, 1, 15, 8) + timedelta(hours=hours, seconds=seconds):%H:%M:%S}"

    text, _ = _pdf_text(_export_with(bay, bay.ended, "pdf", config), tmp_path, "zoned")
    flat = " ".join(text.split())
    assert f"Times are {zone} ({offset})" in flat
    for expected in (
        f"2027-01-15 {local(0)} {abbr} by 2027-01-15 {local(1500)} {abbr} by",  # started, ended
        f"Infusion {local(120)} {abbr} to {local(1200)} {abbr} Observation from {local(1200)} {abbr}",
        f"{local(120)} +0:02 Infusion started 250 mL/h nurse.ann",  # the timeline
        f"{local(400)} +0:06 Rate changed rate 125 mL/h",
        f"{local(630)} nurse.bob",  # the alarm acknowledged
        f"{local(910)} nurse.cat (to", f"{local(1030)})",  # audio paused for 120 s
        f"Exported 2027-01-15 {local(1500)} {abbr} · Chairside",  # every page's footer
    ):
        assert expected in flat, expected
    for i, (sys_, dia, mean) in NIBP_VALUES.items():
        assert f"{local(i)} +0:{i // 60:02d} {sys_} {dia} {mean}" in flat, i
    assert re.search(rf"# Time \({abbr}\) Since start Event", flat)  # each table names the zone
    assert re.search(rf"# Time \({abbr}\) Since start Sys Dia MAP", flat)
    z = rf"\({abbr}\)"  # the alarm log's four time columns (two header lines: Began, Acknowledged wrap)
    assert re.search(rf"# Began Priority Alarm Acknowledged Audio paused {z} Ended {z} {z} {z} 1 ", flat)
    for i in (0, 120, 630, 1500):  # and no UTC clock time is left
        assert rfc3339(T0 + i)[11:19] not in flat, i
    assert "all times UTC" not in flat

    text, _ = _pdf_text(_export_with(bay, bay.running, "pdf", config), tmp_path, "zoned-partial")
    flat = " ".join(text.split())
    assert f"It covers {local(0)} {abbr} to {local(1500)} {abbr} only" in flat


def test_pdf_across_a_daylight_saving_change_puts_the_zone_on_every_time(tmp_path):
    h = Harness(tmp_path, bay={"timezone": "Europe/Berlin"})
    try:
        h.clock.set(datetime(2027, 3, 28, 0, 30, tzinfo=UTC).timestamp())  # 01:30 CET; at 01:00 UTC
        m = h.monitor  # the clocks go from 02:00 CET to 03:00 CEST
        session = m.start_session("c1", "MRN-7", "nurse.ann")
        for i in range(0, 3600, 10):
            t = h.clock.now()
            batch = [Reading("c1", "spo2", 97.0, t, t, "ox-1", i)]
            if i % 1200 == 0:
                batch += [Reading("c1", k, v, t, t, "cuff-1", i)
                          for k, v in (("nibp_sys", 120.0), ("nibp_dia", 80.0), ("nibp_map", 93.0))]
            m.ingest(batch)
            m.tick()
            h.clock.advance(10)
        session = m.end_session(session.id, "nurse.ann")
        h.flush()
        out = io.BytesIO()
        export_session(m.store, session, "pdf", out, h.clock.now(), config=h.config)
    finally:
        h.monitor.close()
    text, _ = _pdf_text(out.getvalue(), tmp_path, "dst")
    flat = " ".join(text.split())
    assert "Times are Europe/Berlin (UTC+01:00, then UTC+02:00)" in flat
    assert "2027-03-28 01:30:00 CET by" in flat and "2027-03-28 03:30:00 CEST by" in flat  # started, ended
    # each table time carries its abbreviation (wrapped under it), the header names both
    assert re.search(r"# Time Since start Sys Dia MAP Sys vs base Device Flags \(CET/CEST\) "
                     r"1 01:30:00 \+0:00 120 80 93 — cuff-1 CET 2 01:50:00 \+0:20 120 80 93 — cuff-1 CET "
                     r"3 03:10:00 \+0:40 120 80 93 — cuff-1 CEST ", flat)


@pytest.mark.parametrize("fmt", ["csv", "zip", "fhir", "hl7"])
def test_machine_readable_formats_stay_utc_whatever_the_bays_zone(bay, tmp_path, fmt):
    utc = _export_with(bay, bay.ended, fmt, bay.h.config)  # [bay] timezone = "UTC"
    for zone, *_ in ZONES:
        assert _export_with(bay, bay.ended, fmt, _zone_config(tmp_path / zone, zone)) == utc, zone
    start = rfc3339(T0)  # 2027-01-15T08:00:00.000Z: UTC, with Z (HL7: +0000)
    text = (zipfile.ZipFile(io.BytesIO(utc)).read(f"{zip_folder(bay.ended)}/readings.csv") if fmt == "zip"
            else utc).decode("utf-8")
    expected = {"csv": f"\n{start},c1,", "zip": f"\n{start},c1,", "fhir": f'"{start}"',
                "hl7": "|20270115080000.000+0000|"}[fmt]
    assert expected in text


# --- the one entry point, the command line, the API ----------------------------------------


def test_every_format_has_a_name_type_and_file_name(bay):
    assert list(FORMATS) == ["csv", "zip", "fhir", "hl7", "pdf"]
    assert export_filename(bay.ended, "fhir") == f"chairside-c1-{bay.ended.id}.fhir.json"
    assert export_filename(bay.running, "pdf") == f"chairside-c2-{bay.running.id}-partial.pdf"
    with pytest.raises(UnknownFormat, match="format must be one of csv, zip, fhir, hl7, pdf, not 'xml'"):
        export_session(bay.store, bay.ended, "xml", io.BytesIO(), bay.now)


def test_the_fast_time_formatter_writes_what_rfc3339_writes():
    import random

    from monitor.timefmt import Rfc3339Formatter

    rnd = random.Random(3)
    times = sorted(T0 + rnd.random() * 86_400 for _ in range(20_000))
    times += [T0 + 0.9995, T0 + 0.9999995, T0 - 0.0004995, T0 + 1e-7, T0 + 59.999_999_7]
    fmt = Rfc3339Formatter()
    assert [fmt(t) for t in times] == [rfc3339(t) for t in times]


def test_nibp_cycles_group_the_values_of_one_cuff_cycle():
    def r(param: str, t: float, device: str = "cuff") -> Reading:
        return Reading("c1", param, 100.0, t, t, device)

    items = list(with_nibp_cycles([
        r("nibp_sys", 0), r("hr", 0, "ecg"), r("nibp_dia", 2), r("nibp_map", 3),  # one cycle, apart
        r("nibp_sys", 300), r("nibp_sys", 310),  # a repeated value starts a new cycle
        r("nibp_dia", 600, "cuff-b"), r("hr", 700, "ecg"),  # left open, closed by time passing
    ]))
    kinds = [(type(i).__name__, i.time if isinstance(i, NibpCycle) else i.parameter) for i in items]
    assert kinds == [("Reading", "hr"), ("NibpCycle", 0), ("NibpCycle", 300), ("NibpCycle", 310),
                     ("NibpCycle", 600), ("Reading", "hr")]
    assert sorted(items[1].readings) == ["nibp_dia", "nibp_map", "nibp_sys"]


@pytest.fixture(scope="module")
def bay_toml(bay, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "bay.toml"
    path.write_text(f'[store]\npath = "{bay.h.config.store.path}"\n'
                    + "".join(f'[[chairs]]\nid = "c{i}"\nlabel = "Chair {i}"\n' for i in (1, 2, 3)))
    return path


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_cli_exports_every_format(bay, bay_toml, tmp_path, fmt):
    out = tmp_path / export_filename(bay.ended, fmt)
    args = ["export", "--config", str(bay_toml), "--session", bay.ended.id, "--format", fmt,
            "--out", str(out)]
    assert main(args) == 0
    data = out.read_bytes()
    if fmt == "csv":
        assert data == bay.export(bay.ended, "csv")
    elif fmt == "zip":
        assert zipfile.ZipFile(out).testzip() is None
    elif fmt == "fhir":
        assert json.loads(data)["resourceType"] == "Bundle"
    elif fmt == "hl7":
        assert len(list(read_hl7_file(data))) == 25
    else:
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_cli_bad_input_is_exit_status_2(bay, bay_toml, tmp_path, capsys):
    base = ["export", "--config", str(bay_toml), "--format", "pdf"]
    out = tmp_path / "report.pdf"
    out.write_bytes(b"keep me")
    assert main([*base, "--session", bay.ended.id, "--out", str(out)]) == 2
    assert "exists; use --force" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main([*base, "--session", bay.ended.id, "--out", str(out), "--force"]) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    assert main([*base, "--session", "nope", "--out", str(tmp_path / "x.pdf")]) == 2
    assert "no session with id 'nope'" in capsys.readouterr().err
    assert main([*base, "--session", bay.ended.id, "--out", str(tmp_path / "no" / "x.pdf")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*base[:-1], "docx", "--session", bay.ended.id, "--out", str(tmp_path / "x")])
    assert info.value.code == 2 and "invalid choice: 'docx'" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists() and not (tmp_path / "x").exists()


def test_cli_writes_to_standard_output(bay, bay_toml, capsysbinary):
    assert main(["export", "--config", str(bay_toml), "--session", bay.ended.id, "--format", "hl7",
                 "--out", "-"]) == 0
    assert len(list(read_hl7_file(capsysbinary.readouterr().out))) == 25


@pytest.fixture(scope="module")
def client(bay):
    from flask import Flask

    from dashboard.api import install_api
    from dashboard.live import LiveBay

    app = Flask("test")
    install_api(app, LiveBay(bay.h.monitor, max_age=60))
    return app.test_client()


@pytest.mark.parametrize(("fmt", "mimetype"), [(f.name, f.mimetype) for f in FORMATS.values()])
def test_api_exports_every_format(bay, client, fmt, mimetype):
    answer = client.get(f"/api/v1/sessions/{bay.ended.id}/export?format={fmt}")
    assert answer.status_code == 200 and answer.mimetype == mimetype
    assert answer.headers["Content-Disposition"] == (
        f'attachment; filename="{export_filename(bay.ended, fmt)}"')
    body = answer.get_data()
    if fmt == "csv":
        assert body == bay.export(bay.ended, "csv")  # the same bytes as the CLI's
    else:
        assert int(answer.headers["Content-Length"]) == len(body) > 1000
    if fmt == "hl7":
        assert len(list(read_hl7_file(body))) == 25


def test_api_partial_unknown_session_and_unknown_format(bay, client):
    answer = client.get(f"/api/v1/sessions/{bay.running.id}/export?format=fhir")
    assert answer.status_code == 200
    assert f"{bay.running.id}-partial.fhir.json" in answer.headers["Content-Disposition"]
    assert json.loads(answer.get_data())["meta"]["tag"][0]["code"] == "partial"
    answer = client.get("/api/v1/sessions/nope/export?format=pdf")
    assert answer.status_code == 404 and answer.get_json() == {"error": "no session with id 'nope'"}
    answer = client.get(f"/api/v1/sessions/{bay.ended.id}/export?format=xlsx")
    assert answer.status_code == 400
    assert answer.get_json() == {"error": "format must be one of csv, zip, fhir, hl7, pdf, not 'xlsx'"}


# --- streaming: memory does not grow with the session ------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, b: bytes) -> int:
        self.size += len(b)
        return len(b)

    def flush(self) -> None:
        pass


def test_exports_stream_a_long_session_in_bounded_memory(tmp_path):
    """Each format's peak Python allocation is the same for four hours at 1 Hz of HR, PR and
    SpO2 (43,200 readings) as for one hour: nothing grows with the session."""
    h = Harness(tmp_path)
    try:
        store = h.monitor.store
        sessions = {}
        for chair, quarters in (("c1", 16), ("c2", 4)):
            sessions[chair] = h.monitor.start_session(chair, f"MRN-{chair}", "nurse.ann")
            for start in range(0, quarters * 900, 900):
                t = T0 + start
                store.add_readings([Reading(chair, p, 70.0 + i % 7, t + i, t + i, "dev-1", i)
                                    for i in range(900) for p in ("hr", "pr", "spo2")])
            assert store.flush(timeout=30)
        h.clock.advance(4 * 3600)
        sessions = {c: h.monitor.end_session(s.id, "nurse.ann") for c, s in sessions.items()}
        h.flush()
        for fmt in ("csv", "zip", "hl7", "fhir"):
            peaks = {}
            for chair, s in sessions.items():
                sink = _Sink()
                tracemalloc.start()
                try:
                    result = export_session(store, s, fmt, sink, h.clock.now())  # type: ignore[arg-type]
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
                assert result.readings == (43_200 if chair == "c1" else 10_800)
                peaks[chair] = peak
            assert peaks["c1"] < peaks["c2"] * 1.25 + 2**19, f"{fmt}: {peaks}"
            assert peaks["c1"] < 8 * 2**20, f"{fmt}: {peaks}"
    finally:
        h.monitor.close()
