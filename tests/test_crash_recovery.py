"""A real child process ingests, is killed with SIGKILL mid-stream, and the bay comes back."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import bay_config
from store_backends import Backend

from monitor.core import Monitor
from monitor.records import AlarmState, SessionState

CHILD = Path(__file__).with_name("crash_child.py")


def read_lines(proc: subprocess.Popen[str], out: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.put(line.strip())


def test_sigkill_mid_stream_loses_no_committed_reading(tmp_path, backend: Backend):
    proc = subprocess.Popen([sys.executable, str(CHILD), json.dumps(backend.section)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parent.parent)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(proc, lines), daemon=True)
    reader.start()
    found: dict[str, str] = {}
    commits = []
    try:
        deadline = time.monotonic() + 60
        while len(commits) < 20:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            key, value = line.split()
            if key == "committed":
                commits.append(int(value))
            else:
                found[key] = value
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    while not lines.empty():  # commit lines printed before the kill landed
        key, value = lines.get().split()
        if key == "committed":
            commits.append(int(value))
    last = max(commits)

    if backend.name == "sqlite":
        assert backend.sql("PRAGMA integrity_check") == [("ok",)]
    dupes = backend.sql("SELECT chair, seq, COUNT(*) FROM readings WHERE parameter = 'hr'"
                        " GROUP BY chair, seq HAVING COUNT(*) > 1", bay="bay1")
    assert dupes == []
    for chair in ("c1", "c2", "c3"):
        seqs = [s for (s,) in backend.sql("SELECT seq FROM readings WHERE chair = ? AND parameter = 'hr' "
                                          "ORDER BY seq", (chair,), bay="bay1")]
        assert seqs[:last] == list(range(1, last + 1))  # every committed one, once, in order
        assert seqs == list(range(1, len(seqs) + 1))  # and nothing after a gap

    config = bay_config(tmp_path)
    monitor = Monitor(config, store=backend.open("bay1"))
    monitor.start()
    try:
        session = monitor.session(found["session"])
        assert session.state is SessionState.MONITORING and session.patient == "CRASH-TEST"
        assert monitor.status("c1").session == session
        (alarm,) = monitor.open_alarms()
        assert alarm.id == int(found["alarm"]) and alarm.state is AlarmState.ACTIVE
        assert alarm.message == "NIBP sys 210 mmHg > 200"
        assert monitor.trend("c2", "hr", 3600, max_points=10**6).times.size >= last
    finally:
        monitor.close()
