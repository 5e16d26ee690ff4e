"""MQTT benchmark: messages through a private Mosquitto into a real core and SQLite store,
and a restart with redelivery that must store no message twice.

Two runs in one process on one machine (so the ratio between them holds on a noisy one):

- ``steady``: devices publish ``--messages`` QoS 1 vitals; time from the first publish until
  every message is committed and acknowledged. Throughput in messages per second.
- ``restart``: the same, but the first monitor dies in the crash window: the messages it
  took (as many as the broker lets be in flight unacknowledged: ``max_inflight_messages``
  1000, as deploy/mosquitto.conf sets it) are committed and no PUBACK goes out. A new
  monitor on the same file and broker session gets them again, and the rest. It must
  recognise every redelivery from the store and store none twice: ``duplicates_stored`` is
  the count of (device, seq, parameter) rows beyond the first (must be 0), next to the
  restarted monitor's throughput and ``redelivered_recognised`` (must equal ``in_crash_window``).

``restart_vs_steady`` is the ratio of the two throughputs.

    python -m bench.mqtt [--messages 3000] [--devices 8]   prints JSON, writes bench/results/mqtt.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.mqtt_source import MqttSource
from monitor.clock import SystemClock
from monitor.config import MqttSource as MqttConfig
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.seam import SourceState
from monitor.store import SqliteStore
from monitor.timefmt import rfc3339
from simulators.broker import Mosquitto

RESULTS = Path(__file__).parent / "results"
INFLIGHT = 1000  # the broker's max_inflight_messages, as in deploy/mosquitto.conf


class HeldAcks:
    """The core, but the acknowledgements never go out: a monitor killed right after its
    commits (the crash window)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.clock = monitor.clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.monitor, name)

    def on_durable(self, ticket: int | None, callback: Callable[[], None]) -> None:
        pass


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench.mqtt: timed out waiting for {what}")
        time.sleep(0.005)


def open_monitor(folder: Path, devices: int) -> Monitor:
    config = parse_config({"store": {"path": str(folder / "bay.db")}, "auth": {"enabled": False},
                           "chairs": [{"id": f"c{i:02d}"} for i in range(1, devices + 1)]}, "bench")
    monitor = Monitor(config, store=SqliteStore(config.store.path), clock=SystemClock())
    monitor.start()
    return monitor


def source(monitor: Any, port: int) -> MqttSource:
    config = MqttConfig.model_validate({"kind": "mqtt", "name": "broker1", "port": port,
                                        "client_id": "chairside-bench", "reconnect_max_s": 1})
    src = MqttSource(config, monitor)
    src.start()
    wait(lambda: src.state is SourceState.CONNECTED, 20, "the source to connect")
    return src


def publish(port: int, messages: int, devices: int) -> float:
    """Publish with QoS 1, all in flight at once; returns when the first went out."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-devices", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait(client.is_connected, 10, "the publisher")
    t0 = time.monotonic()
    now = time.time()
    infos = []
    for i in range(messages):
        d = i % devices
        seq = i // devices + 1
        body = {"device": f"ox-{d}", "seq": seq, "ts": rfc3339(now - 1 + seq / 1000),
                "hr": 60 + seq % 40, "spo2": 95 + seq % 5}
        infos.append(client.publish(f"chairside/bay1/c{d + 1:02d}/vitals", json.dumps(body), qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    return t0


def duplicates(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT device, seq, parameter FROM readings)) "
            "FROM readings").fetchone()
    return int(rows - distinct)


def run(messages: int, devices: int, restart: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(
            Path(tmp) / "broker", extra=f"max_inflight_messages {INFLIGHT}") as broker:
        folder = Path(tmp)
        monitor = open_monitor(folder, devices)
        first = source(HeldAcks(monitor) if restart else monitor, broker.port)
        t0 = publish(broker.port, messages, devices)
        taken = min(messages, INFLIGHT) if restart else messages
        wait(lambda: first.messages >= taken, 120, "the messages taken")
        assert monitor.store is not None
        monitor.store.flush(30)
        out: dict[str, Any] = {"messages": messages}
        if not restart:
            wait(lambda: first.health()["acks_sent"] >= messages, 60, "every acknowledgement")
            elapsed = time.monotonic() - t0
            first.stop()
            monitor.close()
            return out | {"seconds": round(elapsed, 3), "messages_per_s": round(messages / elapsed)}
        held = first.messages
        first.stop(timeout=0.5)  # never acknowledged: the broker keeps every one
        monitor.close()
        monitor = open_monitor(folder, devices)  # the restarted monitor, same file
        t1 = time.monotonic()
        second = source(monitor, broker.port)
        wait(lambda: second.messages >= messages and second.health()["acks_sent"] >= messages, 120,
             "every message, redelivered or queued, taken and acknowledged")
        elapsed = time.monotonic() - t1
        second.stop()
        monitor.close()
        return out | {"seconds": round(elapsed, 3), "messages_per_s": round(messages / elapsed),
                      "in_crash_window": held, "redelivered_recognised": second.duplicates,
                      "duplicates_stored": duplicates(folder / "bay.db")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--devices", type=int, default=8)
    args = parser.parse_args()
    steady = run(args.messages, args.devices, restart=False)
    restart = run(args.messages, args.devices, restart=True)
    result = {
        "benchmark": "mqtt", "devices": args.devices,
        "machine": {"python": platform.python_version()},
        "steady": steady, "restart": restart,
        "restart_vs_steady": round(restart["messages_per_s"] / steady["messages_per_s"], 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mqtt.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if restart["duplicates_stored"] or restart["redelivered_recognised"] != restart["in_crash_window"]:
        raise SystemExit(f"bench.mqtt: {restart['duplicates_stored']} readings stored twice")


if __name__ == "__main__":
    main()
