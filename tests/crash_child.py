"""Child process for the crash-recovery test: a real core ingesting until it is killed.

Prints ``session ID`` and ``alarm ID`` once set up, then ``committed SEQ`` each time the
store commits, SEQ being the highest sequence number whose batch is on disk. Its argument is
the ``[store]`` section as JSON (a SQLite path, or a PostgreSQL URL and key file).
"""

import json
import sys
import threading
import time

from monitor.bay_store import open_bay_store
from monitor.config import parse_config
from monitor.core import Monitor
from monitor.readings import Reading

section = {**json.loads(sys.argv[1]), "commit_interval_ms": 20}
config = parse_config({"store": section, "chairs": [{"id": f"c{i}"} for i in range(1, 4)]})
store = open_bay_store(config.store, config.bay.id)
monitor = Monitor(config, store=store)
monitor.start()
session = monitor.start_session("c1", "CRASH-TEST", "nurse.ann", protocol="ketamine")
now = time.time()
monitor.ingest([Reading("c1", "nibp_sys", 210, now, now, "cuff-1", 0)])
(alarm,) = monitor.open_alarms()
print(f"session {session.id}", flush=True)
print(f"alarm {alarm.id}", flush=True)

lock = threading.Lock()
batches: list[tuple[int, int]] = []  # (ticket, highest seq in the batch)


def committed(ticket: int) -> None:
    with lock:
        done = [seq for t, seq in batches if t <= ticket]
    if done:
        print(f"committed {max(done)}", flush=True)


store.add_commit_listener(committed)
seq = 0
while True:
    now = time.time()
    batch = []
    for _ in range(20):
        seq += 1
        for chair in ("c1", "c2", "c3"):
            batch.append(Reading(chair, "hr", 60 + seq % 40, now, now, f"ox-{chair}", seq))
    result = monitor.ingest(batch)
    with lock:
        batches.append((result.ticket, seq))
    time.sleep(0.001)
