"""Export benchmark: time and peak memory of each export format for one 12-hour session at
1 Hz (HR, PR and SpO2 every second, an NIBP cuff cycle every 5 minutes) in a store holding
8 such chairs, built through a real ``Monitor`` (ManualClock, ingested a minute at a time)
into a temporary SQLite file.

Each format runs in its own fresh process: first a plain ``for r in store.iter_readings(...)``
pass over the session (the baseline: the cost of just reading the rows, same run, same warm
cache), then the export to a file (timed; the process's peak RSS, VmHWM, reset just before
the export, so its growth over the RSS before is the export's), then the export again under
``tracemalloc`` (peak Python allocation; not timed). Targets: CSV at most 1 s, PDF at most
5 s.

    python -m bench.export [--hours 12] [--chairs 8]   prints JSON, writes bench/results/export.json
    python -m bench.export --sample-report docs/report-page1.png [--sample-pdf FILE]
        the first page (PNG, 80 dpi) of a realistic 2-hour ketamine session's report
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from monitor.clock import ManualClock
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.readings import QualityFlag, Reading
from monitor.records import SessionEventKind as K
from monitor.store import SqliteStore

RESULTS = Path(__file__).parent / "results"
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
TARGETS_S = {"csv": 1.0, "pdf": 5.0}


def bay_config(db: Path, chairs: int):
    return parse_config({"store": {"path": str(db)},
                         "chairs": [{"id": f"c{i:02d}", "label": f"Chair {i + 1}"} for i in range(chairs)]})


def build(db: Path, chairs: int, hours: float) -> dict:
    """``chairs`` sessions of ``hours`` each, ingested a minute at a time; returns the ids."""
    config = bay_config(db, chairs)
    clock = ManualClock(START)
    monitor = Monitor(config, store=SqliteStore(db), clock=clock)
    monitor.start()
    ids = [monitor.start_session(c, f"MRN-{1000 + i}", "nurse.ann", protocol="ketamine").id
           for i, c in enumerate(monitor.chair_ids)]
    seconds = int(hours * 3600)
    rng = np.random.default_rng(7)
    t_all = START + np.arange(seconds, dtype=np.float64)
    series = {}
    for i, chair in enumerate(monitor.chair_ids):
        slow = 6 * np.sin(np.arange(seconds) / 600 + i)
        hr = np.round(74 + i + slow + rng.normal(0, 1.5, seconds))
        spo2 = np.round(np.clip(97.5 + rng.normal(0, 0.6, seconds), 90, 100))
        spo2[(np.arange(seconds) // 60) % 97 == 50] -= 7  # a minute's desaturation now and then
        series[chair] = (hr.tolist(), (hr + rng.normal(0, 1, seconds)).round().tolist(), spo2.tolist())
    steps = {600: (K.INFUSION_STARTED, "250 mL/h"), 1800: (K.RATE_CHANGED, "rate 125 mL/h"),
             3600: (K.NOTE, "tolerating well"), seconds - 3600: (K.OBSERVATION_STARTED, "")}
    times = t_all.tolist()
    n = 0
    t0 = time.perf_counter()
    for m0 in range(0, seconds, 60):
        clock.set(START + m0 + 60)
        batch: list[Reading] = []
        for chair in monitor.chair_ids:
            hr, pr, spo2 = series[chair]
            for s in range(m0, min(m0 + 60, seconds)):
                t = times[s]
                batch += [Reading(chair, "hr", hr[s], t, t, f"ecg-{chair}", s),
                          Reading(chair, "pr", pr[s], t, t, f"ox-{chair}", s),
                          Reading(chair, "spo2", spo2[s], t, t, f"ox-{chair}", s,
                                  int(QualityFlag.LOW_PERFUSION) if s % 3600 == 7 else 0)]
                if s % 300 == 35:  # a cuff cycle every 5 minutes, its values 35 s after the start
                    sys_ = float(round(124 + 8 * np.sin(s / 5000)))
                    mean = float(round(78 + (sys_ - 78) / 3))
                    cycle = (("nibp_sys", sys_), ("nibp_dia", 78.0), ("nibp_map", mean))
                    batch += [Reading(chair, k, v, t, t, f"cuff-{chair}", s) for k, v in cycle]
        n += monitor.ingest(batch).accepted
        monitor.tick()
        for at, (kind, detail) in steps.items():
            if m0 <= at < m0 + 60:
                for sid in ids:
                    monitor.session_step(sid, kind, "nurse.ann", detail)
    clock.set(START + seconds)
    for sid in ids:
        monitor.end_session(sid, "nurse.ann")
    assert monitor.store is not None and monitor.store.flush(timeout=300)
    ingest_s = time.perf_counter() - t0
    monitor.close()
    return {"session_ids": ids, "readings": n, "ingest_seconds": round(ingest_s, 2)}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """VmHWM: this process image's peak resident memory. (``ru_maxrss`` is not used: Linux
    carries it over from the parent across fork and exec, so a child started by a big parent
    reports the parent's peak.)"""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+), so that the peak that follows is the export's."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class _Sink:
    def write(self, b: bytes) -> int:
        return len(b)

    def flush(self) -> None:
        pass


def measure(db: Path, chairs: int, session_id: str, fmt: str, out: Path) -> dict:
    """One format, in this (fresh) process."""
    from monitor.exports import export_session
    if fmt == "pdf":  # its libraries are imported on first use: not part of the export's time
        import monitor.exports.pdf_report  # noqa: F401

    config = bay_config(db, chairs)
    store = SqliteStore(db)
    session = store.get_session(session_id)
    assert session is not None and session.ended_at is not None
    now = session.ended_at + 60
    t0 = time.perf_counter()
    n = sum(1 for _ in store.iter_readings(session.chair, session.started_at, session.ended_at))
    baseline_s = time.perf_counter() - t0
    gc.collect()
    peak_reset = reset_peak_rss()
    rss_before = rss_bytes()
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        result = export_session(store, session, fmt, fh, now, config=config)
    seconds = time.perf_counter() - t0
    peak_rss = peak_rss_bytes()
    tracemalloc.start()
    export_session(store, session, fmt, _Sink(), now, config=config)  # type: ignore[arg-type]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.close()
    assert result.readings == n
    mib = 2**20
    return {
        "format": fmt, "readings": n, "seconds": round(seconds, 3),
        "baseline_iter_readings_seconds": round(baseline_s, 3),
        "vs_baseline": round(seconds / baseline_s, 1),
        "output_mb": round(out.stat().st_size / mib, 2),
        "tracemalloc_peak_mb": round(peak / mib, 2),
        "rss_before_export_mb": round(rss_before / mib, 1),
        "peak_rss_mb": round(peak_rss / mib, 1),
        **({"peak_rss_growth_during_export_mb": round(max(0, peak_rss - rss_before) / mib, 1)}
           if peak_reset else {}),
        **({"target_seconds": TARGETS_S[fmt], "meets_target": seconds <= TARGETS_S[fmt]}
           if fmt in TARGETS_S else {}),
    }


def run(hours: float, chairs: int) -> dict:
    from monitor.exports import FORMATS, export_filename

    with tempfile.TemporaryDirectory(prefix="chairside-bench-export-") as tmp:
        db = Path(tmp) / "bench.db"
        built = build(db, chairs, hours)
        sid = built["session_ids"][0]
        results = []
        for fmt in FORMATS:
            out = Path(tmp) / f"out-{fmt}"
            proc = subprocess.run(
                [sys.executable, "-m", "bench.export", "--measure", fmt, "--db", str(db), "--session", sid,
                 "--chairs", str(chairs), "--out", str(out)],
                check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
            results.append(json.loads(proc.stdout))
            out.unlink()
        with SqliteStore(db) as store:
            session = store.get_session(sid)
            assert session is not None
            names = {f: export_filename(session, f) for f in FORMATS}
    return {
        "benchmark": "export",
        "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
        "session": {"hours": hours, "continuous": "hr, pr, spo2 at 1 Hz", "nibp_every_s": 300,
                    "readings": results[0]["readings"], "chairs_in_store": chairs,
                    "store_readings": built["readings"], "build_ingest_seconds": built["ingest_seconds"]},
        "formats": {r["format"]: {k: v for k, v in r.items() if k != "format"} for r in results},
        "file_names": names,
    }


def sample_report(png: Path, pdf: Path | None = None) -> Path:
    """A realistic ketamine session (simulated patient with a tachycardia, a hypertensive NIBP
    and a desaturation), its PDF report and the PNG of the report's first page."""
    from monitor.exports import export_session
    from simulators.patient import Effect, PatientModel

    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = pdf or Path(tmp) / "report.pdf"
        db = Path(tmp) / "sample.db"
        config = parse_config({"store": {"path": str(db)},
                               "bay": {"id": "infusion-2", "timezone": "Europe/Berlin"},
                               "chairs": [{"id": "c04", "label": "Chair 4"}]})
        clock = ManualClock(START + 3600)
        monitor = Monitor(config, store=SqliteStore(db), clock=clock)
        monitor.start()
        model = PatientModel(seed=11, nibp_interval_s=300, effects=[
            Effect(1500, 900, "hr", 44, ramp_s=240),
            Effect(1500, 700, "nibp", 52, ramp_s=0), Effect(4380, 100, "spo2", -9, ramp_s=20),
            Effect(6000, 40, "spo2", flags=int(QualityFlag.SENSOR_OFF), no_value=True, ramp_s=0)])
        s = monitor.start_session("c04", "MRN 20931187", "rn.okafor", protocol="ketamine")
        script = {
            240: (K.INFUSION_STARTED, "rn.okafor", "0.2 mg/kg/h via left forearm cannula"),
            1560: (K.NOTE, "rn.okafor", "Reports feeling 'floaty'; reassured, lights dimmed."),
            1820: (K.RATE_CHANGED, "rn.okafor", "rate reduced to 0.1 mg/kg/h after discussion with Dr Haas"),
            2700: (K.NOTE, "dr.haas", "HR and BP settling; continue at reduced rate."),
            3840: (K.INFUSION_STOPPED, "rn.okafor", "infusion complete, line flushed"),
            3845: (K.OBSERVATION_STARTED, "rn.okafor", ""),
            6900: (K.NOTE, "rn.okafor", "Alert, steady on feet; discharged with escort."),
        }
        paused = False
        for sample in model.run(0, 7200):
            t = clock.now()
            rs = []
            for k, v in sample.values.items():
                device = "cuff-04" if k.startswith("nibp") else ("ecg-04" if k == "hr" else "rad97-0412")
                flags = sample.flags if device == "rad97-0412" else 0
                value = None if v is None else float(v)
                rs.append(Reading("c04", k, value, t, t, device, int(sample.t), flags))
            monitor.ingest(rs)
            monitor.tick()
            step = script.get(int(sample.t))
            if step:
                monitor.session_step(s.id, step[0], step[1], step[2])
            for a in monitor.open_alarms():
                waited = t - a.updated_at
                if a.code == "NIBP_SYS_HIGH" and a.state.value == "active" and not paused and waited >= 8:
                    monitor.pause_audio("c04", "rn.lind")
                    paused = True
                elif a.state.value == "active" and waited >= 20:
                    monitor.acknowledge(a.id, "rn.okafor" if a.code == "HR_HIGH" else "rn.lind")
            clock.advance(1)
        s = monitor.end_session(s.id, "rn.okafor")
        assert monitor.store is not None and monitor.store.flush(timeout=30)
        with pdf.open("wb") as fh:
            export_session(monitor.store, s, "pdf", fh, clock.now() + 120, config=config)
        monitor.close()
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                        str(png.with_suffix(""))], check=True)
    return png


def main() -> None:
    logging.disable(logging.WARNING)  # alarm lines would swamp the output
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--chairs", type=int, default=8)
    parser.add_argument("--sample-report", type=Path, metavar="PNG", default=None)
    parser.add_argument("--sample-pdf", type=Path, metavar="PDF", default=None)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--session", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.db, args.chairs, args.session, args.measure, args.out)))
        return
    if args.sample_report:
        if shutil.which("pdftoppm") is None:
            sys.exit("pdftoppm (poppler-utils) is needed for --sample-report")
        print(sample_report(args.sample_report, args.sample_pdf))
        return
    result = run(args.hours, args.chairs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
