"""Dashboard benchmark: the real bay screen, served as in production, against the naive
full-figure pattern, in headless Chromium (Debian's), at 8, 24 and 48 chairs.

Both apps run on the same wiring as ``chairside run``: a private Mosquitto, the MQTT source,
a real core on a SQLite file, waitress (``WebServer``). Every chair has 30 minutes of
history and an open session, and its monitor publishes HR and SpO2 every second (a new
value each time), so every tile has something to show every second. The screen's sound is
on (``?sound=on``), as on a bay screen. Measured per app and chair count, in one run:

- ``latency_ms``: a reading published (QoS 1) until its value is in the page's DOM (a
  MutationObserver on chair 1's HR), p50 / p95 / max over ``--trials`` trials published at
  irregular intervals, next to ``transport_ms``: the same message's arrival at a
  ``mosquitto_sub`` on the same broker (what the network alone costs);
- ``main_thread_ms_per_s``: the page's main-thread busy time (Chrome's ``TaskDuration``)
  per second of the trial window;
- ``updates_per_chair_per_s``: how often each chair's HR changed on the screen (1.0 means
  every second's value reached it);
- ``bytes_per_s``: what the tab received per second (every response body: the push stream,
  callbacks);
- ``profile``: the main thread's share per script (a CPU profile sampled every 1 ms),
  idle excluded;
- ``server_feed_ms_per_s`` (the app): what building the bay's view for the push channel
  costs the server, ms per second.

The naive pattern is the common Dash way: a one-second ``dcc.Interval`` whose one callback
returns every chair's number and full plotly figure (its last 30 minutes of HR and SpO2).
The ratios (``app_vs_naive``) are what counts: this machine is shared and noisy.

    python -m bench.dashboard [--trials 60] [--chairs 8 24 48] [--apps app naive]
                                                prints JSON, writes bench/results/dashboard.json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
import paho.mqtt.client as mqtt
import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from paho.mqtt.enums import CallbackAPIVersion
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options

from bench.mqtt import open_monitor, source, wait
from dashboard.app import create_app
from dashboard.live import LiveBay
from dashboard.server import WebServer
from monitor.readings import Reading
from monitor.timefmt import rfc3339
from simulators.broker import Mosquitto

RESULTS = Path(__file__).parent / "results"
TRIAL_CHAIR = "c01"
HISTORY_S = 1800  # every chair's last 30 minutes are in the buffers (the trends show them)
WATCH = """
window.benchSeen = {};  window.benchChanges = {};
const watch = () => {
  document.querySelectorAll(".tile[data-chair] .val-hr").forEach(el => {
    if (el.benchWatched) { return; }
    el.benchWatched = true;
    const chair = el.closest(".tile").getAttribute("data-chair");
    new MutationObserver(() => {
      const now = Date.now();
      window.benchChanges[chair] = (window.benchChanges[chair] || 0) + 1;
      if (chair === "%s" && !(el.textContent in window.benchSeen)) { window.benchSeen[el.textContent] = now; }
    }).observe(el, {childList: true, characterData: true, subtree: true});
  });
};
watch(); setInterval(watch, 500);
""" % TRIAL_CHAIR


# --- the naive pattern ---------------------------------------------------------------------


def naive_app(live: LiveBay) -> dash.Dash:
    """Every second, one callback returns every chair's number and whole figure."""
    chairs = live.monitor.chair_ids
    app = dash.Dash(__name__, title="naive", update_title=None)
    app.layout = html.Div([dcc.Interval(id="tick", interval=1000), html.Div([
        html.Div([html.Div(c, className="chair-name"), html.Div("--", id=f"hr-{c}", className="val-hr"),
                  dcc.Graph(id=f"g-{c}", config={"displayModeBar": False}, style={"height": "90px"})],
                 className="tile", **{"data-chair": c})
        for c in chairs], style={"display": "grid", "gridTemplateColumns": "repeat(8, 1fr)"})])

    outputs = [Output(f"hr-{c}", "children") for c in chairs] + [Output(f"g-{c}", "figure") for c in chairs]

    @app.callback(outputs, Input("tick", "n_intervals"))
    def tick(_n: int | None) -> list[Any]:
        monitor = live.monitor
        texts, figures = [], []
        for c in chairs:
            hr = monitor.trend(c, "hr", 1800, 600)
            spo2 = monitor.trend(c, "spo2", 1800, 600)
            last = [v for v in hr.values.tolist() if v == v]
            texts.append(f"{last[-1]:.0f}" if last else "---")
            figures.append(go.Figure([go.Scatter(x=hr.times.tolist(), y=hr.values.tolist(), name="HR"),
                                      go.Scatter(x=spo2.times.tolist(), y=spo2.values.tolist(), name="SpO2")],
                                     layout={"margin": {"l": 20, "r": 4, "t": 4, "b": 16},
                                             "showlegend": False}))
        return texts + figures

    return app


# --- the devices -------------------------------------------------------------------------


def history(monitor: Any, seconds: int = HISTORY_S) -> None:
    """The last ``seconds`` of every chair at 1 Hz, as if the bay had been running."""
    now = time.time()
    for i, chair in enumerate(monitor.chair_ids):
        readings = []
        for k in range(seconds, 0, -1):
            t = now - k
            readings.append(Reading(chair, "hr", float(60 + (k + i) % 25), t, t, f"mon-{chair}", None, 0))
            readings.append(Reading(chair, "spo2", float(94 + (k + i) % 5), t, t, f"mon-{chair}", None, 0))
        monitor.ingest(readings)
    monitor.store.flush(timeout=60)


class Devices:
    """Every chair's monitor: HR and SpO2 each second (changing), except chair 1's HR,
    which only the trials publish."""

    def __init__(self, port: int, chairs: list[str]) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-devices",
                                  protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait(self.client.is_connected, 10, "the publisher")
        self.chairs = chairs
        self.seq = Counter[str]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def send(self, chair: str, values: dict[str, float]) -> float:
        self.seq[chair] += 1
        now = time.time()
        body = {"device": f"mon-{chair}", "seq": self.seq[chair], "ts": rfc3339(now), **values}
        self.client.publish(f"chairside/bay1/{chair}/vitals", json.dumps(body), qos=1)
        return now

    def _run(self) -> None:
        k = 0
        while not self._stop.wait(1.0 - time.time() % 1.0):
            k += 1
            for i, chair in enumerate(self.chairs):
                values = {"spo2": 95 + (k + i) % 4}
                if chair != TRIAL_CHAIR:
                    values["hr"] = 64 + (k + i) % 20
                self.send(chair, values)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.client.disconnect()
        self.client.loop_stop()


class Transport:
    """mosquitto_sub on chair 1's topic: when each HR value arrived."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-p", str(port), "-t", f"chairside/bay1/{TRIAL_CHAIR}/vitals", "-F", "%U %p"],
            stdout=subprocess.PIPE, text=True)
        self.arrived: dict[int, float] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            stamp, _, payload = line.partition(" ")
            body = json.loads(payload)
            if "hr" in body:
                self.arrived.setdefault(int(body["hr"]), float(stamp))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


# --- the browser -------------------------------------------------------------------------


def browser() -> webdriver.Chrome:
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1920,1080",
                "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options)
    driver.set_script_timeout(120)  # a saturated page may take long to answer at all
    driver.execute_cdp_cmd("Performance.enable", {})
    driver.execute_cdp_cmd("Network.enable", {})
    return driver


def task_seconds(driver: webdriver.Chrome) -> float:
    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def received_bytes(driver: webdriver.Chrome) -> int:
    """Response bytes the tab received since the last call (Chrome's performance log)."""
    total = 0
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.dataReceived":
            total += int(message["params"].get("dataLength", 0))
    return total


def profile_shares(profile: dict[str, Any]) -> dict[str, float]:
    """Share of the main thread's busy samples per script (file name), idle excluded."""
    by_node = {n["id"]: n for n in profile["nodes"]}
    samples = Counter(profile.get("samples", []))
    per: Counter[str] = Counter()
    for node_id, hits in samples.items():
        frame = by_node[node_id]["callFrame"]
        url = frame.get("url") or ""
        name = (Path(urlsplit(url).path).name.split(".v")[0] if url
                else frame.get("functionName") or "(native)")
        if name != "(idle)":
            per[name] += hits
    busy = sum(per.values()) or 1
    return {k: round(v / busy, 3) for k, v in per.most_common(8)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- one run -----------------------------------------------------------------------------


def run(kind: str, chairs: int, trials: int, folder: Path) -> dict[str, Any]:
    try:
        return measure(kind, chairs, trials, folder)
    except TimeoutException as exc:  # the page's main thread is saturated: that is the result
        return {"trials": trials, "error": f"the page did not answer the benchmark: {exc.msg}"}


def measure(kind: str, chairs: int, trials: int, folder: Path) -> dict[str, Any]:
    broker = Mosquitto(folder / "broker").start()
    monitor = open_monitor(folder, chairs)
    ids = monitor.chair_ids
    history(monitor)
    for i, chair in enumerate(ids):
        monitor.start_session(chair, f"MRN-{i:04d}", "bench")
    src = source(monitor, broker.port)
    live = LiveBay(monitor, [src])
    server = WebServer((create_app(live) if kind == "app" else naive_app(live)).server, port=0)
    server.start()
    devices = Devices(broker.port, ids)
    transport = Transport(broker.port)
    driver = browser()
    try:
        devices.start()
        driver.get(server.url + "/?sound=on")  # a bay screen with its sound on (no "sound off" bar)
        tiles = "return document.querySelectorAll('.tile[data-chair] .val-hr').length"
        wait(lambda: driver.execute_script(tiles) == chairs, 60, "the tiles")
        driver.execute_script(WATCH)
        time.sleep(3)  # warm up: the page settles, every tile has its values
        received_bytes(driver)
        driver.execute_cdp_cmd("Profiler.enable", {})
        driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 1000})
        driver.execute_cdp_cmd("Profiler.start", {})
        changes0 = driver.execute_script("return Object.assign({}, window.benchChanges)")
        busy0, t0 = task_seconds(driver), time.monotonic()
        feed0 = live.feed.build_seconds if kind == "app" and hasattr(live, "feed") else 0.0
        published: dict[int, float] = {}
        rng = random.Random(chairs)
        for k in range(trials):
            value = 52 + k % 66  # a new value each trial, within the limits (no alarm)
            published[value] = devices.send(TRIAL_CHAIR, {"hr": value})
            time.sleep(rng.uniform(0.35, 0.75))  # irregular: no lock-step with any period
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(driver.execute_script(
                "return Object.keys(window.benchSeen)")) < len(published):
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        busy = task_seconds(driver) - busy0
        feed_s = (live.feed.build_seconds - feed0) if kind == "app" and hasattr(live, "feed") else None
        profile = driver.execute_cdp_cmd("Profiler.stop", {})["profile"]
        window_bytes = received_bytes(driver)
        changes = driver.execute_script("return window.benchChanges")
        seen = driver.execute_script("return window.benchSeen")
    finally:
        driver.quit()
        devices.stop()
        transport.stop()
        server.stop()
        src.stop()
        monitor.close()
        broker.stop()
    latencies = [seen[str(v)] - t * 1000 for v, t in published.items() if str(v) in seen]
    transports = [(transport.arrived[v] - t) * 1000 for v, t in published.items() if v in transport.arrived]
    others = [c for c in ids if c != TRIAL_CHAIR]
    per_chair = [(changes.get(c, 0) - changes0.get(c, 0)) / elapsed for c in others]
    return {
        "trials": trials, "seen": len(latencies),
        "latency_ms": {"p50": round(statistics.median(latencies)), "p95": round(pct(latencies, 0.95)),
                       "max": round(max(latencies))} if latencies else None,
        "transport_ms": {"p50": round(statistics.median(transports), 1),
                         "p95": round(pct(transports, 0.95), 1)} if transports else None,
        "main_thread_ms_per_s": round(busy * 1000 / elapsed),
        "updates_per_chair_per_s": {"min": round(min(per_chair), 2),
                                    "median": round(statistics.median(per_chair), 2)},
        "bytes_per_s": round(window_bytes / elapsed),
        # the server's cost of the push channel: building the bay's view, ms per second
        "server_feed_ms_per_s": round(feed_s * 1000 / elapsed, 1) if feed_s is not None else None,
        "profile": profile_shares(profile),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60, help="at most 66")
    parser.add_argument("--chairs", type=int, nargs="+", default=[8, 24, 48])
    parser.add_argument("--apps", nargs="+", default=["app", "naive"], choices=["app", "naive"])
    parser.add_argument("--out", default=str(RESULTS / "dashboard.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version(),
                               "trials": args.trials, "runs": {}}
    for chairs in args.chairs:
        runs = {}
        for kind in args.apps:
            with tempfile.TemporaryDirectory(prefix="bench-dash-") as tmp:
                runs[kind] = run(kind, chairs, args.trials, Path(tmp))
            print(json.dumps({"chairs": chairs, kind: runs[kind]}), flush=True)
        if "app" in runs and "naive" in runs:
            a, n = runs["app"], runs["naive"]
            runs["app_vs_naive"] = None if "error" in a or "error" in n else {
                "bytes": round(a["bytes_per_s"] / max(1, n["bytes_per_s"]), 4),
                "main_thread": round(a["main_thread_ms_per_s"] / max(1, n["main_thread_ms_per_s"]), 3),
                "latency_p95": (round(a["latency_ms"]["p95"] / n["latency_ms"]["p95"], 3)
                                if a["latency_ms"] and n["latency_ms"] else None),
            }
        results["runs"][str(chairs)] = runs
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
