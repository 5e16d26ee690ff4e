"""A three-node NATS cluster with JetStream and its MQTT listener, for the clustered-broker
tests (tests/test_mqtt_cluster.py): Debian's ``nats-server``, three processes on loopback.

Each node has its own client, cluster-route, MQTT and monitoring ports (free ones from the
OS), its own JetStream store folder and log under the test's tmp folder, and routes to the
other two. The MQTT listener keeps its sessions and the queued QoS 1 messages in JetStream
streams replicated on all three nodes (``stream_replicas``, ``consumer_replicas``: 3), so a
session survives the node its client was connected to: kill -9 that node, and the client
reconnecting with the same client id to a surviving node finds its session and its queue.

NATS speaks MQTT 3.1.1 only (no MQTT 5): clients connect with ``clean_session = false``.

    with NatsCluster(tmp_path) as cluster:
        host, port = cluster.nodes[0].mqtt_address
        cluster.nodes[0].kill()

Every wait has a deadline; the nodes are killed at teardown whatever happened.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.errors import ChairsideError

__all__ = ["ACK_WAIT", "NATS_SERVER", "NatsCluster", "NatsClusterError", "NatsNode", "free_ports"]

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
CLUSTER_NAME = "chairside-test"
#: A QoS 1 message sent to a subscriber and not acknowledged within this is sent again (NATS's
#: default is 30 s). After a failover the messages the dead node had sent but not seen
#: acknowledged wait this long before they are redelivered through the new node: short, so
#: that the test does not wait, and still far above the source's ack-after-commit delay.
ACK_WAIT = "3s"

NODE_CONFIG = """\
server_name: {name}
listen: 127.0.0.1:{client}
http: 127.0.0.1:{http}
jetstream {{
  store_dir: "{store}"
}}
cluster {{
  name: {cluster}
  listen: 127.0.0.1:{route}
  routes: [{routes}]
}}
mqtt {{
  listen: 127.0.0.1:{mqtt}
  stream_replicas: 3
  consumer_replicas: 3
  ack_wait: "{ack_wait}"
  max_ack_pending: 1024
}}
"""


class NatsClusterError(ChairsideError, RuntimeError):
    """The cluster could not be started or did not become ready; the message quotes the logs."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that the OS says are free now."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class NatsNode:
    """One nats-server process of the cluster."""

    def __init__(self, folder: Path, name: str, ports: dict[str, int], routes: list[int]) -> None:
        self.folder, self.name, self.ports = folder, name, ports
        folder.mkdir(parents=True, exist_ok=True)
        self.store = folder / "jetstream"
        self.config_path = folder / "nats.conf"
        self.log_path = folder / "nats.log"
        self.config_path.write_text(NODE_CONFIG.format(
            name=name, cluster=CLUSTER_NAME, store=self.store, ack_wait=ACK_WAIT,
            routes=", ".join(f"nats-route://127.0.0.1:{p}" for p in routes), **ports), encoding="utf-8")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def mqtt_port(self) -> int:
        return self.ports["mqtt"]

    @property
    def endpoint(self) -> str:
        """``host:port`` of the MQTT listener, as the source's ``brokers`` names it."""
        return f"127.0.0.1:{self.mqtt_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> NatsNode:
        if self.running:
            return self
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._proc = subprocess.Popen([NATS_SERVER, "-c", str(self.config_path)],
                                      stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, process_group=0)
        return self

    def monitor(self, path: str) -> Any:
        """The JSON of the node's monitoring endpoint ``path`` (``/jsz``, ``/healthz``), or
        None when the node does not answer (yet)."""
        url = f"http://127.0.0.1:{self.ports['http']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:  # /healthz answers 503 with a JSON body
            try:
                return json.loads(exc.read())
            except ValueError:
                return None
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        """Up, its MQTT listener accepting, JetStream healthy and a meta leader elected."""
        if not self.running or not _accepts(self.mqtt_port):
            return False
        health = self.monitor("/healthz")
        jsz = self.monitor("/jsz")
        if not health or health.get("status") != "ok" or not jsz:
            return False
        meta = jsz.get("meta_cluster") or {}
        return bool(meta.get("leader"))

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to the cluster or the clients."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class NatsCluster:
    """Three :class:`NatsNode`\\ s routed to each other. :meth:`start` returns once every node
    is ready (:meth:`NatsNode.ready`) and the JetStream meta group counts all three, within
    ``timeout``."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        ports = free_ports(4 * size)
        self.nodes: list[NatsNode] = []
        routes = [ports[4 * i + 1] for i in range(size)]
        for i in range(size):
            p = dict(zip(("client", "route", "mqtt", "http"), ports[4 * i:4 * i + 4], strict=True))
            self.nodes.append(NatsNode(Path(folder) / f"n{i + 1}", f"n{i + 1}", p,
                                       [r for r in routes if r != p["route"]]))

    @property
    def endpoints(self) -> list[str]:
        return [n.endpoint for n in self.nodes]

    def node_at(self, port: int) -> NatsNode:
        for node in self.nodes:
            if node.mqtt_port == port:
                return node
        raise KeyError(port)

    def start(self, timeout: float = 30.0) -> NatsCluster:
        if not Path(NATS_SERVER).exists():
            raise NatsClusterError(f"{NATS_SERVER} not found: install Debian's nats-server package")
        for node in self.nodes:
            node.start()
        try:
            deadline = time.monotonic() + timeout
            self.wait(lambda: all(n.ready() for n in self.nodes) and self._meta_complete(),
                      timeout, "every node ready with a JetStream meta leader")
            for node in self.nodes:
                self._first_mqtt_client(node, deadline)
        except NatsClusterError:
            self.stop()
            raise
        return self

    def _first_mqtt_client(self, node: NatsNode, deadline: float) -> None:
        """Connect an MQTT client to ``node`` once. A node sets up its MQTT state (its
        replicated consumers of the session and retained-message streams) on its first MQTT
        connection; a node that never had one could not do that while another node was down
        (its requests timed out until the dead node came back), so it could not take over a
        session. A deployment does the same: an MQTT health probe on every node."""
        connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{node.name}",
                             protocol=mqtt.MQTTv311)
        client.on_connect = lambda c, u, f, reason, p: reason.is_failure or connected.set()
        client.reconnect_delay_set(1, 1)
        client.connect_async("127.0.0.1", node.mqtt_port, keepalive=10)
        client.loop_start()  # connects, and again after a refused connect
        try:
            if not connected.wait(max(0.0, deadline - time.monotonic())):
                raise NatsClusterError(f"nats-server {node.name} took no MQTT client:\n"
                                       f"{node.log_text()[-3000:]}")
            client.disconnect()
        finally:
            client.loop_stop()

    def _meta_complete(self) -> bool:
        for node in self.nodes:
            meta = (node.monitor("/jsz") or {}).get("meta_cluster") or {}
            if meta.get("cluster_size", 0) < len(self.nodes):
                return False
        return True

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for node in self.nodes:
                if node._proc is not None and node._proc.poll() is not None:
                    raise NatsClusterError(f"nats-server {node.name} exited with "
                                           f"{node._proc.returncode}:\n{node.log_text()}")
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.name}:\n{n.log_text()[-3000:]}" for n in self.nodes)
                raise NatsClusterError(f"NATS cluster: no {what} within {timeout:.0f} s\n{logs}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
