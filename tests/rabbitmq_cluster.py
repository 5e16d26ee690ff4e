"""A three-node RabbitMQ cluster with its MQTT plugin, for the clustered-broker comparison
(tests/test_mqtt_cluster.py, bench/chaos.py): Debian's ``rabbitmq-server`` (3.10), three Erlang nodes
on loopback, started by the test, never the machine's own RabbitMQ service.

Everything a node reads or writes is under the test's tmp folder: its config file, its enabled
plugins file (``rabbitmq_mqtt``), its Mnesia and quorum-queue data, its log, an empty
``rabbitmq-env.conf`` (so /etc/rabbitmq is not read), and a private ``HOME`` with the cluster's
own ``.erlang.cookie`` (mode 400). The nodes ``rabbit1@localhost`` .. ``rabbit3@localhost``
have free AMQP, MQTT and Erlang-distribution ports from the OS, and register with a private
``epmd`` started here on a free port (``ERL_EPMD_PORT``), so the machine's epmd (4369) is not
shared. ``rabbitmqctl`` joins nodes 2 and 3 to node 1 (stop_app, join_cluster, start_app).

Sessions: ``mqtt.durable_queue_type = quorum`` (RabbitMQ 3.10's MQTT plugin has the setting,
see its schema ``rabbitmq_mqtt.schema``): the queue of a persistent session
(``clean_session = false``; ``mqtt-subscription-<client id>qos1``) is a quorum queue with a
member on each node, so its messages survive the node its client was connected to.

Each node is a process group (the ``rabbitmq-server`` script, ``erl``'s ``beam.smp`` and its
port programs); :meth:`RabbitNode.kill` sends SIGKILL to the whole group, a crash. Running as
root is fine for Erlang: the nodes run as the test's user, their files are the test's.

    with RabbitCluster(tmp_path) as cluster:
        host, port = "127.0.0.1", cluster.nodes[0].mqtt_port
        cluster.nodes[0].kill()

Every wait has a deadline; the nodes and the epmd are killed at teardown whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt
from nats_cluster import free_ports
from paho.mqtt.enums import CallbackAPIVersion

from monitor.errors import ChairsideError

__all__ = ["RABBITMQ_BIN", "RabbitCluster", "RabbitClusterError", "RabbitNode"]

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
EPMD = shutil.which("epmd") or "/usr/bin/epmd"

NODE_CONFIG = """\
listeners.tcp.default = 127.0.0.1:{amqp}
mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}
mqtt.allow_anonymous = true
mqtt.durable_queue_type = quorum
loopback_users = none
log.file.level = info
log.console = false
"""


class RabbitClusterError(ChairsideError, RuntimeError):
    """The cluster could not be started or did not become ready; the message quotes the logs."""


def _descendants(pid: int) -> list[int]:
    """``pid``'s child processes, their children, ... (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class RabbitNode:
    """One rabbitmq-server node of the cluster."""

    def __init__(self, folder: Path, name: str, ports: dict[str, int], env: dict[str, str]) -> None:
        self.folder, self.name, self.ports = folder, name, ports
        self.nodename = f"{name}@localhost"
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "rabbitmq.conf"
        self.config_path.write_text(NODE_CONFIG.format(**ports), encoding="utf-8")
        self.log_dir = folder / "log"
        self.console_path = folder / "console.log"
        self.env = env | {
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(ports["amqp"]),
            "RABBITMQ_DIST_PORT": str(ports["dist"]),
            "RABBITMQ_CONFIG_FILE": str(self.config_path),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),  # absent
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": str(folder / "rabbit.pid"),
        }
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
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The Erlang VM's (``beam.smp``) pid, or None when the node is not running."""
        if not self.running or self._proc is None:
            return None
        for pid in _descendants(self._proc.pid):
            if _process_name(pid).startswith("beam"):
                return pid
        return None

    def log_text(self) -> str:
        parts = []
        for path in (self.log_dir / f"{self.nodename}.log", self.console_path):
            with contextlib.suppress(FileNotFoundError):
                parts.append(path.read_text("utf-8", errors="replace"))
        return "\n".join(parts)

    def start(self) -> RabbitNode:
        if self.running:
            return self
        self._log = open(self.console_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._proc = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env=self.env,
                                      cwd=self.folder, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, process_group=0)
        return self

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n <this node> args``; its output, or :class:`RabbitClusterError`."""
        try:
            done = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.nodename, *args],
                                  env=self.env, cwd=self.folder, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise RabbitClusterError(f"rabbitmqctl {' '.join(args)} on {self.nodename}: "
                                     f"no answer within {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise RabbitClusterError(f"rabbitmqctl {' '.join(args)} on {self.nodename} failed "
                                     f"({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def kill(self) -> None:
        """SIGKILL to the node's whole process group: a crash, no goodbye to the cluster or the
        clients."""
        if self._proc is not None:
            pids = _descendants(self._proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            for pid in pids:  # a port program that left the group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class RabbitCluster:
    """Three :class:`RabbitNode`\\ s clustered with each other. :meth:`start` returns once every
    node runs the broker, the three are one cluster and each took an MQTT client, within
    ``timeout``."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        self.folder = Path(folder)
        ports = free_ports(1 + 3 * size)
        self.epmd_port = ports[0]
        home = self.folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(f"CHAIRSIDE{os.getpid()}X{time.monotonic_ns()}", encoding="ascii")
        cookie.chmod(0o400)
        plugins = self.folder / "enabled_plugins"
        plugins.write_text("[rabbitmq_mqtt].\n", encoding="ascii")
        env_conf = self.folder / "rabbitmq-env.conf"
        env_conf.write_text("# empty: /etc/rabbitmq/rabbitmq-env.conf is not read\n", encoding="ascii")
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
        self.env = keep | {
            "HOME": str(home),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(env_conf),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # rabbitmqctl's own distribution port: any free one (default 35672-35682)
            "RABBITMQ_CTL_DIST_PORT_MIN": "0",
            "RABBITMQ_CTL_DIST_PORT_MAX": "0",
        }
        self.nodes: list[RabbitNode] = []
        for i in range(size):
            p = dict(zip(("amqp", "mqtt", "dist"), ports[1 + 3 * i:4 + 3 * i], strict=True))
            self.nodes.append(RabbitNode(self.folder / f"rabbit{i + 1}", f"rabbit{i + 1}", p, self.env))
        self._epmd: subprocess.Popen[bytes] | None = None

    @property
    def endpoints(self) -> list[str]:
        return [n.endpoint for n in self.nodes]

    def node_at(self, port: int) -> RabbitNode:
        for node in self.nodes:
            if node.mqtt_port == port:
                return node
        raise KeyError(port)

    def start(self, timeout: float = 120.0) -> RabbitCluster:
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise RabbitClusterError(f"{RABBITMQ_BIN}/rabbitmq-server not found: "
                                     "install Debian's rabbitmq-server package")
        deadline = time.monotonic() + timeout
        try:
            self._epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                          env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          process_group=0)
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                self._await_startup(node, deadline)
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.nodename)
                node.ctl("start_app")
                self._await_startup(node, deadline)
            self.wait(self._clustered, max(1.0, deadline - time.monotonic()),
                      "three running nodes in one cluster")
            for node in self.nodes:
                self._first_mqtt_client(node, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _registered(self, node: RabbitNode) -> bool:
        """The node's Erlang VM is up (registered with the cluster's epmd); fails if it died."""
        if not node.running:
            raise RabbitClusterError(f"rabbitmq {node.name} exited:\n{node.log_text()[-4000:]}")
        names = subprocess.run([EPMD, "-port", str(self.epmd_port), "-names"], env=self.env,
                               capture_output=True, text=True, timeout=10, check=False).stdout
        return f"name {node.name} at port" in names

    def _await_startup(self, node: RabbitNode, deadline: float) -> None:
        self.wait(lambda: self._registered(node), max(1.0, deadline - time.monotonic()),
                  f"{node.name} registered with epmd")
        remaining = max(1.0, deadline - time.monotonic())
        try:
            node.ctl("await_startup", "--timeout", str(int(remaining)), timeout=remaining + 15)
        except RabbitClusterError as exc:
            raise RabbitClusterError(f"{exc}\n--- {node.name} log:\n{node.log_text()[-4000:]}") from exc

    def _clustered(self) -> bool:
        out = self.nodes[0].ctl("eval", "length(rabbit_nodes:all_running()).")
        return out.strip() == str(len(self.nodes))

    def _first_mqtt_client(self, node: RabbitNode, deadline: float) -> None:
        """One MQTT client on ``node``: its listener is up and takes sessions."""
        connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{node.name}",
                             protocol=mqtt.MQTTv311)
        client.on_connect = lambda c, u, f, reason, p: reason.is_failure or connected.set()
        client.reconnect_delay_set(1, 1)
        client.connect_async("127.0.0.1", node.mqtt_port, keepalive=10)
        client.loop_start()
        try:
            if not connected.wait(max(0.0, deadline - time.monotonic())):
                raise RabbitClusterError(f"rabbitmq {node.name} took no MQTT client:\n"
                                         f"{node.log_text()[-3000:]}")
            client.disconnect()
        finally:
            client.loop_stop()

    def queues(self, via: RabbitNode | None = None) -> str:
        """``rabbitmqctl list_queues`` with each queue's type, leader and members."""
        node = via or next(n for n in self.nodes if n.running)
        return node.ctl("list_queues", "name", "type", "durable", "leader", "members", "messages")

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.name}:\n{n.log_text()[-3000:]}" for n in self.nodes)
                raise RabbitClusterError(f"RabbitMQ cluster: no {what} within {timeout:.0f} s\n{logs}")
            time.sleep(0.2)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        if self._epmd is not None:
            if self._epmd.poll() is None:
                self._epmd.kill()
            self._epmd.wait(timeout=10)
            self._epmd = None

    def __enter__(self) -> RabbitCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
