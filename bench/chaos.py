"""Chaos benchmark (issue 16, point 6): a bay of 24 chairs served by a leader/standby pair
through the whole cluster, while a script kills, in turn, the leader, the broker node it is
connected to, the leader's database connection and a terminal server's link.

Everything runs on loopback and is started here: a private PostgreSQL (``tests/pg_support``),
a three-node clustered MQTT broker (RabbitMQ with quorum queues, ``tests/rabbitmq_cluster``, or
NATS with JetStream, ``tests/nats_cluster``), two real
``chairside run`` with ``[ha] enabled`` (``tests/test_ha.Server``), and the devices:

- MQTT chairs publish numbered vitals once a second (QoS 1) through a node the monitor is
  not connected to; the monitor's source lists all three nodes (one client id, a persistent
  3.1.1 session);
- HL7 chairs: a gateway per chair (the simulator's ``MllpEmitter``) sending to the listener
  of either server, failing over and sending again what was not acknowledged;
- serial chairs: a pseudo-terminal device behind a socat terminal server each, read through
  ``socket://`` by whichever server leads.

Faults, each after the bay has settled: ``leader_kill`` (SIGKILL of the leading server; it is
started again and waits as the standby), ``broker_node_kill`` (SIGKILL of the broker node the
monitor uses; the cluster runs on with two), ``db_connection_cut`` (``pg_terminate_backend`` of the
leader's lock session: it steps down, the standby leads), ``terminal_server_link`` (one
terminal server killed, back after ``link_outage_s``).

For each fault it reports ``takeover_s`` (leadership faults: from the fault until the other
server answers as the leader), ``recovered_s`` (from the fault until every chair shows a
value taken after it), ``longest_stale_s`` (the longest any chair's newest value on the bay
screen was old, polled through the API of whichever server leads, twice a second), and the
messages sent meanwhile: ``lost`` (never stored) and ``duplicated`` (stored twice), per
transport. A serial device does not keep what nobody read: its lines during a gap with no
reader are ``serial_unread``, not lost messages.

    python -m bench.chaos [--chairs 24] [--settle 45] [--broker nats|rabbitmq|both]
        prints JSON, writes bench/results/chaos.json (both brokers by default, one after the other)

The same scenario, shorter, is a test: tests/test_chaos.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(ROOT / "tests"))  # the suite's private servers and helpers

import conftest  # noqa: E402,F401  (first: pg_support imports it)
import paho.mqtt.client as mqtt  # noqa: E402
from conftest import wait_until  # noqa: E402
from nats_cluster import NatsCluster  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from pg_support import PgServer  # noqa: E402
from rabbitmq_cluster import RabbitCluster  # noqa: E402
from serial_bridge import Bridge, Device  # noqa: E402
from test_ha import Server, role  # noqa: E402

from monitor.store.leadership import LEADER_LOCK_CLASS  # noqa: E402
from monitor.timefmt import parse_rfc3339, rfc3339  # noqa: E402
from simulators.broker import free_port  # noqa: E402
from simulators.emitters import MllpEmitter  # noqa: E402

BAY = "chaos"
#: The clustered brokers the scenario runs on (docs/mqtt.md#clustered-brokers).
CLUSTERS: dict[str, type[NatsCluster] | type[RabbitCluster]] = {
    "nats": NatsCluster, "rabbitmq": RabbitCluster,
}
FAULTS = ("leader_kill", "broker_node_kill", "db_connection_cut", "terminal_server_link")


@dataclass
class Chairs:
    mqtt: list[str]
    hl7: list[str]
    serial: list[str]

    @classmethod
    def split(cls, n: int) -> Chairs:
        ids = [f"c{i:02d}" for i in range(1, n + 1)]
        k = max(1, n // 6)  # a sixth each by HL7 and by serial, the rest MQTT
        return cls(ids[: n - 2 * k], ids[n - 2 * k : n - k], ids[n - k :])

    @property
    def all(self) -> list[str]:
        return self.mqtt + self.hl7 + self.serial

    def kind(self, chair: str) -> str:
        return "mqtt" if chair in self.mqtt else "hl7" if chair in self.hl7 else "serial"


@dataclass
class Sent:
    """What the devices sent: (chair, device time) with the wall time it was sent at."""

    at: list[tuple[str, float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, chair: str, t: float) -> None:
        with self.lock:
            self.at.append((chair, t, time.time()))


class Devices:
    """Every chair's device sending once a second, in threads, until stopped."""

    def __init__(
        self, chairs: Chairs, broker_port: int, hl7_ports: list[int], bridges: dict[str, Bridge], base: float
    ) -> None:
        self.chairs, self.base, self.sent = chairs, base, Sent()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="chaos-devices", protocol=mqtt.MQTTv311
        )
        self.client.connect("127.0.0.1", broker_port, keepalive=10)
        self.client.loop_start()
        self.gateways = {
            c: MllpEmitter(
                "127.0.0.1",
                hl7_ports[0],
                standby=[("127.0.0.1", p) for p in hl7_ports[1:]],
                bed=f"BAY^^{c}",
                device=f"gw-{c}",
                retry_s=0.1,
                retry_max_s=1.0,
            )
            for c in chairs.hl7
        }
        self.bridges = bridges
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(c,), name=f"device-{c}", daemon=True) for c in chairs.all
        ]

    def start(self) -> Devices:
        wait_until(self.client.is_connected, 30, "the devices' broker connection")
        for gateway in self.gateways.values():
            gateway.open()
        for thread in self._threads:
            thread.start()
        return self

    def _send(self, chair: str, n: int, t: float) -> None:
        kind = self.chairs.kind(chair)
        if kind == "mqtt":
            data = json.dumps({"device": f"dev-{chair}", "seq": n, "hr": 60 + n % 40, "ts": rfc3339(t)})
            info = self.client.publish(f"chairside/{BAY}/{chair}/vitals", data, qos=1)
            info.wait_for_publish(30)
            if not info.is_published():
                raise RuntimeError(f"the broker did not take {chair} message {n}")
        elif kind == "hl7":
            self.gateways[chair].emit({"hr": 60.0 + n % 40}, 0, t, n)
        else:
            self.bridges[chair].device.send_next(ts=t, device=f"dev-{chair}")

    def _run(self, chair: str) -> None:
        n = 0
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                n += 1
                t = self.base + n
                self._send(chair, n, t)
                self.sent.add(chair, t)
                self._stop.wait(max(0.0, start + n - time.monotonic()))  # the device's 1 Hz
        except Exception as exc:  # reported by stop()
            self.sent.failures.append(f"{chair}: {exc!r}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        for chair, gateway in self.gateways.items():
            if not gateway.flush(60):
                self.sent.failures.append(
                    f"{chair}: {len(gateway.backlog)} HL7 message(s) never acknowledged"
                )
            gateway.close()
        self.client.disconnect()
        self.client.loop_stop()


class Screen:
    """The bay screen's view, polled twice a second through the API of whichever server
    leads: per chair, the device time of the newest heart rate shown, and per poll how old
    the oldest chair's newest value was."""

    def __init__(self, ports: list[int], chairs: list[str]) -> None:
        self.ports, self.chairs = ports, chairs
        self.newest: dict[str, float] = {}
        self.samples: list[tuple[float, float]] = []  # (wall time, the stalest chair's age)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="screen", daemon=True)

    def start(self) -> Screen:
        self._thread.start()
        return self

    def _poll(self) -> None:
        for port in self.ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/chairs", timeout=1) as answer:
                    chairs = json.loads(answer.read())["chairs"]
            except (OSError, ValueError):
                continue  # the standby (503), or a server down
            for c in chairs:
                ts = (c["vitals"].get("hr") or {}).get("ts")
                if ts:
                    self.newest[c["chair"]] = max(self.newest.get(c["chair"], 0.0), parse_rfc3339(ts))
            return

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._poll()
            now = time.time()
            if len(self.newest) == len(self.chairs):
                self.samples.append((now, max(now - t for t in self.newest.values())))

    def fresh_after(self, t: float) -> bool:
        return len(self.newest) == len(self.chairs) and min(self.newest.values()) > t

    def longest_stale(self, since: float, until: float) -> float:
        return max((age for at, age in self.samples if since <= at <= until), default=0.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def bay_config(
    folder: Path,
    name: str,
    pg: dict[str, str],
    chairs: Chairs,
    brokers: list[str],
    hl7_port: int,
    bridges: dict[str, Bridge],
) -> Path:
    beds = ", ".join(f'"BAY^^{c}" = "{c}"' for c in chairs.hl7)
    lines = [
        f'[bay]\nid = "{BAY}"\nname = "Chaos bay"',
        "[store]",
        *(f"{k} = {json.dumps(v)}" for k, v in pg.items()),
        "[ha]\nenabled = true\ncheck_s = 0.5",
        "[auth]\nenabled = false",
        '[dashboard]\nhost = "127.0.0.1"',
        *(f'[[chairs]]\nid = "{c}"' for c in chairs.all),
        f'[[sources]]\nkind = "mqtt"\nname = "mqtt"\nbrokers = {json.dumps(brokers)}\nbay = "{BAY}"\n'
        f'client_id = "chairside-{BAY}"\nprotocol = "3.1.1"\nreconnect_max_s = 1\nkeepalive_s = 5',
        f'[[sources]]\nkind = "hl7"\nname = "hl7"\nhost = "127.0.0.1"\nport = {hl7_port}\n'
        f"beds = {{ {beds} }}",
        *(
            f'[[sources]]\nkind = "serial"\nname = "serial-{c}"\nchair = "{c}"\n'
            f'port = "socket://127.0.0.1:{b.port}"\nprotocol = "chairside"\nuse_device_time = true\n'
            f"link_idle_s = 3"
            for c, b in bridges.items()
        ),
    ]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Chaos:
    """The cluster, the pair, the devices and the screen; :meth:`fault` injects one fault."""

    def __init__(self, folder: Path, chairs: int, settle_s: float, link_outage_s: float,
                 broker: str = "rabbitmq") -> None:
        self.folder, self.settle_s, self.link_outage_s = folder, settle_s, link_outage_s
        self.chairs = Chairs.split(chairs)
        self.pg = PgServer(fsync=True)
        self.cluster = CLUSTERS[broker](folder / broker)
        self.bridges: dict[str, Bridge] = {}
        self.servers: dict[str, Server] = {}
        self.ports: dict[str, int] = {}
        self.configs: dict[str, Path] = {}
        self.devices: Devices | None = None
        self.screen: Screen | None = None
        self.results: dict[str, dict[str, Any]] = {}

    # --- set-up and tear-down -------------------------------------------------------------

    def start(self) -> Chaos:
        self.pg.start()
        self.pg.create_database("bay")
        password = self.folder / "pg-password"
        password.write_text(self.pg.password)
        section = {
            "url": f"postgresql://postgres@127.0.0.1:{self.pg.port}/bay",
            "password_file": str(password),
            "audit_key_file": str(self.folder / "audit.key"),
        }
        self.cluster.start(timeout=120)
        for chair in self.chairs.serial:
            bridge = Bridge(Device(), free_port())
            bridge.start()
            self.bridges[chair] = bridge
        hl7_ports = [free_port(), free_port()]
        for name, hl7_port in zip("ab", hl7_ports, strict=True):
            self.ports[name] = free_port()
            self.configs[name] = bay_config(
                self.folder, name, section, self.chairs, self.cluster.endpoints, hl7_port, self.bridges
            )
        self.servers["a"] = self._server("a")
        wait_until(lambda: role(self.ports["a"]) == "leader", 60, "the first server to lead")
        self.servers["b"] = self._server("b")
        wait_until(lambda: role(self.ports["b"]) == "standby", 60, "the second to wait")
        # message n of a device is sent about n s from now, its time 1 s before (whole seconds: HL7's)
        base = float(round(time.time()) - 2)
        self.devices = Devices(
            self.chairs, self.cluster.nodes[-1].mqtt_port, hl7_ports, self.bridges, base
        ).start()
        self.screen = Screen(list(self.ports.values()), self.chairs.all).start()
        wait_until(
            lambda: self.screen is not None and self.screen.fresh_after(base), 60, "every chair on the screen"
        )
        return self

    def _server(self, name: str) -> Server:
        return Server(self.configs[name], self.ports[name], self.folder / f"{name}-{time.monotonic_ns()}.log")

    def stop(self) -> None:
        if self.screen is not None:
            self.screen.stop()
        for server in self.servers.values():
            server.kill()
        for bridge in self.bridges.values():
            bridge.kill()
            bridge.device.close()
        self.cluster.stop()
        self.pg.cleanup()

    # --- faults ---------------------------------------------------------------------------

    def leader(self) -> str:
        for name, port in self.ports.items():
            if role(port) == "leader":
                return name
        raise AssertionError("no server leads")

    def _takeover(self, old: str) -> float:
        other = "b" if old == "a" else "a"
        t0 = time.monotonic()
        wait_until(lambda: role(self.ports[other]) == "leader", 60, f"server {other} to lead")
        return time.monotonic() - t0

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement on the bay's database, as its superuser."""
        with self.pg.connect("bay") as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def fault(self, kind: str) -> None:
        assert self.screen is not None
        leader = self.leader()
        started = time.time()
        result: dict[str, Any] = {}
        if kind == "leader_kill":
            self.servers[leader].kill()
            result["takeover_s"] = round(self._takeover(leader), 2)
            self.servers[leader] = self._server(leader)  # as systemd would start it again
            wait_until(lambda: role(self.ports[leader]) == "standby", 60, "the killed server back as standby")
        elif kind == "broker_node_kill":
            # the first of the monitor's brokers: the one it uses; it stays down for the rest
            # of the run (two of three keep the cluster's quorum)
            self.cluster.nodes[0].kill()
        elif kind == "db_connection_cut":
            terminated = self.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = %s AND granted",
                (LEADER_LOCK_CLASS,),
            )
            result["sessions_cut"] = len(terminated)
            result["takeover_s"] = round(self._takeover(leader), 2)
            wait_until(lambda: role(self.ports[leader]) == "standby", 60, "the cut server to wait again")
        elif kind == "terminal_server_link":
            bridge = self.bridges[self.chairs.serial[0]]
            bridge.kill()
            seq = bridge.device.seq  # down while the device sends link_outage_s lines
            wait_until(lambda: bridge.device.seq >= seq + self.link_outage_s, 60, "the link's outage")
            bridge.start()
        else:
            raise ValueError(f"unknown fault {kind!r}")
        wait_until(lambda: self.screen.fresh_after(started), 60, "every chair fresh after the fault")
        result["recovered_s"] = round(time.time() - started, 2)
        result["started"] = started
        self.results[kind] = result

    def settle(self, seconds: float) -> None:
        """Let the bay run until every device has sent ``seconds`` more messages."""
        assert self.devices is not None
        sent = self.devices.sent
        goal = len(sent.at) + len(self.chairs.all) * seconds
        wait_until(lambda: len(sent.at) >= goal, seconds * 3, f"the devices sending for {seconds} s")

    # --- the count ------------------------------------------------------------------------

    def count(self) -> dict[str, Any]:
        """Stop the devices, wait until all they sent is stored, and judge each fault's
        window (from its start to the next fault's): lost, duplicated, stale."""
        assert self.devices is not None and self.screen is not None
        stopped = time.time()
        self.devices.stop()
        sent = self.devices.sent
        want = {(c, round(t, 3)) for c, t, _ in sent.at}

        def stored() -> Counter[tuple[str, float]]:
            rows = self.sql(f"SELECT chair, device_time FROM bay_{BAY}.readings")
            return Counter((c, round(t, 3)) for c, t in rows)

        serial = set(self.chairs.serial)
        with contextlib.suppress(AssertionError):  # what is still missing then is counted as lost
            wait_until(
                lambda: {k for k in want if k[0] not in serial} <= set(stored()), 60, "every message stored"
            )
        counts = stored()
        self.screen.stop()
        windows = sorted((r["started"], kind) for kind, r in self.results.items())
        ends = [start for start, _ in windows[1:]] + [stopped]
        for (start, kind), end in zip(windows, ends, strict=True):
            r = self.results[kind]
            in_window = [(c, round(t, 3)) for c, t, at in sent.at if start <= at < end]
            per: dict[str, dict[str, int]] = {}
            for key in in_window:
                kind_of = self.chairs.kind(key[0])
                p = per.setdefault(kind_of, {"sent": 0, "lost": 0, "duplicated": 0})
                p["sent"] += 1
                n = counts.get(key, 0)
                if n == 0:
                    p["lost" if kind_of != "serial" else "serial_unread"] = (
                        p.get("lost" if kind_of != "serial" else "serial_unread", 0) + 1
                    )
                p["duplicated"] += max(0, n - 1)
            r["transports"] = per
            r["lost"] = sum(p["lost"] for p in per.values())
            r["duplicated"] = sum(p["duplicated"] for p in per.values())
            r["longest_stale_s"] = round(self.screen.longest_stale(start, end), 1)
            del r["started"]
        lost = [k for k in want if counts.get(k, 0) == 0]
        return {
            "faults": self.results,
            "sent": len(sent.at),
            "stored": sum(counts.values()),
            "lost": sum(1 for k in lost if k[0] not in serial),
            "serial_unread": sum(1 for k in lost if k[0] in serial),
            "duplicated": sum(n - 1 for n in counts.values() if n > 1),
            "never_sent": len(set(counts) - want),
            "device_failures": sent.failures,
        }


def run(
    folder: Path,
    chairs: int = 24,
    settle_s: float = 20.0,
    link_outage_s: float = 3.0,
    faults: tuple[str, ...] = FAULTS,
    progress: Callable[[str], None] = lambda _: None,
    broker: str = "rabbitmq",
) -> dict[str, Any]:
    """The whole scenario on ``broker`` (``CLUSTERS``); returns the report (see the module's doc)."""
    chaos = Chaos(folder, chairs, settle_s, link_outage_s, broker)
    try:
        chaos.start()
        progress("started")
        for kind in faults:
            chaos.settle(settle_s)
            progress(f"fault {kind}")
            chaos.fault(kind)
            progress(f"fault {kind} recovered: {chaos.results[kind]}")
        chaos.settle(settle_s)
        report = chaos.count()
    finally:
        chaos.stop()
    report.update(
        chairs={
            "mqtt": len(chaos.chairs.mqtt),
            "hl7": len(chaos.chairs.hl7),
            "serial": len(chaos.chairs.serial),
        },
        settle_s=settle_s,
        broker=broker,
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chairs", type=int, default=24)
    parser.add_argument(
        "--settle", type=float, default=45.0, help="seconds of steady running before each fault"
    )
    parser.add_argument("--broker", choices=[*CLUSTERS, "both"], default="both")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    result: dict[str, Any] = {
        "benchmark": "chaos",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
        },
    }
    result["brokers"] = {}
    for broker in CLUSTERS if args.broker == "both" else [args.broker]:
        with tempfile.TemporaryDirectory() as tmp:
            result["brokers"][broker] = run(Path(tmp), args.chairs, args.settle, broker=broker,
                                            progress=lambda text: print(text, file=sys.stderr))
    result["duration_s"] = round(time.monotonic() - started)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chaos.json").write_text(text + "\n")
    ok = all(r["lost"] == r["duplicated"] == r["never_sent"] == 0 and not r["device_failures"]
             for r in result["brokers"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stop runs the clean-up
    sys.exit(main())
