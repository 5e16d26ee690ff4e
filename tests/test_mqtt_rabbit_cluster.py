"""The MQTT source on a clustered RabbitMQ (3.10, its MQTT plugin): the comparison with the
NATS cluster of tests/test_mqtt_cluster.py. A real three-node RabbitMQ cluster (the session's
queue a quorum queue on all three nodes: tests/rabbitmq_cluster.py), a real core on a real
SQLite file, paho publishers as the devices; MQTT 3.1.1, ``clean_session = false``.

The kill test is test_mqtt_cluster.py's: kill -9 the node the source is connected to while
the devices publish through another node, then every published message must be stored
exactly once. It also measures the failover (printed, ``-s`` shows it; kept in the test's
``user_properties``): from the kill until the source has its session back on a surviving node,
and until the first message published after the kill is in the store. It never asserts a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, scaled, wait_until
from rabbitmq_cluster import RABBITMQ_BIN, RabbitCluster, RabbitNode
from test_mqtt_cluster import Devices, stored_seqs

from devices.mqtt_source import MqttSource
from monitor.config import MqttSource as MqttConfig
from monitor.seam import SourceState

pytestmark = pytest.mark.skipif(not (RABBITMQ_BIN / "rabbitmq-server").exists(),
                                reason="Debian's rabbitmq-server is not installed")

#: Deadlines of the waits after the kill: far above what is measured, so that the test
#: reports a slow failover in its numbers instead of failing on it.
LEAVES_S = 10.0
RESUMED_S = 60.0


@pytest.fixture
def rabbit(tmp_path: Path) -> Iterator[RabbitCluster]:
    cluster = RabbitCluster(tmp_path / "rabbit")
    try:
        yield cluster.start(timeout=scaled(120))
    finally:
        cluster.stop()


@pytest.fixture
def live(harness: Harness) -> Harness:
    harness.clock.set(round(time.time(), 3))  # the core refuses times far from its clock
    return harness


@pytest.fixture
def make_source(rabbit: RabbitCluster, live: Harness) -> Iterator[Callable[..., MqttSource]]:
    made: list[MqttSource] = []

    def make(**cfg: Any) -> MqttSource:
        config = MqttConfig.model_validate({
            "kind": "mqtt", "name": "cluster", "brokers": rabbit.endpoints,
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


def node_of(rabbit: RabbitCluster, source: MqttSource) -> RabbitNode:
    return rabbit.node_at(source.health()["broker"]["port"])


def test_killing_the_rabbitmq_node_the_monitor_is_on_loses_and_duplicates_nothing(
        rabbit, live, make_source, record_property):
    source = make_source()
    victim = node_of(rabbit, source)
    through = next(n for n in rabbit.nodes if n is not victim)
    devices = Devices(through, live.clock.now() - 120)  # type: ignore[arg-type]  # duck: mqtt_port
    try:
        devices.run()
        wait_until(lambda: len(stored_seqs(live)) >= 60, what="the stream flowing into the store")
        queues = rabbit.queues(through)
        session_queue = next(line.split("\t") for line in queues.splitlines()
                             if line.startswith("mqtt-subscription-chairside-testqos1\t"))
        assert session_queue[1] == "quorum", queues  # the session's queue: a quorum queue
        assert all(n.nodename in session_queue[4] for n in rabbit.nodes), queues  # on all three
        leader = session_queue[3]

        killed = time.monotonic()
        victim.kill()  # kill -9 mid-stream
        killed_at = len(devices.published)
        wait_until(lambda: source.endpoint != victim.endpoint, timeout=LEAVES_S,
                   what=f"the source trying a surviving node after {victim.name}")
        wait_until(lambda: source.state is SourceState.CONNECTED and source.broker_connected
                   and source.endpoint != victim.endpoint, timeout=RESUMED_S,
                   what=f"the source's session resumed on a surviving node after {victim.name}")
        resumed_s = time.monotonic() - killed
        health = source.health()["broker"]
        assert health["failovers"] == 1 and health["session_present"] is True
        assert health["endpoint"] in {n.endpoint for n in rabbit.nodes if n is not victim}

        def flowing() -> bool:
            after = devices.published[killed_at:]
            return bool(after) and any(k in stored_seqs(live) for k in after[:50])

        wait_until(flowing, timeout=RESUMED_S, what="a message published after the kill stored")
        flowing_s = time.monotonic() - killed
        wait_until(lambda: len(devices.published) >= killed_at + 60,
                   what="more messages published through the surviving node")
        devices.stop()
    finally:
        devices.close()

    published = set(devices.published)
    assert len(published) == len(devices.published)  # each (device, seq) published once
    wait_until(lambda: set(stored_seqs(live)) >= published, timeout=60,
               what="every published message in the store")
    live.flush()
    stored = stored_seqs(live)
    missing = sorted(published - set(stored))
    twice = sorted(k for k, n in stored.items() if n > 1)
    record_property("failover_resumed_s", round(resumed_s, 2))
    record_property("failover_flowing_s", round(flowing_s, 2))
    record_property("queue_leader_killed", leader == victim.nodename)
    print(f"\nRabbitMQ failover after kill -9 of {victim.name} (the session queue's leader: "
          f"{leader}): session resumed on "
          f"{health['endpoint']} after {resumed_s:.2f} s, messages flowing after {flowing_s:.2f} s; "
          f"{len(published)} published, {len(missing)} lost, {len(twice)} stored twice, "
          f"{source.duplicates} duplicates dropped by the source")
    assert not missing, f"lost: {missing[:20]}"
    assert not twice, f"stored more than once: {twice[:20]}"
    assert set(stored) == published
    assert source.health()["frames_accepted"] == len(published)


def test_a_3_1_1_persistent_session_keeps_the_queue_on_rabbitmq_while_the_monitor_is_away(
        rabbit, live, make_source):
    source = make_source()
    devices = Devices(next(n for n in rabbit.nodes if n is not node_of(rabbit, source)),  # type: ignore[arg-type]
                      live.clock.now() - 60)
    try:
        devices.publish_one()
        wait_until(lambda: len(stored_seqs(live)) == 1, what="the first message stored")
        source.stop()
        for _ in range(9):  # nobody listening: the cluster queues them
            devices.publish_one()
        source.start()
        wait_until(lambda: set(stored_seqs(live)) == set(devices.published),
                   what="the queued messages delivered")
    finally:
        devices.close()
    live.flush()
    assert all(n == 1 for n in stored_seqs(live).values())
    assert source.health()["broker"]["session_present"] is True and source.duplicates == 0
