"""One leader per bay among Chairside processes sharing a PostgreSQL store (issue 16): a
session-level advisory lock held on a connection of its own. Real PostgreSQL, real
processes; deadlines from conftest.scaled, no fixed sleeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import scaled, wait_until
from store_backends import Backend

from monitor.bay_store import bay_database
from monitor.config_sections import StoreSection
from monitor.store.leadership import LEADER_LOCK_CLASS, Leadership

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from monitor.bay_store import bay_database
from monitor.config_sections import StoreSection
from monitor.store.leadership import LEADER_LOCK_CLASS, Leadership
section = StoreSection.model_validate(json.loads(sys.argv[1]))
lead = Leadership(bay_database(section, sys.argv[2]), check_s=0.1,
                  on_change=lambda leads: print("leads" if leads else "follows", flush=True))
lead.start()
sys.stdin.read()  # until killed
"""


def contender(backend: Backend, bay: str = "bay1", **kw: Any) -> tuple[Leadership, list[bool]]:
    seen: list[bool] = []
    section = StoreSection.model_validate(backend.section)
    return Leadership(bay_database(section, bay), seen.append, check_s=0.05, **kw), seen


def test_exactly_one_of_two_leads_and_a_clean_stop_hands_over(pg_backend: Backend) -> None:
    a, a_seen = contender(pg_backend)
    b, b_seen = contender(pg_backend)
    a.start()
    wait_until(lambda: a.is_leader, 10, "the first to lead")
    b.start()
    try:
        wait_until(lambda: b.attempts >= 2, 5, "the second to try")  # and wait
        assert not b.is_leader and a_seen == [True] and b_seen == []
        a.stop()
        wait_until(lambda: b.is_leader, 10, "the standby to lead after a clean stop")
        assert b_seen == [True] and not a.is_leader
    finally:
        a.stop()
        b.stop()


def test_another_bay_has_its_own_leader(pg_backend: Backend) -> None:
    a, _ = contender(pg_backend, "neuro")
    b, _ = contender(pg_backend, "onco")
    a.start()
    b.start()
    try:
        wait_until(lambda: a.is_leader and b.is_leader, 10, "each bay's leader")
    finally:
        a.stop()
        b.stop()


def test_a_leader_killed_with_sigkill_is_replaced(pg_backend: Backend) -> None:
    import json

    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(pg_backend.section), "bay1"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    standby, seen = contender(pg_backend)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "leads"
        standby.start()
        wait_until(lambda: standby.attempts >= 2, 5, "the standby to try")
        assert not standby.is_leader and standby.last_error is None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(scaled(10))
        wait_until(lambda: standby.is_leader, 10, "the standby to lead after kill -9")
        assert seen == [True]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        standby.stop()


def test_a_leader_whose_connection_is_cut_steps_down_and_the_standby_leads(pg_backend: Backend) -> None:
    a, a_seen = contender(pg_backend)
    b, b_seen = contender(pg_backend)
    a.start()
    wait_until(lambda: a.is_leader, 10, "the first to lead")
    b.start()
    try:
        killed = pg_backend.sql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE granted AND "
                                "locktype = 'advisory' AND classid = ?", (LEADER_LOCK_CLASS,))
        assert killed == [(True,)]
        wait_until(lambda: a_seen == [True, False], 10, "the old leader to step down")
        wait_until(lambda: b.is_leader, 10, "the standby to lead")
        wait_until(lambda: a.last_error is None and not a.is_leader, 10, "the old one to follow")
        assert b_seen == [True]
    finally:
        a.stop()
        b.stop()


def test_a_leader_that_cannot_reach_the_database_steps_down(pg_server_factory: Any,
                                                            tmp_path: Path) -> None:
    server = pg_server_factory()
    password = tmp_path / "pw"
    password.write_text(server.password)
    section = {"url": f"postgresql://postgres@127.0.0.1:{server.port}/postgres",
               "password_file": str(password), "audit_key_file": str(tmp_path / "key")}
    own = Backend("postgresql", section, tmp_path / "key")
    lead, seen = contender(own)
    lead.start()
    try:
        wait_until(lambda: lead.is_leader, 10, "leading")
        server.stop()
        wait_until(lambda: seen == [True, False], 10, "stepping down without the database")
        assert "unreachable" in (lead.last_error or "")
        server.start()
        wait_until(lambda: lead.is_leader, 10, "leading again once it is back")
    finally:
        lead.stop()


