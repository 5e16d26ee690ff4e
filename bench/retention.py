"""Retention benchmark: what pruning old readings costs ingest.

SQLite: one database preloaded with a backlog of readings older than ``retention_days``;
the same ingest (a batch of readings every 50 ms, 20 times a 30-chair bay's rate) runs twice
in one process, first with retention off (the baseline), then with it on while the writer
thread prunes the backlog in its bounded steps between commits. The figure is the p99 of
ingest's commit latency (submission to durable, as ``wait_durable`` sees it) with pruning
over without: the ratio holds on a noisy machine where absolute times do not.

PostgreSQL (a private server, as the tests start it, with fsync on): the steps retention
takes to drop a month's partition of readings (its ids counted ``SURVEY_IDS`` a step, then
the detach, the drop, the ledger entry and the audited action in the last), the longest step
(what the writer is held for), against a step when nothing is due.

    python -m bench.retention [--backlog N] [--pg-rows N] [--no-pg]
                                          prints JSON, writes bench/results/retention.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from monitor.readings import Reading
from monitor.store import DatabaseStore, SqliteStore
from monitor.store.retention import DAY_S

RESULTS = Path(__file__).parent / "results"
NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC).timestamp()
RETENTION = 400
BATCH = 150  # readings a submission: 30 chairs x 5 parameters
EVERY_S = 0.05  # between submissions


def _readings(n: int, t0: float, step: float, chair: str = "c01") -> list[Reading]:
    return [Reading(chair, "hr", 70.0, t0 + i * step, t0 + i * step, f"dev-{chair}", i, 0) for i in range(n)]


def _preload(store: DatabaseStore, n: int, t0: float) -> None:
    for start in range(0, n, 100_000):
        store.add_readings(_readings(min(100_000, n - start), t0 + start * 0.01, 0.01))
        assert store.flush(timeout=600)


def _ingest(store: DatabaseStore, submissions: int) -> dict[str, Any]:
    """Submit ``submissions`` batches, one every EVERY_S; the latency of each from its
    submission until a commit covers its ticket."""
    durable: list[tuple[int, float]] = []
    lock = threading.Lock()

    def committed(ticket: int) -> None:
        with lock:
            durable.append((ticket, time.perf_counter()))

    store.add_commit_listener(committed)
    submitted: list[tuple[int, float]] = []
    next_at = time.perf_counter()
    for k in range(submissions):
        next_at += EVERY_S
        t = NOW + k * EVERY_S
        rs = [Reading(f"c{c:02d}", p, 70.0, t, t, f"dev-c{c:02d}", k, 0)
              for c in range(30) for p in ("hr", "pr", "spo2", "nibp_sys", "nibp_dia")]
        ticket = store.add_readings(rs)
        submitted.append((ticket, time.perf_counter()))
        if (left := next_at - time.perf_counter()) > 0:
            time.sleep(left)  # the benchmark's pacing, not a wait for a condition
    assert store.flush(timeout=120)
    with lock:
        commits = sorted(durable)
    latencies, i = [], 0
    for ticket, at in submitted:
        while commits[i][0] < ticket:
            i += 1
        latencies.append(commits[i][1] - at)
    ms = np.array(latencies) * 1000
    return {"submissions": submissions, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2)}


def bench_sqlite(backlog: int, submissions: int, tmp: Path) -> dict[str, Any]:
    db = tmp / "retention.db"
    old = NOW - (RETENTION + 30) * DAY_S
    with SqliteStore(db) as store:  # retention off: the baseline
        _preload(store, backlog, old)
        baseline = _ingest(store, submissions)
    steps: list[float] = []
    store = SqliteStore(db, retention_days=RETENTION, now=lambda: NOW + 0.0)
    prune_once = store.prune_once

    def timed(now: float | None = None) -> Any:
        t0 = time.perf_counter()
        pruned = prune_once(now)
        if pruned is not None:
            steps.append(time.perf_counter() - t0)
        return pruned

    store.prune_once = timed  # type: ignore[method-assign]
    with store:
        pruning = _ingest(store, submissions)
        pruned_during = store.stats()["readings_pruned"]
        caught_up_at = time.perf_counter()
        while store.stats()["readings_pruned"] < backlog:  # the rest of the backlog, for the record
            time.sleep(0.05)
            if time.perf_counter() - caught_up_at > 600:
                break
        pruned_total = store.stats()["readings_pruned"]
    step_ms = np.array(steps) * 1000
    return {"backlog": backlog, "commit_interval_s": 0.2, "prune_batch": DatabaseStore.PRUNE_BATCH,
            "without_pruning": baseline, "while_pruning": {**pruning, "readings_pruned": pruned_during},
            "p99_ratio": round(pruning["p99_ms"] / baseline["p99_ms"], 2),
            "p50_ratio": round(pruning["p50_ms"] / baseline["p50_ms"], 2),
            "prune_steps": len(steps), "readings_pruned": pruned_total,
            "prune_step_ms": {"p50": round(float(np.percentile(step_ms, 50)), 1),
                              "max": round(float(step_ms.max()), 1)} if steps else None}


def bench_postgres(rows: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import conftest  # noqa: F401  (first: pg_support and it import each other)
    from pg_support import PgServer  # the tests' private server

    from monitor.store.postgres import PostgresStore

    server = PgServer(fsync=True).start()
    try:
        url = server.create_database("bench_retention")
        jan = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
        clock = [jan + 3600]
        with tempfile.TemporaryDirectory() as keys, PostgresStore(
                url, bay="bench", audit_key_file=Path(keys) / "key", retention_days=RETENTION,
                prune_interval_s=None, now=lambda: clock[0]) as store:
            _preload(store, rows, jan + 60)  # all in January 2024 (rows * 10 ms)
            clock[0] = jan + (RETENTION + 5) * DAY_S  # February not yet due
            t0 = time.perf_counter()
            none_due = store.prune_once()
            idle_s = time.perf_counter() - t0
            assert none_due is None
            clock[0] = dt.datetime(2025, 3, 10, tzinfo=dt.UTC).timestamp()
            steps = []  # the survey of the month's ids, SURVEY_IDS a step, then the drop
            while True:
                t0 = time.perf_counter()
                pruned = store.prune_once()
                steps.append(time.perf_counter() - t0)
                if pruned is not None:
                    break
            assert pruned.partition == "readings_2024_01" and pruned.rows == rows
    finally:
        server.cleanup()
    return {"partition_rows": rows, "survey_ids_per_step": PostgresStore.SURVEY_IDS,
            "steps": len(steps), "longest_step_s": round(max(steps), 4),
            "drop_step_s": round(steps[-1], 4), "all_steps_s": round(sum(steps), 4),
            "step_nothing_due_s": round(idle_s, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=2_000_000, help="old readings to prune (SQLite)")
    parser.add_argument("--submissions", type=int, default=300, help="ingest batches a run")
    parser.add_argument("--pg-rows", type=int, default=1_000_000, help="readings in the dropped month")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        result: dict[str, Any] = {
            "benchmark": "retention", "python": platform.python_version(), "cpus": os.cpu_count(),
            "sqlite": bench_sqlite(args.backlog, args.submissions, Path(tmp))}
    if not args.no_pg:
        result["postgresql"] = bench_postgres(args.pg_rows)
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "retention.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
