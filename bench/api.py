"""API benchmark: many logged-in clients against the real web server, and what their load
does to ingest.

The server is one process, as in production: a real core with a SQLite store, a bay of
``--chairs`` chairs fed four times a second (5 parameters each, an alarm open), the
dashboard and API on a real :class:`dashboard.server.WebServer` (waitress) with login on.
The clients run in a process of their own (as they would on other machines, so their work
does not compete with the server's for its interpreter): ``--clients`` threads, each logged
in as its own user on one HTTP/1.1 keep-alive connection (``http.client``).

- ``rates``: requests per second for ``/healthz``, ``/api/v1/chairs`` and ``/api/v1/alarms``,
  each for ``--seconds`` with every client hammering that path, one path after the other in
  the same run; ``*_vs_healthz`` is the ratio (issue 14 asks >= 0.5).
- ``ingest``: ingest -> durable latency (``Monitor.ingest`` until its store ticket is
  committed, as an adapter's acknowledgement waits for it) of the feeder's batches, p50 / p99,
  with no HTTP load and under the clients' load on /api/v1/chairs (``p99_loaded_vs_idle``).

    python -m bench.api [--clients 20] [--chairs 24] [--seconds 5]  prints JSON, writes bench/results/api.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.server import WebServer
from monitor.clock import SystemClock
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.readings import Reading
from monitor.store import SqliteStore
from monitor.users import UserStore

RESULTS = Path(__file__).parent / "results"
PASSWORD = "bench-secret-password-1"
VALUES = {"hr": 72.0, "pr": 72.0, "spo2": 97.0, "nibp_sys": 120.0, "nibp_dia": 80.0}


class Feeder(threading.Thread):
    """Every chair's readings once a second (one batch), as the adapters would; records each
    batch's ingest -> durable latency."""

    def __init__(self, monitor: Monitor, period: float = 1.0) -> None:
        super().__init__(name="feeder", daemon=True)
        self.monitor, self.period = monitor, period
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.seq = 0

    def batch(self) -> list[Reading]:
        now = time.time()
        self.seq += 1
        out = []
        for chair in self.monitor.chair_ids:
            for param, value in VALUES.items():
                if chair == self.monitor.chair_ids[0] and param == "nibp_sys":
                    value = 210.0  # an open alarm, so /alarms has something to say
                out.append(Reading(chair, param, value, now, now, f"dev-{chair}", self.seq, 0))
        return out

    def run(self) -> None:
        while not self.stop.wait(self.period):
            start = time.perf_counter()
            result = self.monitor.ingest(self.batch())
            self.monitor.tick()
            self.monitor.on_durable(result.ticket,
                                    lambda s=start: self.latencies.append(time.perf_counter() - s))

    def window(self, seconds: float) -> list[float]:
        first = len(self.latencies)
        time.sleep(seconds)
        return self.latencies[first:]


def login(port: int, user: str) -> tuple[http.client.HTTPConnection, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/login", json.dumps({"username": user, "password": PASSWORD}),
                 {"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        raise SystemExit(f"bench.api: login as {user} answered {answer.status}")
    cookie = answer.getheader("Set-Cookie", "").split(";", 1)[0]
    return conn, cookie


class Clients:
    """The clients' process (started and warmed up on entering)."""

    def __init__(self, port: int, cookies: list[str]) -> None:
        self.port, self.cookies = port, cookies

    def __enter__(self) -> Clients:
        self.pool = multiprocessing.get_context("spawn").Pool(1)
        self.pool.apply(time.monotonic)  # the process is up, its imports done
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.close()
        self.pool.join()

    def hammer(self, path: str, seconds: float) -> dict:
        """Every client requests ``path`` in a loop for ``seconds``: requests per second."""
        result: dict = self.pool.apply(_hammer, (self.port, self.cookies, path, seconds))
        return result


def _hammer(port: int, cookies: list[str], path: str, seconds: float) -> dict:
    clients = [(http.client.HTTPConnection("127.0.0.1", port, timeout=30), c) for c in cookies]
    counts = [0] * len(clients)
    errors: list[str] = []
    go, end = threading.Event(), [0.0]

    def client(i: int) -> None:
        conn, cookie = clients[i]
        go.wait()
        while time.monotonic() < end[0]:
            conn.request("GET", path, headers={"Cookie": cookie})
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                errors.append(f"{path}: {answer.status}")
                return
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    start = time.monotonic()
    end[0] = start + seconds
    go.set()
    for t in threads:
        t.join()
    for conn, _ in clients:
        conn.close()
    if errors:
        raise SystemExit(f"bench.api: {errors[0]}")
    elapsed = time.monotonic() - start
    return {"requests": sum(counts), "requests_per_s": round(sum(counts) / elapsed, 1)}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ms = np.array(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


def run(clients: int, chairs: int, seconds: float, folder: Path) -> dict:
    config = parse_config({"store": {"path": str(folder / "bay.db")}, "auth": {"enabled": True},
                           "bay": {"id": "bench"},
                           "chairs": [{"id": f"c{i:02d}"} for i in range(1, chairs + 1)]}, "bench")
    users = UserStore(config.store.path)
    for i in range(clients):
        users.add(f"nurse{i:02d}", "nurse", PASSWORD)
    monitor = Monitor(config, store=SqliteStore(config.store.path), clock=SystemClock())
    monitor.start()
    feeder = Feeder(monitor, period=0.25)
    feeder.start()
    app = create_app(LiveBay(monitor))
    server = WebServer(app.server, port=0, auth_enabled=True)
    server.start()
    try:
        while len(feeder.latencies) < 3:
            time.sleep(0.1)
        idle = feeder.window(max(seconds * 2, 10.0))
        cookies = []
        for i in range(clients):
            conn, cookie = login(server.port, f"nurse{i:02d}")
            conn.close()
            cookies.append(cookie)
        with Clients(server.port, cookies) as load:
            rates = {path: load.hammer(path, seconds)
                     for path in ("/healthz", "/api/v1/chairs", "/api/v1/alarms")}
            loaded_start = len(feeder.latencies)
            load.hammer("/api/v1/chairs", max(seconds * 2, 10.0))
            loaded = feeder.latencies[loaded_start:]
    finally:
        server.stop()
        feeder.stop.set()
        feeder.join()
        monitor.close()
    base = rates["/healthz"]["requests_per_s"]
    idle_p, loaded_p = percentiles(idle), percentiles(loaded)
    return {
        "rates": rates,
        "chairs_vs_healthz": round(rates["/api/v1/chairs"]["requests_per_s"] / base, 2),
        "alarms_vs_healthz": round(rates["/api/v1/alarms"]["requests_per_s"] / base, 2),
        "ingest_to_durable": {
            "idle": idle_p, "under_load": loaded_p,
            "p99_loaded_vs_idle": round(loaded_p["p99_ms"] / idle_p["p99_ms"], 2)
            if idle_p.get("p99_ms") and loaded_p.get("p99_ms") else None,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--chairs", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.clients, args.chairs, args.seconds, Path(tmp))
    out = {"benchmark": "api", "clients": args.clients, "chairs": args.chairs, "seconds": args.seconds,
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, **result}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
