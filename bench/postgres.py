"""PostgreSQL benchmark (issue 15, point 7), all against one private server of its own
(tests/pg_support.py's ``PgServer``, ``fsync`` on so commit times mean something), in one run:

(a) ingest: readings through ``Monitor.ingest`` (validation, ring buffers, alarm evaluation)
    into a ``PostgresStore``, durable at the end, against a raw psycopg COPY of the same rows
    into a plain table (same columns and indexes, not partitioned) in the same server
    (target >= 0.3x), and against the same ingest into SQLite;
(b) N bays x 24 chairs at 1 Hz (HR, PR and SpO2 every second, an NIBP cycle every 5 minutes),
    each bay its own process with a real ``Monitor`` and ``PostgresStore``, all on one
    database, for N = 1, 4, 16: ingest -> durable latency (p50, p99), the writer's commit
    time, CPU seconds per reading of the bay processes and of the server's processes (from
    /proc), WAL and database growth per chair-hour;
(c) a session export (CSV and FHIR) and the trend query (``iter_readings``, 1 h of one chair)
    from a bay holding 90 days x 30 chairs (two 4-hour sessions a chair each weekday; rows generated
    in the server straight into the bay's monthly partitions, then ANALYZE) against the same
    from a bay holding one day: the ratio shows the indexes keep it flat; EXPLAIN of the
    query is kept in the results.

    python -m bench.postgres [--quick] [--days 90] [--bays 1,4,16] [--seconds 25]
        prints JSON, writes bench/results/postgres.json

Everything it starts (the server, the bay processes) is stopped on the way out, also on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the suite's private server: tests/pg_support.py

import conftest  # noqa: E402, F401  (first: it imports pg_support, which imports it)
from pg_support import PgServer  # noqa: E402

from bench.ingest import make_batches  # noqa: E402
from monitor.clock import ManualClock, SystemClock  # noqa: E402
from monitor.config import parse_config  # noqa: E402
from monitor.config_sections import StoreSection  # noqa: E402
from monitor.core import Monitor  # noqa: E402
from monitor.readings import Reading  # noqa: E402
from monitor.records import Session, SessionState  # noqa: E402
from monitor.store import SqliteStore  # noqa: E402
from monitor.store.db import PgDatabase, pg_sql  # noqa: E402
from monitor.store.postgres import PostgresStore, partition_name  # noqa: E402
from monitor.store.rows import READING_COLS  # noqa: E402

RESULTS = Path(__file__).parent / "results"
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z, as bench.ingest
TARGET_VS_COPY = 0.3
# A server as a site would size it on this machine (the suite's is tiny); recorded in the JSON.
SERVER_SETTINGS = {"shared_buffers": "'512MB'", "max_wal_size": "'4GB'", "max_connections": "200",
                   "checkpoint_timeout": "'15min'"}
ARCHIVE_START = dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
SESSION_WINDOWS_H = ((8, 12), (13, 17))  # each chair: two 4-hour sessions a day


def bay_config(chairs: int):
    # the store is passed to Monitor directly; this section is not opened
    return parse_config({"store": {"path": "unused.db"},
                         "chairs": [{"id": f"c{i:02d}"} for i in range(chairs)]})


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


class Bench:
    """The server, its store sections and the bay processes: all stopped by :meth:`close`."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.children: list[subprocess.Popen] = []
        self.server = PgServer(fsync=True)
        self.server.configure(**SERVER_SETTINGS)
        self.server.start()
        self.password_file = tmp / "db-password"
        self.password_file.write_text(self.server.password + "\n")
        self.password_file.chmod(0o600)

    def section(self, database: str) -> dict[str, Any]:
        """A bay's [store] table for ``database`` (created if missing): the password in a file."""
        with self.server.connect() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return {"url": f"postgresql://postgres@127.0.0.1:{self.server.port}/{database}",
                "password_file": str(self.password_file), "audit_key_file": str(self.tmp / "audit.key")}

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=30)
        self.server.cleanup()


# -- (a) ingest --------------------------------------------------------------------------------


def monitor_ingest(batches: list[list[Reading]], chairs: int, store: Any) -> dict:
    monitor = Monitor(bay_config(chairs), store=store, clock=ManualClock(NOW))
    monitor.start()
    n = sum(len(b) for b in batches)
    t0 = time.perf_counter()
    for batch in batches:
        monitor.ingest(batch)
    assert store.flush(timeout=600)
    elapsed = time.perf_counter() - t0
    stored, alarms = store.count_readings(), len(store.alarm_events())
    monitor.close()
    assert stored == n, f"{stored} of {n} readings stored"
    return {"readings": n, "seconds": round(elapsed, 3), "readings_per_s": round(n / elapsed),
            "alarm_events": alarms, "batches": store.stats()["batches"]}


def raw_copy(bench: Bench, section: dict, batches: list[list[Reading]], batch_rows: int) -> dict:
    """The same rows by COPY into a plain table with the same columns and indexes, one commit
    per ``batch_rows`` rows (what the store's writer committed on average), the last durable."""
    rows = [(i, *r) for i, r in enumerate((r for b in batches for r in b), 1)]
    with psycopg.connect(section["url"], password=bench.server.password, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_readings")
        conn.execute("CREATE TABLE raw_readings (id BIGINT NOT NULL, chair TEXT, parameter TEXT, "
                     "value DOUBLE PRECISION, device_time DOUBLE PRECISION, receive_time DOUBLE "
                     "PRECISION, device TEXT, seq BIGINT, flags BIGINT)")
        conn.execute("CREATE INDEX ON raw_readings (chair, device_time)")
        conn.execute("CREATE INDEX ON raw_readings (id)")
        t0 = time.perf_counter()
        for lo in range(0, len(rows), batch_rows):
            with conn.transaction(), conn.cursor() as cur, cur.copy(
                    f"COPY raw_readings ({', '.join(['id', *READING_COLS.split(', ')])}) FROM STDIN") as copy:
                for row in rows[lo:lo + batch_rows]:
                    copy.write_row(row)
        elapsed = time.perf_counter() - t0
        stored = conn.execute("SELECT count(*) FROM raw_readings").fetchone()[0]
        conn.execute("DROP TABLE raw_readings")
    assert stored == len(rows)
    return {"readings": len(rows), "seconds": round(elapsed, 3), "readings_per_s": round(len(rows) / elapsed),
            "commits": -(-len(rows) // batch_rows)}


def run_ingest(bench: Bench, readings: int, chairs: int, rounds: int) -> dict:
    """``rounds`` rounds of the three, interleaved (each round a fresh bay schema, table and
    file), so the machine's drift falls on all three alike; the ratios are the medians of
    the rounds' ratios."""
    batches = make_batches(chairs, readings)
    section = bench.section("ingest")
    runs: list[dict] = []
    for r in range(rounds):
        store = StoreSection.model_validate(section).open(f"ingest{r}")
        assert isinstance(store, PostgresStore) and isinstance(store.database, PgDatabase)
        with store.database.connect() as db:
            store.ensure_partitions(db, NOW)  # the month of the benchmark's receive times
        pg = monitor_ingest(batches, chairs, store)
        raw = raw_copy(bench, section, batches, max(1, pg["readings"] // pg["batches"]))
        sqlite = monitor_ingest(batches, chairs, SqliteStore(bench.tmp / f"ingest{r}.db",
                                                             audit_key_file=bench.tmp / "audit.key"))
        runs.append({"postgres_monitor": pg, "raw_copy": raw, "sqlite_monitor": sqlite,
                     "postgres_vs_raw_copy": round(pg["readings_per_s"] / raw["readings_per_s"], 3),
                     "postgres_vs_sqlite": round(pg["readings_per_s"] / sqlite["readings_per_s"], 3)})
    return {"chairs": chairs, "parameters": 5, "readings": readings, "rounds": runs,
            "postgres_vs_raw_copy": round(float(np.median([x["postgres_vs_raw_copy"] for x in runs])), 3),
            "target_vs_raw_copy": TARGET_VS_COPY,
            "postgres_vs_sqlite": round(float(np.median([x["postgres_vs_sqlite"] for x in runs])), 3)}


# -- (b) N bays at 1 Hz ------------------------------------------------------------------------


def bay_child(spec: dict) -> None:
    """One bay (in its own process): open the store, say ready, wait for "go <monotonic t0>",
    then feed every chair at 1 Hz for ``seconds`` (chairs spread over the second, as devices
    are), record ingest -> durable and the writer's commit times; print the result as JSON."""
    logging.disable(logging.WARNING)
    chairs, seconds = spec["chairs"], spec["seconds"]
    store = StoreSection.model_validate(spec["section"]).open(spec["bay"])
    monitor = Monitor(bay_config(chairs), store=store, clock=SystemClock())
    monitor.start()
    commits: list[float] = []
    store.add_commit_listener(lambda _t: commits.append(store.stats()["last_commit_seconds"]))
    print("ready", flush=True)
    t0 = float(sys.stdin.readline().split()[1])
    latencies: list[float] = []
    chair_ids = monitor.chair_ids
    rng = np.random.default_rng(abs(hash(spec["bay"])) % 2**32)
    phase = rng.uniform(0, 1)
    n = 0
    cpu0, start = os.times(), time.monotonic()
    del commits[:]
    for k in range(seconds):
        for i, chair in enumerate(chair_ids):
            at = t0 + k + (phase + i / len(chair_ids)) % 1.0
            if (wait := at - time.monotonic()) > 0:
                time.sleep(wait)  # pacing the devices, not waiting for a result
            now = time.time()
            hr = float(round(75 + rng.normal(0, 2)))
            spo2 = float(round(97 + rng.normal(0, 0.5)))
            batch = [Reading(chair, "hr", hr, now, now, f"ecg-{chair}", k),
                     Reading(chair, "pr", hr, now, now, f"ox-{chair}", k),
                     Reading(chair, "spo2", spo2, now, now, f"ox-{chair}", k)]
            if (k + 12 * i) % 300 == 0:
                batch += [Reading(chair, key, v, now, now, f"cuff-{chair}", k)
                          for key, v in (("nibp_sys", 122.0), ("nibp_dia", 78.0), ("nibp_map", 93.0))]
            t_submit = time.perf_counter()
            result = monitor.ingest(batch)
            n += result.accepted
            monitor.on_durable(result.ticket, lambda s=t_submit: latencies.append(time.perf_counter() - s))
        monitor.tick()
    assert store.flush(timeout=120)
    cpu1, window = os.times(), time.monotonic() - start
    print(json.dumps({"bay": spec["bay"], "readings": n, "window_s": round(window, 2),
                      "cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 3),
                      "latencies_ms": [round(x * 1000, 2) for x in latencies],
                      "commit_ms": [round(x * 1000, 2) for x in commits]}), flush=True)
    monitor.close()


def server_cpu_s(bench: Bench) -> float:
    """CPU seconds of the server: its processes now, plus what its exited children used
    (the postmaster's cutime/cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in bench.server.server_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if pid == bench.server.pid:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / tick


def db_state(section: dict, password: str) -> tuple[int, int]:
    with psycopg.connect(section["url"], password=password, autocommit=True) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        lsn = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
    return int(size), int(lsn)


def wal_by_kind(section: dict, password: str, lsn0: int, lsn1: int, readings: int) -> dict:
    """Where the WAL of a run went (pg_walinspect, PostgreSQL 15+): bytes per reading by
    resource manager, records and full-page images apart; {} where the extension is missing."""
    try:
        with psycopg.connect(section["url"], password=password, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            rows = conn.execute(
                "SELECT \"resource_manager/record_type\", count, record_size, fpi_size FROM pg_get_wal_stats("
                "'0/0'::pg_lsn + %s::numeric, '0/0'::pg_lsn + %s::numeric, false) WHERE count > 0 "
                "ORDER BY combined_size DESC", (lsn0, lsn1)).fetchall()
    except psycopg.Error as exc:
        return {"unavailable": str(exc).strip().splitlines()[0]}
    return {rm: {"records_per_reading": round(n / readings, 2),
                 "record_bytes_per_reading": round(rec / readings, 1),
                 "fpi_bytes_per_reading": round(fpi / readings, 1)}
            for rm, n, rec, fpi in rows[:6]}


def run_bays(bench: Bench, n: int, chairs: int, seconds: int) -> dict:
    section = bench.section(f"bays{n}")
    run = secrets.token_hex(2)
    procs = []
    for b in range(n):
        spec = {"bay": f"b{run}x{b:02d}", "chairs": chairs, "seconds": seconds, "section": section}
        proc = subprocess.Popen([sys.executable, "-m", "bench.postgres", "--bay-child", json.dumps(spec)],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        bench.children.append(proc)
        procs.append(proc)
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise SystemExit(f"bench.postgres: a bay process failed to start (exit {proc.wait()})")
    with psycopg.connect(section["url"], password=bench.server.password, autocommit=True) as conn:
        per_bay = [n for (n,) in conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE %s GROUP BY application_name", (f"chairside b{run}x%",))]
    size0, wal0 = db_state(section, bench.server.password)
    cpu0 = server_cpu_s(bench)
    t0 = time.monotonic() + 1.0
    for proc in procs:
        proc.stdin.write(f"go {t0}\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    results = [json.loads(proc.stdout.readline()) for proc in procs]  # type: ignore[union-attr]
    server_cpu = server_cpu_s(bench) - cpu0
    wall = time.monotonic() - t0
    size1, wal1 = db_state(section, bench.server.password)
    for proc in procs:
        proc.stdin.close()  # type: ignore[union-attr]
        if proc.wait(timeout=120):
            raise SystemExit(f"bench.postgres: bay process exit {proc.returncode}")
    latencies = [x / 1000 for r in results for x in r["latencies_ms"]]
    commits = [x / 1000 for r in results for x in r["commit_ms"]]
    readings = sum(r["readings"] for r in results)
    bay_cpu = sum(r["cpu_s"] for r in results)
    chair_hours = n * chairs * seconds / 3600
    return {
        "bays": n, "chairs_per_bay": chairs, "seconds": seconds, "readings": readings,
        "readings_per_s": round(readings / wall, 1),
        "connections_per_bay_when_started": max(per_bay, default=0),
        "ingest_to_durable_ms": {"p50": pct(latencies, 50), "p99": pct(latencies, 99),
                                 "max": pct(latencies, 100), "samples": len(latencies)},
        "commit_ms": {"p50": pct(commits, 50), "p99": pct(commits, 99), "max": pct(commits, 100),
                      "commits": len(commits), "per_bay_per_s": round(len(commits) / n / seconds, 2)},
        "server_cpu_ms_per_commit": round(server_cpu / max(1, len(commits)) * 1000, 2),
        "bay_cpu_us_per_reading": round(bay_cpu / readings * 1e6, 1),
        "server_cpu_us_per_reading": round(server_cpu / readings * 1e6, 1),
        "server_cpu_share_of_one_core": round(server_cpu / wall, 3),
        "bay_cpu_share_of_one_core_each": round(bay_cpu / n / wall, 3),
        "wal_bytes_per_reading": round((wal1 - wal0) / readings, 1),
        "wal_kb_per_chair_hour": round((wal1 - wal0) / chair_hours / 1024),
        "db_growth_kb_per_chair_hour": round((size1 - size0) / chair_hours / 1024),
        "wal_by_resource_manager": wal_by_kind(section, bench.server.password, wal0, wal1, readings),
    }


# -- (c) export from 90 days x 30 chairs --------------------------------------------------------

_GENERATE = """
INSERT INTO {part} (id, chair, parameter, value, device_time, receive_time, device, seq, flags)
SELECT (t.s * 64 + c.c * 2) * 8 + p.k, 'c' || lpad(c.c::text, 2, '0'), p.name,
       CASE p.k WHEN 2 THEN least(100, round(97.5 + random() - 0.5))
                WHEN 3 THEN round(124 + 8 * sin(t.s / 5000.0)) WHEN 4 THEN 78 WHEN 5 THEN 93
                ELSE round(74 + c.c %% 10 + 6 * sin(t.s / 600.0 + c.c) + 3 * random() - 1.5) END,
       t.s::float8, t.s::float8, p.dev || 'c' || lpad(c.c::text, 2, '0'), t.s, 0
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS t(s)
CROSS JOIN generate_series(0, %(chairs)s - 1) AS c(c)
JOIN (VALUES (0, 'hr', 'ecg-'), (1, 'pr', 'ox-'), (2, 'spo2', 'ox-'), (3, 'nibp_sys', 'cuff-'),
             (4, 'nibp_dia', 'cuff-'), (5, 'nibp_map', 'cuff-')) AS p(k, name, dev)
  ON p.k < 3 OR (t.s - %(lo)s) %% 300 = 35
"""


def build_archive(bench: Bench, database: str, bay: str, days: range, chairs: int) -> dict:
    """A bay whose readings cover ``days`` (day 0: 2027-01-01), two 4-hour sessions a chair a
    day: the schema made by opening a PostgresStore, the months' partitions by its
    ensure_partitions, the rows generated in the server into each day's partition."""
    section = bench.section(database)
    store = StoreSection.model_validate(section).open(bay)
    assert isinstance(store, PostgresStore) and isinstance(store.database, PgDatabase)
    first, last = ARCHIVE_START + days.start * 86400, ARCHIVE_START + (days.stop - 1) * 86400
    with store.database.connect() as db:
        store.ensure_partitions(db, first)
        store.ensure_partitions(db, last)
    schema = store.database.schema
    store.close()
    t0 = time.perf_counter()
    rows, clinic_days = 0, 0
    with psycopg.connect(section["url"], password=bench.server.password, autocommit=True,
                         options=f"-c search_path={schema}") as conn:
        conn.execute("SET synchronous_commit = off")  # loading, not measuring; durable by CHECKPOINT
        for d in days:
            day = ARCHIVE_START + d * 86400
            when = dt.datetime.fromtimestamp(day, dt.UTC)
            if when.weekday() >= 5:
                continue  # an outpatient clinic: closed at weekends
            clinic_days += 1
            part = partition_name(when.year, when.month)
            for h0, h1 in SESSION_WINDOWS_H:
                cur = conn.execute(_GENERATE.format(part=part),
                                   {"lo": int(day + h0 * 3600), "hi": int(day + h1 * 3600), "chairs": chairs})
                rows += cur.rowcount
            print(f"bench.postgres: {bay}: {when:%Y-%m-%d} loaded, {rows:,} rows, "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        conn.execute("ANALYZE readings")
        conn.execute("CHECKPOINT")
        load_s = time.perf_counter() - t0
        size = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint, "
            "coalesce(sum(pg_relation_size(c.oid)), 0)::bigint "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'readings'::regclass").fetchone()
    chair_hours = clinic_days * chairs * sum(h1 - h0 for h0, h1 in SESSION_WINDOWS_H)
    return {"section": section, "bay": bay, "days": len(days), "clinic_days": clinic_days,
            "sessions_per_chair_day": len(SESSION_WINDOWS_H), "session_hours": 4,
            "chairs": chairs, "readings": rows,
            "load_seconds": round(load_s, 1), "load_rows_per_s": round(rows / load_s),
            "readings_table_mb": round(size[0] / 2**20, 1), "readings_heap_mb": round(size[1] / 2**20, 1),
            "bytes_per_reading": round(size[0] / rows, 1),
            "kb_per_chair_hour": round(size[0] / chair_hours / 1024)}


def best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


class _Sink:
    def write(self, b: bytes) -> int:
        return len(b)

    def flush(self) -> None:
        pass


def measure_exports(built: dict, day: int, chair: str, repeat: int) -> dict:
    """The 4-hour morning session of ``chair`` on ``day`` (added as a record), exported as CSV
    and FHIR, and one hour of its trend: best of ``repeat`` each, warm cache."""
    from monitor.exports import export_session

    start = ARCHIVE_START + day * 86400 + SESSION_WINDOWS_H[0][0] * 3600
    end = start + 4 * 3600
    store = StoreSection.model_validate(built["section"]).open(built["bay"])
    store.start()
    session = Session(id=f"s-{day}-{chair}", chair=chair, patient="MRN-1", protocol="", drug="", dose="",
                      planned_minutes=240, nibp_interval_s=300, observation_minutes=None,
                      state=SessionState.ENDED, started_at=start, started_by="nurse.ann",
                      ended_at=end, ended_by="nurse.ann", updated_at=end)
    store.add_records([session])
    assert store.flush(timeout=60)
    config = bay_config(built["chairs"])
    out: dict[str, Any] = {}
    try:
        for fmt in ("csv", "fhir"):
            counted = export_session(store, session, fmt, _Sink(), end + 60, config=config).readings  # type: ignore[arg-type]
            out[f"{fmt}_seconds"] = round(best(
                lambda f=fmt: export_session(store, session, f, _Sink(), end + 60, config=config),  # type: ignore[arg-type]
                repeat), 4)
            out["session_readings"] = counted
        hour = (start + 3600, start + 7200)
        out["trend_1h_readings"] = sum(1 for _ in store.iter_readings(chair, *hour))
        out["trend_1h_seconds"] = round(best(lambda: sum(1 for _ in store.iter_readings(chair, *hour)),
                                             max(9, 3 * repeat)), 4)
        query = pg_sql(f"SELECT {READING_COLS} FROM readings WHERE chair = ? AND device_time >= ? "
                       "AND device_time < ? ORDER BY device_time, id")
        assert isinstance(store.database, PgDatabase)
        with store.database.reader() as db:
            plan = [r[0] for r in db.conn.execute(  # type: ignore[attr-defined]
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query, (chair, *hour)).fetchall()]
        out["explain_trend_1h"] = plan
        scans = [line.strip().lstrip("-> ") for line in plan if "Scan " in line and " on " in line]
        out["scans"] = scans
        # every partition is visited (they split by receive_time, the query asks device_time);
        # the empty ones by a scan of nothing, the one holding the hour by its index
        out["uses_index"] = any("Index Scan" in line for line in scans) and all(
            "rows=0 " in line for line in scans if "Seq Scan" in line)
    finally:
        store.close()
    return out


def run_exports(bench: Bench, days: int, chairs: int, repeat: int) -> dict:
    middle = days // 2
    while dt.datetime.fromtimestamp(ARCHIVE_START + middle * 86400, dt.UTC).weekday() >= 5:
        middle += 1  # a clinic day
    big = build_archive(bench, "archive", "archive", range(days), chairs)
    small = build_archive(bench, "small", "small", range(middle, middle + 1), chairs)
    chair = f"c{chairs // 2:02d}"
    on_big = measure_exports(big, middle, chair, repeat)
    on_small = measure_exports(small, middle, chair, repeat)
    for built in (big, small):
        del built["section"]
    ratios = {k.replace("_seconds", "_big_vs_small"): round(on_big[k] / on_small[k], 2)
              for k in ("csv_seconds", "fhir_seconds", "trend_1h_seconds")}
    return {"big": {**big, **on_big}, "small": {**small, **on_small}, **ratios}


# -- main --------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    logging.disable(logging.WARNING)  # alarm lines would swamp the output
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it runs")
    parser.add_argument("--readings", type=int, help="(a) readings (default 240,000; quick 48,000)")
    parser.add_argument("--bays", help="(b) bay counts, comma-separated (default 1,4,16; quick 1,4)")
    parser.add_argument("--seconds", type=int, help="(b) seconds a run (default 25; quick 8)")
    parser.add_argument("--days", type=int, help="(c) days in the big bay (default 90; quick 6)")
    parser.add_argument("--only", choices=("ingest", "bays", "export"), help="one part only")
    parser.add_argument("--bay-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bay_child:
        bay_child(json.loads(args.bay_child))
        return
    readings = args.readings or (48_000 if args.quick else 240_000)
    bays = [int(n) for n in (args.bays or ("1,4" if args.quick else "1,4,16")).split(",")]
    seconds = args.seconds or (8 if args.quick else 25)
    days = args.days or (6 if args.quick else 90)
    for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background job starts with it ignored
        signal.signal(signum, _terminate)
    path = RESULTS / ("postgres-quick.json" if args.quick else "postgres.json")
    # one part alone (--only) updates its entry of the results, keeping the others'
    result: dict[str, Any] = json.loads(path.read_text()) if args.only and path.exists() else {}
    result |= {
        "benchmark": "postgres",
        "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "server": {"fsync": True, "synchronous_commit": "on", "commit_interval_ms": 200,
                   **{k: v.strip("'") for k, v in SERVER_SETTINGS.items()}},
    }
    with tempfile.TemporaryDirectory(prefix="chairside-bench-pg-") as tmp:
        bench = Bench(Path(tmp))
        try:
            result["server"]["version"] = bench.server.bindir.parent.name
            if args.only in (None, "ingest"):
                result["ingest"] = run_ingest(bench, readings, 24, 1 if args.quick else 3)
                print(json.dumps(result["ingest"]), file=sys.stderr)
            if args.only in (None, "bays"):
                result["bays"] = [run_bays(bench, n, 24, seconds) for n in bays]
                print(json.dumps(result["bays"]), file=sys.stderr)
            if args.only in (None, "export"):
                result["export"] = run_exports(bench, days, 30, 2 if args.quick else 3)
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            result.setdefault("ran_at", {})[args.only or "all"] = stamp
        finally:
            bench.close()
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
