"""Ingest benchmark: readings per second through ``Monitor.ingest`` for 48 chairs x 5
parameters, with alarm evaluation, store on (SQLite, batched, durable at the end) and off
(the same run without the store: the ratio is the store's cost, measured in one run on one
machine, so a noisy neighbour moves both alike). Also resident memory per chair for 12 hours
of 1 Hz data.

    python -m bench.ingest [--readings N]     prints JSON, writes bench/results/ingest.json
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from monitor.clock import ManualClock
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.readings import Reading
from monitor.store import SqliteStore

RESULTS = Path(__file__).parent / "results"
PARAMS = ("hr", "pr", "spo2", "nibp_sys", "nibp_dia")
NOW = 1_800_000_000.0


def config(chairs: int, db: Path):
    return parse_config({"store": {"path": str(db)},
                         "chairs": [{"id": f"c{i:02d}"} for i in range(chairs)]})


def make_batches(chairs: int, total: int) -> list[list[Reading]]:
    """One batch per chair per second (one device message): plausible values with some
    alarm-raising stretches, device times ending now."""
    rng = np.random.default_rng(1)
    seconds = total // (chairs * len(PARAMS))
    base = {"hr": 75, "pr": 75, "spo2": 97, "nibp_sys": 125, "nibp_dia": 80}
    noise = rng.normal(0, 3, size=(seconds, chairs, len(PARAMS))).round()
    batches = []
    for s in range(seconds):
        t = NOW - seconds + s
        dip = 12 if (s // 300) % 4 == 3 else 0  # every 20 minutes a 5-minute desaturation
        for c in range(chairs):
            chair = f"c{c:02d}"
            batch = []
            for p, key in enumerate(PARAMS):
                value = float(base[key] + noise[s, c, p] - (dip if key == "spo2" else 0))
                if key == "spo2":
                    value = min(value, 100.0)
                batch.append(Reading(chair, key, value, t, t, f"dev-{chair}", s))
            batches.append(batch)
    return batches


def run_ingest(batches: list[list[Reading]], chairs: int, store_on: bool, tmp: Path) -> dict:
    db = tmp / f"bench-{store_on}-{time.monotonic_ns()}.db"
    store = SqliteStore(db) if store_on else None
    monitor = Monitor(config(chairs, db), store=store, clock=ManualClock(NOW))
    monitor.start()
    n = sum(len(b) for b in batches)
    gc.collect()
    start = time.perf_counter()
    for batch in batches:
        monitor.ingest(batch)
    if store is not None:
        assert store.flush(timeout=300)
    elapsed = time.perf_counter() - start
    stored = store.count_readings() if store is not None else None
    alarms = len(store.alarm_events()) if store is not None else None
    monitor.close()
    assert stored in (None, n), f"{stored} of {n} readings stored"
    return {"readings": n, "seconds": round(elapsed, 3), "readings_per_s": round(n / elapsed),
            "stored": stored, "alarm_events": alarms}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def memory_per_chair(chairs: int = 8, hours: float = 12.0) -> dict:
    """Resident memory of the core for ``hours`` of 1 Hz HR, PR and SpO2 and a NIBP
    reading every 5 minutes, per chair, filled through the entry point."""
    gc.collect()
    before = rss_bytes()
    monitor = Monitor(config(chairs, Path("unused.db")), store=None, clock=ManualClock(NOW))
    seconds = int(hours * 3600)
    for s in range(seconds):
        t = NOW - seconds + s + 1
        batch = []
        for c in range(chairs):
            chair = f"c{c:02d}"
            batch += [Reading(chair, "hr", 70.0, t, t, "d", s), Reading(chair, "pr", 70.0, t, t, "d", s),
                      Reading(chair, "spo2", 97.0, t, t, "d", s)]
            if s % 300 == 0:
                batch.append(Reading(chair, "nibp_sys", 120.0, t, t, "d", s))
        monitor.ingest(batch)
    gc.collect()
    used = rss_bytes() - before
    return {"chairs": chairs, "hours": hours, "rss_per_chair_mb": round(used / chairs / 2**20, 3),
            "buffer_bytes_per_chair_mb": round(monitor.memory_bytes() / chairs / 2**20, 3),
            "target_mb": 2.0}


def main() -> None:
    logging.disable(logging.WARNING)  # alarm lines would swamp the output
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_200_000)
    parser.add_argument("--chairs", type=int, default=48)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:  # in a fresh process, so freed memory of other runs does not hide growth
        print(json.dumps(memory_per_chair()))
        return
    batches = make_batches(args.chairs, args.readings)
    with tempfile.TemporaryDirectory() as tmp:
        off = run_ingest(batches, args.chairs, False, Path(tmp))
        on = run_ingest(batches, args.chairs, True, Path(tmp))
    result = {
        "benchmark": "ingest",
        "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
        "chairs": args.chairs, "parameters": list(PARAMS),
        "store_off": off, "store_on": on,
        "store_on_vs_off": round(on["readings_per_s"] / off["readings_per_s"], 3),
        "target_readings_per_s_store_on": 200_000,
        "memory": json.loads(subprocess.run(
            [sys.executable, "-m", "bench.ingest", "--memory-only"], check=True,
            capture_output=True, text=True, cwd=Path(__file__).parent.parent).stdout),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
