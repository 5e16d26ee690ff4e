"""Chair page benchmark: the server's time to first paint of a chair page with 12 hours of
data, and the cost of a live update of its trend (issue 14 point 2).

A real ``Monitor`` (ManualClock, SQLite store) holds one chair's 12-hour session: HR, PR and
SpO2 at 1 Hz and an NIBP cycle every 5 minutes, ingested a minute at a time, with a few
session steps. Through the Flask test client (the requests a browser makes, with Dash's
routing, JSON encoding and Chairside's request checks):

* first paint: the page-content callback that renders ``/chair/c01`` (its layout carries the
  trend figure), plus the first call of the trend callback (``refresh_trends``: the alarm
  history, the baseline and a patch); before this change the layout had no figure and the
  first trend callback built it;
* a live update (every 5 s): ``refresh_trends`` with 5 new seconds of readings (a patch), and
  the same callback made to build the whole figure (what every update cost before);
* the baseline, in the same run: ``GET /healthz``, a cheap request through the same stack.

Each is the median of ``--repeat`` runs. Ratios are what compare (the machine is shared).

    python -m bench.chair_page [--repeat 15]   prints JSON, writes bench/results/chair_page.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dashboard.app import create_app
from dashboard.live import LiveBay
from monitor.clock import ManualClock
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.readings import Reading
from monitor.records import SessionEventKind as K
from monitor.store import SqliteStore

RESULTS = Path(__file__).parent / "results"
START = 1_800_000_000.0
TARGET_S = 1.0


def build(db: Path, hours: float) -> tuple[Monitor, ManualClock]:
    config = parse_config({"store": {"path": str(db)}, "auth": {"enabled": False},
                           "chairs": [{"id": "c01", "label": "Chair 1"}]}, "bench")
    clock = ManualClock(START)
    monitor = Monitor(config, store=SqliteStore(db), clock=clock)
    monitor.start()
    session = monitor.start_session("c01", "MRN-1", "nurse.ann", protocol="ketamine")
    seconds = int(hours * 3600)
    rng = np.random.default_rng(7)
    hr = np.round(74 + 6 * np.sin(np.arange(seconds) / 600) + rng.normal(0, 1.5, seconds)).tolist()
    spo2 = np.round(np.clip(97.5 + rng.normal(0, 0.6, seconds), 90, 100)).tolist()
    steps = {600: (K.INFUSION_STARTED, ""), 1800: (K.RATE_CHANGED, "rate 125 mL/h"), 3600: (K.NOTE, "ok")}
    for m0 in range(0, seconds, 60):
        batch = []
        for s in range(m0, m0 + 60):
            t = START + s
            batch += [Reading("c01", "hr", hr[s], t, t, "ecg", s),
                      Reading("c01", "pr", hr[s] + 1, t, t, "ox", s),
                      Reading("c01", "spo2", spo2[s], t, t, "ox", s)]
            if s % 300 == 35:
                batch += [Reading("c01", k, v, t, t, "cuff", s)
                          for k, v in (("nibp_sys", 124.0), ("nibp_dia", 78.0), ("nibp_map", 93.0))]
        clock.set(START + m0 + 60)
        monitor.ingest(batch)
        monitor.tick()
        for at, (kind, detail) in steps.items():
            if m0 <= at < m0 + 60:
                monitor.session_step(session.id, kind, "nurse.ann", detail)
    assert monitor.store is not None and monitor.store.flush(timeout=60)
    return monitor, clock


def _call(app: Any, key: str, values: dict[str, Any], changed: list[str]) -> dict[str, Any]:
    spec = app.callback_map[key]
    outputs = [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1].split("@")[0]}
               for p in key.strip(".").split("...")]

    def item(d: dict[str, Any]) -> dict[str, Any]:
        return {"id": d["id"], "property": d["property"], "value": values.get(d["id"])}

    return {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [item(i) for i in spec["inputs"]], "state": [item(s) for s in spec["state"]],
            "changedPropIds": changed}


def median_s(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(hours: float, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chairside-bench-chair-") as tmp:
        monitor, clock = build(Path(tmp) / "bench.db", hours)
        try:
            live = LiveBay(monitor, max_age=0)
            app = create_app(live)
            client = app.server.test_client()
            assert client.get("/chair/c01").status_code == 200  # registers the page's callbacks
            page_key = next(k for k in app.callback_map if "_pages_content.children" in k)
            trend_key = next(k for k in app.callback_map
                             if "chair-trends.extendData" in k and "chair-alarms.children" in k)
            page_values = {"_pages_location": "/chair/c01"}
            page_body = _call(app, page_key, page_values,
                              [f"{i['id']}.{i['property']}" for i in app.callback_map[page_key]["inputs"]])
            page_body["inputs"] = [{**i, "value": "/chair/c01" if i["property"] == "pathname" else None}
                                   for i in page_body["inputs"]]

            def post(body: dict[str, Any]) -> dict[str, Any]:
                answer = client.post("/_dash-update-component", json=body)
                assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
                return answer.get_json()

            def trend(state: Any, changed: str) -> dict[str, Any]:
                return post(_call(app, trend_key, {"chair-slow": 1, "chair-range": "session",
                                                   "chair-id": "c01", "chair-trend-state": state}, [changed]))

            state = trend(None, "chair-trend-rebuild.data")["response"]["chair-trend-state"]["data"]
            page = post(page_body)
            page_bytes = len(json.dumps(page))

            def first_paint() -> None:
                post(page_body)
                trend(state, "chair-slow.n_intervals")

            def new_seconds() -> None:
                for _ in range(5):
                    t = clock.now()
                    monitor.ingest([Reading("c01", k, v, t, t, "d", None)
                                    for k, v in (("hr", 80.0), ("pr", 81.0), ("spo2", 97.0))])
                    clock.advance(1)

            patches: list[float] = []
            builds: list[float] = []
            for _ in range(repeat):
                new_seconds()
                t0 = time.perf_counter()
                answer = trend(state, "chair-slow.n_intervals")["response"]
                patches.append(time.perf_counter() - t0)
                assert "extendData" in answer["chair-trends"], "a patch expected"
                state = answer["chair-trend-state"]["data"]
                t0 = time.perf_counter()
                answer = trend(state, "chair-trend-rebuild.data")["response"]
                builds.append(time.perf_counter() - t0)
                state = answer["chair-trend-state"]["data"]
            patch_bytes = len(json.dumps(trend(state, "chair-slow.n_intervals")))
            full_bytes = len(json.dumps(trend(state, "chair-trend-rebuild.data")))

            first = median_s(first_paint, repeat)
            healthz = median_s(lambda: client.get("/healthz"), repeat)
            patch, full = statistics.median(patches), statistics.median(builds)
        finally:
            monitor.close()
    ms = 1000
    return {
        "benchmark": "chair_page",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "data": {"hours": hours, "continuous": "hr, pr, spo2 at 1 Hz", "nibp_every_s": 300},
        "repeat": repeat,
        "first_paint_ms": round(first * ms, 1),
        "first_paint_page_json_kb": round(page_bytes / 1024, 1),
        "first_paint_target_ms": TARGET_S * ms,
        "meets_target": first <= TARGET_S,
        "update_patch_ms": round(patch * ms, 2),
        "update_patch_json_kb": round(patch_bytes / 1024, 1),
        "update_full_build_ms": round(full * ms, 2),
        "update_full_build_json_kb": round(full_bytes / 1024, 1),
        "baseline_healthz_ms": round(healthz * ms, 2),
        "ratio_first_paint_to_healthz": round(first / healthz, 1),
        "ratio_patch_to_full_build": round(patch / full, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    result = run(args.hours, args.repeat)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chair_page.json").write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
