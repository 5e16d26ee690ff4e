"""Simulators: deterministic patient models, scenario files, and wire formats that the
project's own parsers read back."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import pytest

from monitor.config import ConfigError
from monitor.readings import QualityFlag
from simulators.formats import serial_line, vitals_json
from simulators.patient import Effect, PatientModel
from simulators.runner import Endpoints, Simulation
from simulators.scenario import SCENARIOS, load_scenario
from station.cli import past_offset
from wire.mqtt_json import parse_vitals
from wire.registry import DIALECTS

T = 1_800_000_000.0


def test_same_seed_same_values_in_any_order():
    a, b = PatientModel(seed=5), PatientModel(seed=5)
    forward = [a.sample(t).values for t in range(100)]
    backward = [b.sample(t).values for t in reversed(range(100))][::-1]
    assert forward == backward
    assert forward != [PatientModel(seed=6).sample(t).values for t in range(100)]


def test_values_are_plausible_and_vary():
    model = PatientModel(seed=1)
    hr = [model.sample(t).values["hr"] for t in range(600)]
    spo2 = [model.sample(t).values["spo2"] for t in range(600)]
    assert 40 < min(hr) < max(hr) < 130 and max(hr) - min(hr) >= 5
    assert 90 <= min(spo2) <= max(spo2) <= 100


def test_nibp_completes_a_cuff_delay_after_each_cycle_start():
    model = PatientModel(seed=1, nibp_interval_s=300, cuff_delay_s=35)
    times = [t for t in range(0, 1000) if model.nibp(t)]
    assert times == [35, 335, 635, 935]
    bp = model.nibp(35)
    assert bp["nibp_sys"] > bp["nibp_map"] > bp["nibp_dia"]


def test_effects_shift_and_silence():
    model = PatientModel(seed=2, effects=[
        Effect(100, 100, "spo2", -15, ramp_s=10),
        Effect(300, 20, "spo2", flags=int(QualityFlag.SENSOR_OFF), no_value=True, ramp_s=0)])
    assert model.sample(150).values["spo2"] <= 86
    assert model.sample(250).values["spo2"] >= 92
    off = model.sample(305)
    assert off.values["spo2"] is None and off.flags & QualityFlag.SENSOR_OFF
    assert off.values["hr"] is not None


def test_every_shipped_scenario_loads():
    names = sorted(p.stem for p in SCENARIOS.glob("*.toml"))
    assert {"magnesium-hypotension", "ketamine-hypertension", "desaturation", "technical",
            "demo-bay"} <= set(names)
    for name in names:
        assert load_scenario(name).chairs


def test_scenarios_make_their_clinical_events():
    mag = load_scenario("magnesium-hypotension").chairs[0].model
    assert mag.nibp(35)["nibp_sys"] - mag.nibp(1235)["nibp_sys"] > 30  # before vs. during
    ket = load_scenario("ketamine-hypertension").chairs[0].model
    assert ket.sample(700).values["hr"] - ket.sample(100).values["hr"] > 30
    tech = {c.chair: c for c in load_scenario("technical").chairs}
    assert tech["c02"].outage(130) == "unplug" and tech["c02"].outage(200) is None
    assert tech["c03"].outage(250) == "broker_outage"
    assert tech["c01"].model.sample(190).values["spo2"] is None


@pytest.mark.parametrize(("text", "message"), [
    ("name = 'x'\n", "x.toml: chairs: required key is missing"),
    ("name = 'x'\n[[chairs]]\nid = 'c 1'\n", "chairs[0].id: must be 1-32 letters"),
    ("name = 'x'\n[[chairs]]\nid = 'c1'\ntransport = 'usb'\n", "chairs[0].transport: Input should be"),
    ("name = 'x'\n[[chairs]]\nid = 'c1'\nevents = [{at_s = 1, kind = 'shift', duration_s = 5}]\n",
     "a shift needs a known parameter"),
    ("name = 'x'\n[[chairs]]\nid = 'c1'\ntransport = 'serial'\n"
     "events = [{at_s = 1, kind = 'broker_outage', duration_s = 5}]\n", "broker_outage needs the mqtt"),
])
def test_bad_scenarios_name_file_and_key(tmp_path: Path, text, message):
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert message in str(info.value).replace(str(tmp_path) + "/", "")


@pytest.mark.parametrize("protocol", ["masimo", "nonin", "nellcor", "chairside"])
@pytest.mark.parametrize("flags", [0, int(QualityFlag.SENSOR_OFF)])
def test_serial_formats_parse_back(protocol, flags):
    values = {"spo2": None if flags else 96.0, "pr": None if flags else 71.0}
    line = serial_line(protocol, values, flags, T, seq=3, device="sim-c1")
    frame = DIALECTS[protocol].parse(line)
    assert frame is not None
    assert {k: frame.values.get(k) for k in values} == values
    if flags and protocol != "nonin":  # Nonin ASCII has no sensor-off flag: only dashes
        assert frame.flags & QualityFlag.SENSOR_OFF


def test_nellcor_header_lines_carry_no_reading():
    nellcor = DIALECTS["nellcor"]
    assert nellcor.header and all(nellcor.parse(line) is None for line in nellcor.header)


def test_mqtt_payload_parses_back_with_only_contract_flags():
    flags = int(QualityFlag.ARTIFACT | QualityFlag.MOTION)  # MOTION is not an MQTT flag
    values = {"hr": 80.0, "spo2": 95.0, "pr": None, "nibp_sys": 120.0, "nibp_dia": 80.0, "nibp_map": 93.0}
    frame = parse_vitals(vitals_json(values, flags, T, 9, "sim-c2"))
    assert frame.values == values and frame.flags == QualityFlag.ARTIFACT
    assert (frame.device, frame.seq, frame.time) == ("sim-c2", 9, T)


def test_history_goes_at_full_speed_then_the_present_is_paced(tmp_path: Path):
    """Steps whose device time has passed are sent at once; the first one in the future waits."""
    now = [T + 100.0]
    sim = Simulation(load_scenario("desaturation"), Endpoints(tmp_path), epoch=T, clock=lambda: now[0])
    sent: list[float] = []
    stop = threading.Event()

    class Recorder:
        def set_outage(self, _kind: object) -> None:
            pass

        def emit(self, _values: object, _flags: int, device_time: float, _seq: int) -> None:
            sent.append(device_time)
            if device_time >= now[0]:  # the present reached: this step would be paced
                stop.set()

    sim.emitters = {c: Recorder() for c in sim.emitters}  # type: ignore[misc]
    sim.run(stop, until_s=600)
    assert sent == [T + t for t in range(101)]  # the 100 s of history, then one step paced
    assert past_offset("-12h") == past_offset("12h") == -43200 and past_offset("-90m") == -5400
    assert past_offset("-600s") == past_offset("-600") == -600
    with pytest.raises(argparse.ArgumentTypeError, match="a time in the past"):
        past_offset("yesterday")
