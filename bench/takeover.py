"""Takeover benchmark: how long a standby takes to become a bay's leader once it holds the
lock (issue 16), warm against cold, in the same run (the ratio holds on a noisy machine where
the seconds do not).

- cold: what a crash restart does: open the store, ``Monitor.start`` (every chair's ring
  buffers rebuilt from the last ``continuous_hours`` of readings, open sessions and alarms
  restored) and the sources' ``device_seqs``;
- warm: what ``chairside run`` with ``[ha] enabled`` does: the standby's store is open and
  its buffers have followed the leader (``Monitor.follow``) up to a second before the leader
  died; the takeover takes in that last second, restores sessions and alarms and reads
  ``device_seqs``.

On PostgreSQL (a private server, as the tests start it) and SQLite with the same readings.

    python -m bench.takeover [--chairs 24] [--hours 12]   prints JSON, writes bench/results/takeover.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from monitor.bay_store import open_bay_store
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.readings import Reading

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(ROOT / "tests"))  # the suite's private server: tests/pg_support.py
PARAMS = ("hr", "pr", "spo2")


def fill(store: Any, chairs: int, hours: float, now: float) -> int:
    """``hours`` of 1 Hz readings of three parameters per chair, ending now, through the store."""
    n = 0
    start = now - hours * 3600
    step = 600  # ten minutes of the bay per submission
    for t0 in range(0, int(hours * 3600), step):
        batch = [Reading(f"c{c:02d}", p, 70.0, start + t0 + s, start + t0 + s, f"dev-{c}", t0 + s, 0)
                 for s in range(step) for c in range(chairs) for p in PARAMS]
        store.add_readings(batch)
        n += len(batch)
        if t0 % 7200 == 0:
            assert store.flush(600)
    assert store.flush(600)
    return n


def takeover(section: dict[str, Any], chairs: int, warm: bool, writer: Any) -> float:
    """Seconds from holding the lock to a started Monitor with its sources' sequences read
    (a new leader's work); ``warm``: the standby had followed the store until a second ago."""
    config = parse_config({"bay": {"id": "bench"}, "store": section,
                           "chairs": [{"id": f"c{c:02d}"} for c in range(chairs)]})
    if warm:
        monitor = Monitor(config, store=open_bay_store(config.store, config.bay.id))
        monitor.follow()
    now = time.time()  # the leader's last second, committed after the standby's last follow
    writer.add_readings([Reading(f"c{c:02d}", p, 71.0, now, now, f"dev-{c}", None, 0)
                         for c in range(chairs) for p in PARAMS])
    assert writer.flush(60)
    t0 = time.perf_counter()
    if not warm:
        monitor = Monitor(config, store=open_bay_store(config.store, config.bay.id))
    monitor.start()
    monitor.device_seqs()
    elapsed = time.perf_counter() - t0
    assert monitor.status("c00").vitals["hr"].value == 71.0
    monitor.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chairs", type=int, default=24)
    parser.add_argument("--hours", type=float, default=12)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import conftest  # noqa: F401  (first: it imports pg_support, which imports it)
    from pg_support import PgServer

    now = time.time()
    result: dict[str, Any] = {"benchmark": "takeover", "chairs": args.chairs, "hours": args.hours,
                              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                          "load_average_at_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        sqlite = {"path": str(Path(tmp) / "bay.db"), "audit_key_file": str(key)}
        server = PgServer(fsync=True).start()
        try:
            server.create_database("bay")
            password = Path(tmp) / "pw"
            password.write_text(server.password)
            pg = {"url": f"postgresql://postgres@127.0.0.1:{server.port}/bay", "password_file": str(password),
                  "audit_key_file": str(key)}
            for name, section in (("sqlite", sqlite), ("postgresql", pg)):
                config = parse_config({"bay": {"id": "bench"}, "store": section, "chairs": [{"id": "c00"}]})
                with open_bay_store(config.store, "bench") as store:
                    result[f"{name}_readings"] = fill(store, args.chairs, args.hours, now)
                    for kind in ("cold", "warm", "cold", "warm"):  # alternated: fair to both
                        seconds = round(takeover(section, args.chairs, kind == "warm", store), 3)
                        result.setdefault(f"{name}_{kind}_takeover_s", []).append(seconds)
                best = {kind: min(result[f"{name}_{kind}_takeover_s"]) for kind in ("cold", "warm")}
                result[f"{name}_warm_over_cold"] = round(best["warm"] / best["cold"], 3)
        finally:
            server.cleanup()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "takeover.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
