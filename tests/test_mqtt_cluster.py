"""The MQTT source on a clustered broker (docs/mqtt.md#clustered-brokers): a real three-node
NATS cluster (JetStream, MQTT listener, sessions and queues replicated on all three nodes:
tests/nats_cluster.py), a real core on a real SQLite file, paho publishers as the devices.

NATS speaks MQTT 3.1.1 only, so these tests are also the proof that a 3.1.1 persistent
session (``clean_session = false``, no session expiry) keeps what was queued for the monitor.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import Harness, scaled, wait_until
from nats_cluster import NatsCluster, NatsNode, free_ports
from paho.mqtt.enums import CallbackAPIVersion
from rabbitmq_cluster import RabbitCluster, RabbitNode

from devices.mqtt_source import MqttSource
from monitor.config import MqttSource as MqttConfig
from monitor.seam import SourceState
from monitor.timefmt import rfc3339

CHAIRS = ("c1", "c2", "c3")
VITALS = "chairside/bay1/{}/vitals"
#: The source leaves a dead node for the next at once (1 s): within the issue's 10 s.
LEAVES_S = 10.0
#: Whether the next node takes the session at once is NATS's business: when the killed node
#: led the Raft groups of the session's replicated streams and consumers, the survivors elect
#: new leaders after their election timeout (4-9 s in nats-server 2.9, not configurable),
#: and an MQTT CONNECT that comes before is held for NATS's JetStream request timeout (4 s)
#: and refused; the source then tries the next node 1 s later. Seen here: 1 s (the leaders
#: were elsewhere), about 6 s, at worst 13 s; this deadline covers a 9 s election, one held
#: CONNECT and the retries (docs/mqtt.md#clustered-brokers).
RESUMED_S = 20.0


@pytest.fixture(params=["nats", "rabbitmq"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NatsCluster | RabbitCluster]:
    """Three nodes of NATS (JetStream, its MQTT listener) or of RabbitMQ (its MQTT plugin,
    sessions' queues as quorum queues): the two clustered brokers docs/mqtt.md says work."""
    if request.param == "nats":
        brokers: NatsCluster | RabbitCluster = NatsCluster(tmp_path / "nats")
    else:
        brokers = RabbitCluster(tmp_path / "rabbit")
    try:
        yield brokers.start(timeout=scaled(30 if request.param == "nats" else 120))
    finally:
        brokers.stop()


@pytest.fixture
def live(harness: Harness) -> Harness:
    harness.clock.set(round(time.time(), 3))  # the core refuses times far from its clock
    return harness


@pytest.fixture
def make_source(cluster: NatsCluster | RabbitCluster, live: Harness) -> Iterator[Callable[..., MqttSource]]:
    made: list[MqttSource] = []

    def make(brokers: list[str] | None = None, **cfg: Any) -> MqttSource:
        config = MqttConfig.model_validate({
            "kind": "mqtt", "name": "cluster", "brokers": brokers or cluster.endpoints,
            "protocol": "3.1.1", "client_id": "chairside-test", "reconnect_max_s": 2,
            "keepalive_s": 5} | cfg)
        source = MqttSource(config, live.monitor)
        made.append(source)
        source.start()
        wait_until(lambda: source.state is SourceState.CONNECTED, what="source connected")
        return source

    yield make
    for source in made:
        source.stop()


class Devices:
    """The bedside devices of ``CHAIRS``, publishing through one node: each message a new seq
    of its device, QoS 1, counted as published once the broker has acknowledged it."""

    def __init__(self, node: NatsNode | RabbitNode, base_time: float) -> None:
        self.base_time = base_time
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-devices",
                                  protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", node.mqtt_port, keepalive=10)
        self.client.loop_start()
        wait_until(self.client.is_connected, what="publisher connected")
        self.published: list[tuple[str, int]] = []  # (device, seq), acknowledged by the broker
        self.failure: str | None = None
        self._next = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_one(self) -> None:
        seq, chair = divmod(self._next, len(CHAIRS))
        chair_id = CHAIRS[chair]
        device = f"ox-{chair_id}"
        data = json.dumps({"device": device, "seq": seq, "hr": 60 + seq % 40,
                           "ts": rfc3339(self.base_time + self._next * 0.01)})
        info = self.client.publish(VITALS.format(chair_id), data, qos=1)
        info.wait_for_publish(scaled(20))
        if not info.is_published():
            raise AssertionError(f"the broker did not acknowledge {device} seq {seq}")
        self._next += 1
        self.published.append((device, seq))

    def run(self, interval: float = 0.01) -> None:
        """Publish in the background, one message every ``interval`` (the devices' rate), until
        :meth:`stop`."""
        def loop() -> None:
            try:
                while not self._stop.is_set():
                    self.publish_one()
                    self._stop.wait(interval)
            except Exception as exc:  # reported by stop()
                self.failure = repr(exc)

        self._thread = threading.Thread(target=loop, name="devices", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(scaled(30))
            assert not self._thread.is_alive(), "the publisher did not stop"
        assert self.failure is None, self.failure

    def close(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()


def stored_seqs(harness: Harness) -> Counter[tuple[str, int]]:
    """How often each (device, seq) is in the store (one reading per message: hr only)."""
    store = harness.monitor.store
    assert store is not None
    return Counter((r.device, r.seq) for chair in CHAIRS for r in store.iter_readings(chair, 0, None))


def node_of(cluster: NatsCluster | RabbitCluster, source: MqttSource) -> NatsNode | RabbitNode:
    return cluster.node_at(source.health()["broker"]["port"])


def test_killing_the_node_the_monitor_is_on_loses_and_duplicates_nothing(cluster, live, make_source):
    source = make_source()
    victim = node_of(cluster, source)
    assert source.health()["broker"]["endpoint"] == victim.endpoint
    through = next(n for n in cluster.nodes if n is not victim)
    devices = Devices(through, live.clock.now() - 120)
    try:
        devices.run()
        wait_until(lambda: len(stored_seqs(live)) >= 60, what="the stream flowing into the store")
        if isinstance(cluster, RabbitCluster):  # the session's queue: a quorum queue on all three
            queues = cluster.queues(through)
            row = next(line.split("\t") for line in queues.splitlines()
                       if line.startswith("mqtt-subscription-chairside-testqos1\t"))
            assert row[1] == "quorum" and all(n.nodename in row[4] for n in cluster.nodes), queues

        victim.kill()  # kill -9 mid-stream
        killed_at = len(devices.published)
        wait_until(lambda: source.endpoint != victim.endpoint, timeout=LEAVES_S,
                   what=f"the source trying a surviving node after {victim.name}")
        wait_until(lambda: source.state is SourceState.CONNECTED and source.broker_connected
                   and source.endpoint != victim.endpoint, timeout=RESUMED_S,
                   what=f"the source's session resumed on a surviving node after {victim.name}")
        health = source.health()["broker"]
        assert health["failovers"] == 1 and health["session_present"] is True
        assert health["endpoint"] in {n.endpoint for n in cluster.nodes if n is not victim}

        wait_until(lambda: len(devices.published) >= killed_at + 60,
                   what="more messages published through the surviving node")
        devices.stop()
    finally:
        devices.close()

    published = Counter(devices.published)
    assert len(published) == len(devices.published)  # each (device, seq) published once
    wait_until(lambda: set(stored_seqs(live)) >= set(published), timeout=60,
               what="every published message in the store")
    live.flush()
    stored = stored_seqs(live)
    missing = sorted(set(published) - set(stored))
    twice = sorted(k for k, n in stored.items() if n > 1)
    assert not missing, f"lost: {missing[:20]}"
    assert not twice, f"stored more than once: {twice[:20]}"
    assert set(stored) == set(published)
    assert source.health()["frames_accepted"] == len(published)


def test_a_3_1_1_persistent_session_keeps_the_queue_while_the_monitor_is_away(
        cluster, live, make_source):
    source = make_source()
    devices = Devices(next(n for n in cluster.nodes if n is not node_of(cluster, source)),
                      live.clock.now() - 60)
    try:
        devices.publish_one()
        wait_until(lambda: len(stored_seqs(live)) == 1, what="the first message stored")
        source.stop()
        for _ in range(3 * len(CHAIRS)):  # nobody listening: the cluster queues them
            devices.publish_one()
        source.start()  # the same client id and session, on whichever node answers first
        wait_until(lambda: set(stored_seqs(live)) == set(devices.published),
                   what="the queued messages delivered")
    finally:
        devices.close()
    live.flush()
    assert all(n == 1 for n in stored_seqs(live).values())
    assert source.health()["broker"]["session_present"] is True and source.duplicates == 0


def test_an_unreachable_first_endpoint_is_passed_over(cluster, live, make_source):
    (nobody,) = free_ports(1)  # nothing listens there
    source = make_source(brokers=[f"127.0.0.1:{nobody}", *cluster.endpoints])
    health = source.health()["broker"]
    assert health["endpoint"] == cluster.endpoints[0] and health["failovers"] == 0
    assert health["endpoints"] == [f"127.0.0.1:{nobody}", *cluster.endpoints]
