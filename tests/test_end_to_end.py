"""The whole path on real transports: simulated monitors on ptys, a real Mosquitto and MLLP
over TCP, read by the configured sources of a running bay, into the core and the store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from conftest import wait_until

from monitor.config import parse_config
from monitor.readings import QualityFlag
from simulators.broker import Mosquitto, free_port
from simulators.runner import Endpoints, Simulation
from simulators.scenario import load_scenario
from station.service import BayService

ROOT = Path(__file__).parent.parent


def start_bay(tmp_path: Path, sim: Simulation) -> BayService:
    """A running bay whose sources read ``sim``, and the simulated monitors switched on."""
    config = parse_config({
        "store": {"path": str(tmp_path / "bay.db"), "commit_interval_ms": 20},
        "chairs": [{"id": c.chair} for c in sim.scenario.chairs],
        "sources": sim.sources_config()}, "e2e.toml")
    service = BayService(config)
    service.start()
    sim.open()
    return service


def test_demo_bay_scenario_through_every_transport(tmp_path):
    scenario = load_scenario("demo-bay")
    with Mosquitto(tmp_path / "broker") as broker:
        endpoints = Endpoints(tmp_path / "serial", mqtt_port=broker.port, hl7_port=free_port())
        steps = 170
        sim = Simulation(scenario, endpoints, epoch=time.time() - steps)  # the recent past: fast
        service = start_bay(tmp_path, sim)
        monitor = service.monitor
        try:
            serial = [s for s in service.sources if s.kind == "serial"]
            wait_until(lambda: all(s.state.value == "connected" for s in service.sources),
                       what="every source connected")
            monitor.start_session("c06", "P6", "nurse")  # armed, so its unplug raises an alarm
            for t in range(steps):
                sim.step(t)
                # flow control instead of pacing: the serial chairs have taken this second in
                wait_until(lambda t=t: all(s.frames_accepted >= t + 1 for s in serial),
                           what=f"serial frames of second {t}")
            wait_until(lambda: {a.chair for a in monitor.open_alarms()} >= {"c02", "c06"},
                       what="alarms on c02 (desaturation) and c06 (unplugged)")
            codes = {(a.chair, a.code) for a in monitor.open_alarms()}
            assert ("c02", "SPO2_LOW") in codes and ("c06", "DEVICE_OFFLINE") in codes
            assert ("c04", "HR_HIGH") in codes  # tachycardia on ketamine
            assert monitor.store.flush(timeout=10)
            for chair in scenario.chairs:
                assert monitor.store.count_readings(chair.chair) > 100, chair.chair
            health = {s.name: s.health() for s in service.sources}
            assert all(h["state"] == "connected" for h in health.values())
            assert all(not h["rejected"] for h in health.values()), health
        finally:
            sim.close()
            service.stop()


def test_technical_scenario_unplugs_and_outages(tmp_path):
    scenario = load_scenario("technical")
    with Mosquitto(tmp_path / "broker") as broker:
        endpoints = Endpoints(tmp_path / "serial", mqtt_port=broker.port)
        steps = 300
        sim = Simulation(scenario, endpoints, epoch=time.time() - steps)
        service = start_bay(tmp_path, sim)
        monitor, store = service.monitor, service.monitor.store
        (serial,) = [s for s in service.sources if s.kind == "serial"]
        c01 = next(c for c in scenario.chairs if c.chair == "c01")
        try:
            wait_until(lambda: all(s.state.value == "connected" for s in service.sources),
                       what="every source connected")
            for chair in ("c01", "c02", "c03"):
                monitor.start_session(chair, f"P-{chair}", "nurse")
            emitted = 0
            reconnects = serial.reconnects  # 1 if the source started before the pty existed
            for t in range(steps):
                if c01.outage(t - 1) == "unplug" and c01.outage(t) is None:
                    sim.step(t)  # plugged back in: the port comes back by itself
                    wait_until(lambda: serial.state.value == "connected", what="serial reconnected")
                    emitted = serial.frames_accepted
                    continue
                sim.step(t)
                if c01.outage(t) is None:
                    emitted += 1
                    wait_until(lambda n=emitted: serial.frames_accepted >= n, what=f"serial second {t}")
                elif c01.outage(t) == "unplug" and t == 250:
                    wait_until(lambda: serial.state.value == "disconnected", what="serial unplugged")
            assert serial.reconnects == reconnects + 1
            # c03's readings queued through the outage all arrive, each exactly once
            def c03_seqs() -> list[int | None]:
                store.flush(1)
                return [r.seq for r in store.iter_readings("c03", 0, None) if r.parameter == "hr"]

            wait_until(lambda: len(c03_seqs()) >= steps, what="c03's queued readings")
            assert c03_seqs() == list(range(1, steps + 1))
            # c02: the Last Will raised DEVICE_OFFLINE, its return cleared it
            events = [(e.alarm.code, e.new_state.value) for e in store.alarm_events(chair="c02")]
            assert ("DEVICE_OFFLINE", "active") in events and ("DEVICE_OFFLINE", "cleared") in events
            assert not any(a.code == "DEVICE_OFFLINE" for a in monitor.open_alarms())
            # c01: the sensor-off stretch is stored with its flag, and the unplug was an alarm
            flagged = [r for r in store.iter_readings("c01", 0, None) if r.flags & QualityFlag.SENSOR_OFF]
            assert flagged and all(r.value is None for r in flagged)
            c01_events = [(e.alarm.code, e.new_state.value) for e in store.alarm_events(chair="c01")]
            assert ("DEVICE_OFFLINE", "active") in c01_events
            assert ("DEVICE_OFFLINE", "cleared") in c01_events
        finally:
            sim.close()
            service.stop()


def test_simulate_and_run_commands_work_together(tmp_path):
    scenario = tmp_path / "three.toml"
    scenario.write_text("""
name = "three"
duration_s = 3600
[[chairs]]
id = "c1"
transport = "serial"
protocol = "chairside"
[[chairs]]
id = "c2"
transport = "mqtt"
[[chairs]]
id = "c3"
transport = "hl7"
""")
    with Mosquitto(tmp_path / "broker") as broker:
        sim_args = ["--scenario", str(scenario), "--serial-dir", str(tmp_path / "serial"),
                    "--mqtt-port", str(broker.port), "--hl7-port", str(free_port())]
        printed = subprocess.run([sys.executable, "-m", "station.cli", "simulate", *sim_args,
                                  "--print-config"], capture_output=True, text=True, check=True,
                                 cwd=ROOT, timeout=60).stdout
        bay = tmp_path / "bay.toml"
        bay.write_text('[store]\npath = "bay.db"\ncommit_interval_ms = 50\n' + printed)
        assert subprocess.run([sys.executable, "-m", "station.cli", "check-config", str(bay)],
                              cwd=ROOT, timeout=60).returncode == 0
        run = subprocess.Popen([sys.executable, "-m", "station.cli", "run", "--config", str(bay)],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True)
        sim_log = (tmp_path / "simulate.log").open("w")
        sim = subprocess.Popen([sys.executable, "-m", "station.cli", "--log-level", "debug",
                                "simulate", *sim_args, "--speed", "4"], cwd=ROOT, stderr=sim_log)
        seen: set[str] = set()
        try:
            def chairs_seen() -> set[str]:
                if not (tmp_path / "bay.db").exists():
                    return set()
                try:
                    with closing(sqlite3.connect(tmp_path / "bay.db")) as conn:
                        return {c for (c,) in conn.execute("SELECT DISTINCT chair FROM readings")}
                except sqlite3.OperationalError:  # the schema is not there yet
                    return set()

            def all_seen() -> bool:
                seen.update(chairs_seen())
                return seen == {"c1", "c2", "c3"}

            try:
                wait_until(all_seen, timeout=60, what="readings from all three transports")
            except AssertionError:
                seen.add("timed out")
        finally:
            for proc in (sim, run):
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGTERM)
            sim.wait(timeout=20)
            sim_log.close()
            _, err = run.communicate(timeout=30)
        assert seen == {"c1", "c2", "c3"}, (
            f"seen {seen}\n--- run ---\n{err[-6000:]}\n--- simulate ---\n"
            f"{(tmp_path / 'simulate.log').read_text()[-3000:]}")
        assert run.returncode == 0, err
        assert "bay bay1 stopped" in err


def test_simulate_from_the_past_makes_history_at_full_speed(tmp_path):
    """``chairside simulate --from=-30m``: half an hour of a chair on ketamine, over the real
    broker into a running bay, at full speed, every reading with its own past device time
    (none refused as from the future), its alarm's onset back then."""
    scenario = load_scenario("ketamine-hypertension")  # one chair, MQTT, 1800 s
    with Mosquitto(tmp_path / "broker") as broker:
        sources = Simulation(scenario, Endpoints(tmp_path / "serial", mqtt_port=broker.port)).sources_config()
        service = BayService(parse_config({"store": {"path": str(tmp_path / "bay.db")},
                                           "chairs": [{"id": "c01"}], "sources": sources}, "e2e.toml"))
        service.start()
        monitor = service.monitor
        try:
            wait_until(lambda: all(s.state.value == "connected" for s in service.sources),
                       what="the MQTT source connected")
            begun = time.time()
            done = subprocess.run(
                [sys.executable, "-m", "station.cli", "simulate", "--scenario", "ketamine-hypertension",
                 "--mqtt-port", str(broker.port), "--serial-dir", str(tmp_path / "serial2"),
                 "--from=-30m", "--seconds", "1800"],
                cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            def heart_rates() -> list[float]:
                assert monitor.store.flush(timeout=30)
                return [r.device_time for r in monitor.store.iter_readings("c01", 0.0, None)
                        if r.parameter == "hr"]

            wait_until(lambda: len(heart_rates()) >= 1800, 120, "every reading taken in")
            times = heart_rates()
            assert len(times) == 1800
            assert begun - 1800 - 5 <= min(times) < max(times) <= begun + 5  # the past half hour
            assert not monitor.rejections.counts  # none refused (no future_time)
            raised = [e for e in monitor.store.alarm_events(chair="c01") if e.old_state is None]
            # the hypertension began back then (its onset, on device time), though the bay
            # learnt of it only now (the event's time)
            assert any(e.alarm.code == "NIBP_SYS_HIGH" and e.alarm.onset_at < begun - 600 for e in raised)
        finally:
            service.stop()
