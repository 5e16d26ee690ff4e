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


def test_an_in_process_simulation_feeds_the_core_directly(tmp_path: Path):
    """Component tests get realistic readings without a transport: the desaturation scenario
    into a real core, second by second on the test's clock, raises its alarm."""
    from monitor.clock import ManualClock
    from monitor.config import parse_config
    from monitor.core import Monitor
    from simulators.inprocess import in_process

    config = parse_config({"store": {"path": str(tmp_path / "bay.db")}, "chairs": [{"id": "c01"}]}, "t")
    monitor = Monitor(config, store=None, clock=ManualClock(T))
    scenario = load_scenario("desaturation")  # SpO2 down by 13 from 120 s, for 150 s
    sim = in_process(scenario, monitor, epoch=T)
    for t in range(200):
        sim.step(t)
        monitor.tick()
        monitor.clock.advance(1)
    emitter = sim.emitters["c01"]
    assert all(r.accepted and not r.rejected for r in emitter.results)
    assert monitor.status("c01").vitals["spo2"].value < 90
    assert [a.code for a in monitor.open_alarms()] == ["SPO2_LOW"]


def test_the_hl7_gateway_fails_over_and_sends_again_what_was_not_acknowledged(tmp_path: Path):
    """The simulated gateway with a bay's two listeners (docs/high-availability.md): the first
    refuses (the standby), the second takes the message; with neither listening the message
    waits in the backlog and goes, in order, once one listens again."""
    from conftest import Harness

    from devices.hl7_listener import Hl7Listener
    from monitor.config import Hl7Source
    from simulators.broker import free_port
    from simulators.emitters import MllpEmitter

    bay = Harness(tmp_path, chairs=2)
    bed = "BAY1^^c1"

    def listen(port: int = 0) -> Hl7Listener:
        listener = Hl7Listener(Hl7Source(kind="hl7", name="gw", host="127.0.0.1", port=port,
                                         beds={bed: "c1"}), bay.monitor)
        listener.start()
        return listener

    leader = listen()
    assert leader.port is not None
    gateway = MllpEmitter("127.0.0.1", free_port(), standby=[("127.0.0.1", leader.port)], bed=bed,
                          device="SIMGW", retry_s=0.01, retry_max_s=0.05)
    gateway.open()
    try:
        gateway.emit({"spo2": 96.0}, 0, bay.clock.now(), 1)
        assert gateway.failures == 0 and not gateway.backlog  # the refusal cost only a connect
        leader.stop()
        gateway.emit({"spo2": 95.0}, 0, bay.clock.now() + 1, 2)
        gateway.emit({"spo2": 94.0}, 0, bay.clock.now() + 2, 3)
        assert gateway.failures >= 1 and len(gateway.backlog) == 2  # kept, in order
        back = listen(leader.port)
        try:
            assert gateway.flush(20)
        finally:
            back.stop()
    finally:
        gateway.close()
    bay.flush()
    assert bay.monitor.store is not None
    assert [r.value for r in bay.monitor.store.iter_readings("c1", 0, None)] == [96, 95, 94]
    bay.monitor.close()
