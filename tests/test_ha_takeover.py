"""Across a takeover of the whole service (issue 16): two real ``chairside run`` of one bay
with ``[ha] enabled`` and one private PostgreSQL, devices sending sequence-numbered vitals at
a steady rate, the leader killed with SIGKILL mid-stream. The standby leads and takes the
transport over; once the devices stop, every message they sent (acknowledged, or kept for
sending again) is in the store, once.

- MQTT: a real Mosquitto between them; both servers have the same MQTT source (one client
  id, a persistent session, QoS 1), the broker keeps the session's queue while nobody is
  connected, the new leader resumes it and is redelivered what the dead one had not
  acknowledged; the core recognises what it had already stored (its (device, seq)
  restored from the database).
- HL7: each server has its own listener (two machines), which listens only while it leads;
  the simulated gateway (:class:`simulators.emitters.MllpEmitter` with a standby endpoint)
  fails over to the other's and sends again every message whose ACK did not come back.
  Nothing is lost; a message committed by the dead leader whose ACK had not left yet is
  recognised by the new leader (its receipt, stored with its readings) and not stored again.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from conftest import wait_until
from paho.mqtt.enums import CallbackAPIVersion
from store_backends import Backend
from test_ha import Server, bay_toml, role

from monitor.timefmt import rfc3339
from simulators.broker import Mosquitto, free_port
from simulators.emitters import MllpEmitter

CHAIRS = ("c1", "c2", "c3")
BAY = "neuro"


def pair_config(backend: Backend, folder: Path, sources: str) -> Path:
    """test_ha's bay (two chairs) with a third chair and ``sources`` (TOML)."""
    config = bay_toml(backend, folder)
    config.write_text(config.read_text() + '[[chairs]]\nid = "c3"\n' + sources)
    return config


def stored(backend: Backend) -> Counter[tuple[str, float]]:
    """How often each (chair, device time) is in the store: one reading per message. (The
    chair, not the device: the simulated gateway's OBX-18 is typed EUI-64, and the device
    recorded for HL7 is its EUI-64 component, the same for every chair.)"""
    rows = backend.sql("SELECT chair, device_time FROM readings", bay=BAY)
    return Counter((chair, round(t, 3)) for chair, t in rows)


class Stream:
    """The devices of ``CHAIRS``, each sending in a thread of its own, one message every
    ``interval`` s: ``send(chair, seq, t)`` returns once the message is taken (acknowledged,
    or kept by the sender to send again). Message ``n`` of a device has seq ``n`` and device
    time ``base + n`` (HL7 carries whole seconds)."""

    def __init__(self, send: Callable[[str, int, float], None], interval: float = 0.1) -> None:
        self.base = round(time.time()) - 6 * 3600  # in the core's 12 h, not in the future for minutes
        self.sent: list[tuple[str, float]] = []  # (chair, device time)
        self.failures: list[str] = []
        self._send, self._interval = send, interval
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(c,), name=f"device-{c}", daemon=True)
                         for c in CHAIRS]

    def start(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, chair: str) -> None:
        seq = 0
        try:
            while not self._stop.is_set():
                seq += 1
                t = float(self.base + seq)
                self._send(chair, seq, t)
                self.sent.append((chair, t))
                self._stop.wait(self._interval)
        except Exception as exc:  # reported by stop()
            self.failures.append(f"{chair}: {exc!r}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
            assert not thread.is_alive(), f"{thread.name} did not stop"
        assert not self.failures, self.failures


def take_over(backend: Backend, a: Server, b: Server, stream: Stream) -> None:
    """A leads, B waits; the stream runs; A is killed mid-stream; B leads and stores what
    was sent after the kill; then the stream stops."""
    wait_until(lambda: len(stored(backend)) >= 60, 30, "the leader storing the stream")
    assert a.kill() == -signal.SIGKILL
    sent_at_kill = len(stream.sent)
    wait_until(lambda: role(b.port) == "leader", 20, "the standby to lead after kill -9")
    later = set(stream.sent[sent_at_kill + 30:sent_at_kill + 60])
    wait_until(lambda: len(stream.sent) > sent_at_kill + 60 and later <= set(stored(backend)), 30,
               "the new leader storing what was sent after the kill")
    stream.stop()


def assert_stored_once(backend: Backend, stream: Stream) -> None:
    """Every message sent is stored, none that was not, none twice."""
    sent = Counter(stream.sent)
    assert len(sent) == len(stream.sent)  # each message its own (chair, time)
    wait_until(lambda: set(stored(backend)) >= set(sent), 30, "every message stored")
    counts = stored(backend)
    assert set(counts) == set(sent), f"stored but never sent: {sorted(set(counts) - set(sent))[:20]}"
    twice = {k: n for k, n in counts.items() if n > 1}
    assert not twice, f"stored more than once: {sorted(twice.items())[:20]}"


def test_mqtt_loses_and_duplicates_nothing_when_the_leader_is_killed(pg_backend: Backend,
                                                                     tmp_path: Path) -> None:
    # The test broker (simulators.broker.DEFAULT_CONFIG) keeps a persistent session and its
    # QoS 1 queue while its client is away, up to max_queued_messages 100000 (the deployment's
    # reasons: deploy/mosquitto.conf); the source asks for an MQTT 5 session that outlives the
    # takeover (session_expiry_s, 7 days by default). Both servers use the same client id.
    with Mosquitto(tmp_path / "broker") as broker:
        config = pair_config(pg_backend, tmp_path, f"""[[sources]]\nkind = "mqtt"\nname = "mqtt"
host = "127.0.0.1"\nport = {broker.port}\nbay = "{BAY}"\nclient_id = "chairside-{BAY}"
reconnect_max_s = 1\n""")
        devices = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-devices", protocol=mqtt.MQTTv311)
        devices.connect("127.0.0.1", broker.port, keepalive=10)
        devices.loop_start()

        def publish(chair: str, seq: int, t: float) -> None:
            data = json.dumps({"device": f"dev-{chair}", "seq": seq, "hr": 60 + seq % 40, "ts": rfc3339(t)})
            info = devices.publish(f"chairside/{BAY}/{chair}/vitals", data, qos=1)
            info.wait_for_publish(20)
            assert info.is_published(), f"the broker did not take {chair} seq {seq}"

        a = Server(config, free_port(), tmp_path / "a.log")
        b: Server | None = None
        try:
            wait_until(lambda: role(a.port) == "leader", 30, "the first server to lead")
            b = Server(config, free_port(), tmp_path / "b.log")
            wait_until(lambda: role(b.port) == "standby", 30, "the second to wait")
            stream = Stream(publish).start()
            take_over(pg_backend, a, b, stream)
            assert_stored_once(pg_backend, stream)
            seqs = Counter(pg_backend.sql("SELECT device, seq FROM readings", bay=BAY))
            assert set(seqs.values()) == {1}  # by (device, seq) too
        finally:
            devices.disconnect()
            devices.loop_stop()
            a.kill()
            if b is not None:
                b.kill()


def test_hl7_gateway_fails_over_and_loses_nothing(pg_backend: Backend,
                                                                    tmp_path: Path) -> None:
    ports = {"a": free_port(), "b": free_port()}
    beds = ", ".join(f'"BAY^^{c}" = "{c}"' for c in CHAIRS)
    configs = {}
    for name, port in ports.items():  # the same bay; each machine its own listener
        folder = tmp_path / name
        folder.mkdir()
        configs[name] = pair_config(pg_backend, folder, f"""[[sources]]\nkind = "hl7"\nname = "hl7"
host = "127.0.0.1"\nport = {port}\nbeds = {{ {beds} }}\n""")
    gateways = {c: MllpEmitter("127.0.0.1", ports["a"], standby=[("127.0.0.1", ports["b"])], bed=f"BAY^^{c}",
                               device=f"dev-{c}", retry_s=0.05, retry_max_s=0.5) for c in CHAIRS}

    def send(chair: str, seq: int, t: float) -> None:
        gateways[chair].emit({"hr": 60.0 + seq % 40}, 0, t, seq)

    a = Server(configs["a"], free_port(), tmp_path / "a.log")
    b: Server | None = None
    try:
        wait_until(lambda: role(a.port) == "leader", 30, "the first server to lead")
        b = Server(configs["b"], free_port(), tmp_path / "b.log")
        wait_until(lambda: role(b.port) == "standby", 30, "the second to wait")
        for gateway in gateways.values():
            gateway.open()
        stream = Stream(send).start()
        take_over(pg_backend, a, b, stream)
        for chair, gateway in gateways.items():
            assert gateway.flush(30), f"{chair}: {len(gateway.backlog)} message(s) never acknowledged"
            assert gateway.refused == gateway.dropped == 0
        assert any(g.failures for g in gateways.values())  # messages were sent again
        # a message whose readings the killed leader had committed but whose AA had not left
        # yet is sent again: recognised by its receipt, answered AA, not stored again
        assert_stored_once(pg_backend, stream)
    finally:
        for gateway in gateways.values():
            gateway.close()
        a.kill()
        if b is not None:
            b.kill()
