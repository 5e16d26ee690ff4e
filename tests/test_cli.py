"""The command line: export, demo, help, and bad input as exit status 2 with a reason."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import Harness, wait_until

from monitor.exports.csv_export import CSV_COLUMNS
from monitor.readings import QualityFlag
from station.cli import main


@pytest.fixture
def exported_session(tmp_path):
    h = Harness(tmp_path)
    s = h.monitor.start_session("c1", "MRN-7", "nurse.ann", protocol="magnesium")
    h.feed("spo2", 97, seconds=3, seq=1)
    h.feed("spo2", None, seconds=1, flags=QualityFlag.SENSOR_OFF | QualityFlag.ARTIFACT)
    h.feed("nibp_sys", 121, seconds=1, device="cuff-1")
    h.feed("hr", 70, seconds=1, chair="c2")  # another chair: not in this session
    h.monitor.end_session(s.id, "nurse.ann")
    h.monitor.close()
    config = tmp_path / "bay.toml"
    config.write_text(f'[store]\npath = "{h.config.store.path}"\n'
                      '[[chairs]]\nid = "c1"\n[[chairs]]\nid = "c2"\n')
    return config, s


def test_export_csv_has_the_contract_columns_and_one_row_per_reading(exported_session, tmp_path):
    config, session = exported_session
    out = tmp_path / "out.csv"
    assert main(["export", "--config", str(config), "--session", session.id, "--format", "csv",
                 "--out", str(out)]) == 0
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS == ("time_utc", "chair", "session_id", "parameter", "value",
                                             "unit", "device", "flags")
    body = rows[1:]
    assert len(body) == 5
    assert body[0] == ["2027-01-15T08:00:00.000Z", "c1", session.id, "spo2", "97", "%", "dev-1", ""]
    assert body[3][3:] == ["spo2", "", "%", "dev-1", "SENSOR_OFF|ARTIFACT"]
    assert body[4][3:] == ["nibp_sys", "121", "mmHg", "cuff-1", ""]


def test_export_refuses_to_overwrite_and_unknown_sessions(exported_session, tmp_path, capsys):
    config, session = exported_session
    out = tmp_path / "out.csv"
    out.write_text("keep me")
    args = ["export", "--config", str(config), "--session", session.id, "--out", str(out)]
    assert main(args) == 2
    assert "exists; use --force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main([*args, "--force"]) == 0 and out.read_text().startswith("time_utc,")
    assert main(["export", "--config", str(config), "--session", "nope", "--out", "-"]) == 2
    assert "no session with id 'nope'" in capsys.readouterr().err


def test_every_command_has_help():
    for command in ("run", "demo", "check-config", "export"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0


def test_headless_demo_runs_and_prints_the_bay():
    proc = subprocess.run(
        [sys.executable, "-m", "station.cli", "demo", "--headless", "--chairs", "3", "--seconds", "3"],
        capture_output=True, text=True, timeout=90, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert "Chairside demo bay, t+3s  (not a medical device)" in proc.stdout
    last = proc.stdout.split("t+3s")[-1]
    assert all(f"c0{i}  online" in last for i in (1, 2, 3)), proc.stdout[-2000:]
    # a healthy demo says nothing alarming: the serial lines exist before the bay opens them
    assert " WARNING " not in proc.stderr and " ERROR " not in proc.stderr, proc.stderr[-3000:]


def test_demo_serves_the_api_within_30_seconds():
    from simulators.broker import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "station.cli", "demo", "--port", str(port)],
                            cwd=Path(__file__).parent.parent, stderr=subprocess.PIPE, text=True)
    try:
        def chairs() -> list[dict[str, object]]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/chairs", timeout=2) as r:
                    return json.load(r)["chairs"]
            except OSError:
                return []

        wait_until(lambda: len(chairs()) == 8, timeout=30, what="the demo's API")
        wait_until(lambda: all(c["connection"] == "online" for c in chairs()), timeout=30,
                   what="every demo chair online")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"Chairside" in page.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
