"""``chairside decode``: device captures (tests/samples/captures) through the real command, as
a subprocess, JSON lines checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from samples import hl7_samples as H
from samples import serial_samples as S

from devices.decode import decode

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = Path(__file__).parent / "samples" / "captures"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "station.cli", "decode", *args], input=stdin,
                          capture_output=True, cwd=ROOT, env=env, timeout=120, check=False)


def records(result: subprocess.CompletedProcess[bytes]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_masimo_capture_gives_readings_and_rejected_lines_with_reasons():
    result = run("--protocol", "masimo", str(CAPTURES / "masimo.txt"))
    assert result.returncode == 0, result.stderr
    out = records(result)
    first = out[0]
    assert first == {"line": 1, "parameter": "spo2", "value": 97.0, "unit": "%",
                     "device_time": "11/23/26 19:40:01", "flags": [], "device": "masimo-0000071234"}
    search = [r for r in out if r.get("line") == 2]
    assert [r["parameter"] for r in search] == ["spo2", "pr"]
    assert all(r["flags"] == ["PULSE_SEARCH", "INTERFERENCE"] for r in search)
    rejected = [(r["line"], r["reason"]) for r in out if r.get("rejected")]
    assert rejected == [(3, "bad_value"), (5, "malformed")]
    assert all(r["detail"] for r in out if r.get("rejected"))
    no_sensor = [r for r in out if r.get("line") == 4]
    assert [r["value"] for r in no_sensor] == [None, None] and no_sensor[0]["flags"] == ["NO_SENSOR"]
    assert b"6 readings" in result.stderr and b"2 rejected" in result.stderr


@pytest.mark.parametrize(("protocol", "capture", "rejected"), [
    ("nonin", "nonin.txt", [(3, "malformed")]),
    ("nellcor", "nellcor.txt", [(5, "unknown_status")]),
    ("chairside-line", "chairside-line.txt", [(3, "checksum")]),
    ("chairside", "chairside-line.txt", [(3, "checksum")]),
    ("mqtt-json", "mqtt-json.jsonl", [(2, "bad_value"), (4, "bad_json")]),
])
def test_each_serial_and_mqtt_capture_names_its_rejected_lines(protocol, capture, rejected):
    result = run("--protocol", protocol, str(CAPTURES / capture))
    assert result.returncode == 0, result.stderr
    out = records(result)
    assert [(r["line"], r["reason"]) for r in out if r.get("rejected")] == rejected
    readings = [r for r in out if "parameter" in r]
    fields = {"parameter", "value", "unit", "device_time", "flags"}
    assert readings and all(fields <= set(r) for r in readings)


def test_nellcor_header_lines_are_taken_silently_and_rows_keep_their_line_numbers():
    out = records(run("--protocol", "nellcor", str(CAPTURES / "nellcor.txt")))
    assert {r["line"] for r in out} == {3, 4, 5, 6}  # lines 1-2: header and column line
    assert next(r["flags"] for r in out if r["line"] == 4) == ["PULSE_SEARCH", "MOTION"]


def test_chairside_and_mqtt_times_are_rfc3339_and_a_flags_only_payload_is_a_status_record():
    nibp = [r for r in records(run("--protocol", "chairside-line", str(CAPTURES / "chairside-line.txt")))
            if r["line"] == 2]
    assert {r["parameter"]: r["value"] for r in nibp} == {"nibp_sys": 118.0, "nibp_dia": 76.0,
                                                          "nibp_map": 90.0}
    assert {r["device_time"] for r in nibp} == {"2026-11-23T19:40:01.250Z"}
    assert {(r["device"], r["seq"]) for r in nibp} == {("nibp-bay2-04", 77)}
    status = [r for r in records(run("--protocol", "mqtt-json", str(CAPTURES / "mqtt-json.jsonl")))
              if r["line"] == 3]
    assert status == [{"line": 3, "flags": ["LOW_BATTERY"], "device_time": "2026-11-23T19:40:03.250Z",
                       "device": "rad97-0012", "seq": 1844}]


@pytest.mark.parametrize(("capture", "refused"), [("hl7-mllp.bin", ("ADT000123", "unsupported_message")),
                                                 ("hl7-blank-lines.txt", ("ALM0001", "unsupported_message"))])
def test_hl7_mllp_framed_and_blank_line_separated(capture, refused):
    result = run("--protocol", "hl7", str(CAPTURES / capture))
    assert result.returncode == 0, result.stderr
    out = records(result)
    assert [(r["message"], r["control_id"], r["reason"]) for r in out if r.get("rejected")] == [(2, *refused)]
    by_message = {n: {r["parameter"]: (r["value"], r["device_time"]) for r in out
                      if r["message"] == n and "parameter" in r} for n in (1, 3)}
    nk = {k: v for k, (v, _) in by_message[1].items()}
    assert nk == {k: v for k, (v, _) in H.NIHON_KOHDEN_EXPECTED.items()}
    philips = {k: v for k, (v, _) in by_message[3].items()}
    assert philips == {k: v for k, (v, _) in H.PHILIPS_EXPECTED.items()}
    assert by_message[3]["nibp_sys"][1] == "2027-01-15T07:56:12.000Z"  # OBX-14 with its -0500 offset


def test_stdin_and_the_same_records_as_the_file():
    data = (CAPTURES / "nonin.txt").read_bytes()
    from_stdin = run("--protocol", "nonin", "-", stdin=data)
    assert from_stdin.returncode == 0
    assert records(from_stdin) == records(run("--protocol", "nonin", str(CAPTURES / "nonin.txt")))


def test_a_capture_cut_mid_line_and_lines_too_long_or_not_utf8():
    data = (S.NONIN_7500.encode() + b"\r\n" + b"\xff\xfe SPO2=1 HR=2\r\n" + b"x" * 600 + b"\r\n\r\n"
            + S.NONIN_NO_DATA.encode())  # no terminator: the capture ended there
    out = records(run("--protocol", "nonin", "-", stdin=data))
    assert [(r["line"], r["reason"]) for r in out if r.get("rejected")] == [(2, "not_utf8"), (3, "too_long")]
    assert [r["value"] for r in out if r["line"] == 5] == [None, None]


def test_an_implausible_value_is_shown_as_the_core_would_reject_it():
    line = "$VT,seq=1,hr=400,spo2=97*"
    body = line[1:-1]
    from wire.serial.chairside_line import chairside_checksum

    out = records(run("--protocol", "chairside", "-", stdin=f"{line}{chairside_checksum(body)}\r\n".encode()))
    hr = next(r for r in out if r["parameter"] == "hr")
    assert hr["rejected"] is True and hr["reason"] == "implausible" and "20-300" in hr["detail"]
    assert "rejected" not in next(r for r in out if r["parameter"] == "spo2")


def test_bad_protocol_and_unreadable_file_exit_2(tmp_path):
    bad = run("--protocol", "philips-vsc", str(CAPTURES / "nonin.txt"))
    assert bad.returncode == 2 and b"invalid choice" in bad.stderr and b"masimo" in bad.stderr
    missing = run("--protocol", "nonin", str(tmp_path / "nothing.txt"))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr and b"nothing.txt" in missing.stderr
    assert missing.stdout == b""
    folder = run("--protocol", "hl7", str(tmp_path))
    assert folder.returncode == 2 and b"cannot read" in folder.stderr
    assert run("--protocol", "nonin").returncode == 2  # no FILE


def test_hl7_mllp_garbage_and_a_cut_frame_are_rejected_not_fatal():
    data = b"noise" + b"\x0b" + H.NIHON_KOHDEN.encode() + b"\x1c\r" + b"\x0bMSH|^~\\&|cut"
    out = list(decode("hl7", data))
    reasons = [r["reason"] for r in out if r.get("rejected")]
    assert reasons == ["mllp_garbage", "mllp_truncated"]
    assert {r["parameter"] for r in out if "parameter" in r} == set(H.NIHON_KOHDEN_EXPECTED)
