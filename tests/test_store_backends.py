"""The store's contract on both backends (SQLite and a private PostgreSQL), beyond the
round trips of tests/test_store.py: the append-only audit trail, the ledger finding
tampering, the schema version; and what only PostgreSQL has: bays side by side in one
database, monthly partitions, a server restarted or gone mid-ingest."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psycopg
import pytest
from conftest import Harness, scaled, wait_until
from pg_support import PgServer
from store_backends import Backend

from monitor.audit import verify_chain, verify_records
from monitor.readings import Reading
from monitor.records import OperatorAction
from monitor.store import StoreError
from monitor.store.db import DbError, PgDatabase
from monitor.store.postgres import PostgresStore, month_bounds, partition_name
from monitor.store.schema import MIGRATIONS

T0 = time.time()


def reading(seq: int, chair: str = "c1", t: float | None = None) -> Reading:
    t = T0 + seq if t is None else t
    return Reading(chair, "hr", 60.0 + seq % 40, t, t, f"ox-{chair}", seq, 0)


def refused(backend: Backend, query: str) -> str:
    """What the database said refusing ``query`` (run as the database's owner)."""
    errors: tuple[type[BaseException], ...] = (psycopg.Error, DbError)
    with pytest.raises(errors) as info:
        backend.sql(query)
    return str(info.value)


def test_the_audit_trail_is_append_only_even_for_the_databases_owner(backend: Backend) -> None:
    with backend.open() as store:
        store.add_records([OperatorAction(T0, "nurse.ann", "acknowledge", "c1", "1", {})])
        assert store.flush(scaled(10))
    assert "append-only" in refused(backend, "UPDATE operator_actions SET user = 'someone else'")
    assert "append-only" in refused(backend, "DELETE FROM operator_actions")
    assert "cannot be deleted" in refused(backend, "DELETE FROM audit_head")
    if backend.name == "postgresql":  # TRUNCATE skips row triggers: a statement trigger stops it
        assert "append-only" in refused(backend, "TRUNCATE operator_actions")
    assert backend.sql("SELECT user, action FROM operator_actions") == [("nurse.ann", "acknowledge")]
    assert verify_chain(backend.database()).ok


def test_the_ledger_verifies_and_finds_a_reading_changed_behind_its_back(backend: Backend) -> None:
    with backend.open() as store:
        store.add_readings([reading(i) for i in range(50)])
        store.add_records([OperatorAction(T0, "nurse.ann", "session_start", "c1", "s1", {})])
        assert store.flush(scaled(10))
    records = verify_records(backend.database(), backend.key_file)
    assert records.ok, records.problems
    assert records.sealed["readings"] == 50 and records.sealed["operator_actions"] == 1
    backend.sql("UPDATE readings SET value = 99 WHERE seq = 7")
    records = verify_records(backend.database(), backend.key_file)
    assert not records.ok
    assert records.problems == ["readings: one or more of rows 1-50 changed (sealed by ledger entry 1)"]


def test_a_schema_newer_than_this_code_is_refused_naming_the_database(backend: Backend) -> None:
    backend.open().close()
    if backend.name == "sqlite":
        backend.sql("PRAGMA user_version = 99")
    else:
        backend.sql("UPDATE schema_version SET version = 99")
    known = len(MIGRATIONS)
    with pytest.raises(StoreError, match=rf"schema version 99, newer than this Chairside knows \({known}\)"):
        backend.open()


# ---- PostgreSQL only ------------------------------------------------------------------------
def test_bays_in_one_database_see_nothing_of_each_other(pg_backend: Backend) -> None:
    with pg_backend.open("neuro") as neuro, pg_backend.open("onco") as onco:
        neuro.add_readings([reading(i) for i in range(10)])
        neuro.add_records([OperatorAction(T0, "nurse.ann", "acknowledge", "c1", "1", {})])
        assert neuro.flush(scaled(10))
        assert neuro.count_readings() == 10 and len(neuro.operator_actions()) == 1
        assert onco.count_readings() == 0 and onco.operator_actions() == []
        assert list(onco.iter_readings("c1", 0, None)) == [] and onco.device_seqs() == {}
    bays = pg_backend.sql("SELECT id, schema_name FROM chairside_site.bays ORDER BY id")
    assert bays == [("neuro", "bay_neuro"), ("onco", "bay_onco")]
    assert verify_records(pg_backend.database("onco"), pg_backend.key_file).ok


def test_two_bay_ids_that_would_share_a_schema_are_refused(pg_backend: Backend) -> None:
    pg_backend.open("ward-1").close()
    with pytest.raises(StoreError, match=r"'ward_1' would share the schema bay_ward_1 with bay 'ward-1'"):
        pg_backend.open("ward_1")


def test_readings_go_into_the_month_they_were_received_and_months_are_made_ahead(pg_backend: Backend) -> None:
    now = time.time()
    with pg_backend.open() as store:
        assert isinstance(store, PostgresStore)
        later = now + 400 * 86400  # a year ahead: made when asked for that time
        with store.database.connect() as db:
            made = store.ensure_partitions(db, later)  # type: ignore[arg-type]
            assert len(made) == store.PARTITIONS_AHEAD + 1 and store.ensure_partitions(db, later) == []
        store.add_readings([reading(1, t=now), reading(2, t=later)])
        assert store.flush(scaled(10))
    where = dict(pg_backend.sql("SELECT seq, tableoid::regclass::text FROM readings"))
    this = time.gmtime(now)
    assert where[1] == partition_name(this.tm_year, this.tm_mon)
    that = time.gmtime(later)
    assert where[2] == partition_name(that.tm_year, that.tm_mon)
    lo, hi = month_bounds(this.tm_year, this.tm_mon)
    assert lo <= now < hi and hi - lo >= 28 * 86400


def _pg_backend_on(server: PgServer, backend_like: Backend, tmp_path: Any) -> Backend:
    server.create_database("bay")
    password = tmp_path / "own-password"
    password.write_text(server.password)
    section = {"url": f"postgresql://postgres@127.0.0.1:{server.port}/bay",
               "password_file": str(password), "audit_key_file": str(backend_like.key_file)}
    return Backend("postgresql", section, backend_like.key_file)


def test_a_postgresql_restart_mid_ingest_loses_and_duplicates_nothing(
        pg_backend: Backend, pg_server_factory: Any, tmp_path: Any) -> None:
    server = pg_server_factory()
    own = _pg_backend_on(server, pg_backend, tmp_path)
    store = own.open(commit_interval=0.02)
    store.start()
    stop = threading.Event()
    submitted: list[int] = []

    def produce() -> None:
        seq = 0
        while not stop.is_set():
            store.add_readings([reading(seq)])
            submitted.append(seq)
            seq += 1
            stop.wait(0.002)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_until(lambda: store.stats()["readings_written"] > 200, 20, "readings written")
        server.kill9()
        wait_until(lambda: store.stats()["failing"] is not None, 10, "the writer to notice")
        assert "database unreachable" in store.stats()["failing"]
        server.start()
        wait_until(lambda: store.stats()["failing"] is None and store.stats()["failed_batches"] > 0,
                   30, "the writer to write again")
    finally:
        stop.set()
        producer.join()
    assert store.flush(scaled(20))
    store.close()
    seqs = [s for (s,) in own.sql("SELECT seq FROM readings ORDER BY seq")]
    assert seqs == submitted == list(range(len(submitted)))  # each once, none lost


def test_a_database_outage_is_a_technical_alarm_on_every_screen_and_ingest_resumes(
        pg_backend: Backend, pg_server_factory: Any, tmp_path: Any) -> None:
    from dashboard.live import LiveBay

    server = pg_server_factory()
    own = _pg_backend_on(server, pg_backend, tmp_path)
    harness = Harness(tmp_path, store=own.section)
    try:
        live = LiveBay(harness.monitor, max_age=0)
        harness.feed("spo2", 97, seconds=3)
        harness.flush()
        assert live.recording_problem() is None and live.feed.build()["bay_alarm"] == ""
        server.stop()
        harness.feed("spo2", 96, seconds=3)  # taken in while the database is away
        wait_until(lambda: live.recording_problem() is not None, 5, "the outage on the screen")
        view = live.feed.build()
        assert view["bay_alarm"].startswith("RECORDING STOPPED: database unreachable")
        assert view["sound"] == "medium"  # it sounds, though no chair alarm does
        # the bay goes on meanwhile: a session starts, an alarm is raised, all held in memory
        session = harness.monitor.start_session("c2", "MRN 7", "nurse.ann", protocol="ketamine")
        harness.feed("spo2", 80, seconds=30, chair="c2")
        (alarm,) = [a for a in harness.monitor.open_alarms() if a.chair == "c2"]
        assert harness.monitor.store_stats()["pending"] >= 33
        server.start()
        wait_until(lambda: live.recording_problem() is None, 30, "recording again")
        harness.flush()
        assert harness.monitor.store.count_readings("c1") == 6  # type: ignore[union-attr]
        assert harness.monitor.store.count_readings("c2") == 30  # type: ignore[union-attr]
        restarted = harness.restart()  # the bay restored from PostgreSQL alone
        assert restarted.session(session.id).patient == "MRN 7"
        restored = [(a.id, a.state) for a in restarted.open_alarms() if a.chair == "c2"]
        assert restored == [(alarm.id, alarm.state)]
    finally:
        harness.monitor.close()


def test_a_wrong_password_or_a_missing_password_file_is_a_clear_error(
        pg_backend: Backend, tmp_path: Any) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    db = PgDatabase(pg_backend.section["url"], bay="x", password_file=wrong)
    with pytest.raises(DbError, match=r"database unreachable.*password authentication failed"):
        db.connect()
    with pytest.raises(StoreError, match=r"cannot read the database password file .*missing"):
        PgDatabase(pg_backend.section["url"], bay="x", password_file=tmp_path / "missing")
    assert "not the password" not in PgDatabase(pg_backend.section["url"] , bay="x").name


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS)))
def test_a_database_of_every_earlier_version_migrates_keeping_its_data(
        backend: Backend, version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.store.schema as schema

    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:version])
    with backend.open() as old:  # what a Chairside of that version wrote
        old.add_readings([reading(i) for i in range(10)])
        old.add_records([OperatorAction(T0, "nurse.ann", "acknowledge", "c1", "1", {"n": 1})])
        assert old.flush(scaled(10))
    monkeypatch.undo()
    with backend.open() as new:
        new.add_readings([reading(i) for i in range(10, 15)])
        new.add_records([OperatorAction(T0 + 1, "nurse.bob", "acknowledge", "c1", "2", {})])
        assert new.flush(scaled(10))
        assert [r.seq for r in new.iter_readings("c1", 0, None)] == list(range(15))
        assert [a.user for a in new.operator_actions()] == ["nurse.ann", "nurse.bob"]
    version_now = backend.sql("PRAGMA user_version" if backend.name == "sqlite"
                              else "SELECT version FROM schema_version")
    assert version_now == [(len(MIGRATIONS),)]
    assert verify_chain(backend.database()).ok
    assert verify_records(backend.database(), backend.key_file).ok


def _certificate(folder: Any, name: str) -> tuple[Any, Any]:
    """A self-signed certificate for 127.0.0.1 (its own CA), and its key."""
    import subprocess

    crt, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True,
                   timeout=scaled(60))
    return crt, key


def test_tls_settings_in_the_url_reach_libpq_and_the_password_may_come_from_the_environment(
        pg_backend: Backend, pg_server_factory: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    server = pg_server_factory()
    server.stop()
    folder = server.mkdir("tls")
    crt, key = _certificate(tmp_path, "server")
    for f in (crt, key):
        shutil.copy(f, folder / f.name)
        shutil.chown(folder / f.name, *(("postgres", "postgres") if os.geteuid() == 0 else (None, None)))
        (folder / f.name).chmod(0o600)
    server.configure(ssl="on", ssl_cert_file=f"'{folder / crt.name}'", ssl_key_file=f"'{folder / key.name}'")
    server.start()
    server.create_database("bay")
    base = f"postgresql://postgres@127.0.0.1:{server.port}/bay"
    monkeypatch.setenv("PGPASSWORD", server.password)  # no password_file: libpq takes it from here
    verified = f"{base}?sslmode=verify-full&sslrootcert={crt}"
    store = PostgresStore(verified, bay="tls", audit_key_file=pg_backend.key_file)
    try:
        with store.database.reader() as db:
            ssl = db.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            assert ssl == (True,)
    finally:
        store.close()
    other, _ = _certificate(tmp_path, "stranger")  # a CA that did not sign the server's certificate
    with pytest.raises(StoreError, match=r"database unreachable.*certificate verify failed"):
        PostgresStore(f"{base}?sslmode=verify-full&sslrootcert={other}", bay="tls",
                      audit_key_file=pg_backend.key_file)


def test_a_server_that_stepped_down_cannot_write_after_its_successor_took_over(pg_backend: Backend) -> None:
    """Fencing: the new leader takes the next leader epoch; the old one's later batches are
    refused (not retried), so what the new leader read when it started is all it wrote."""
    old, new = pg_backend.open(), pg_backend.open()
    try:
        assert old.fence("server-a") == 1
        old.start()
        assert old.wait_durable(old.add_readings([reading(1)]), scaled(10))
        assert new.fence("server-b") == 2  # the standby takes over; the old one writes on
        new.start()
        ack = OperatorAction(T0, "nurse", "acknowledge", None, "1", {})
        late = old.add(readings=[reading(2)], records=[ack])
        assert not old.wait_durable(late, 1.0)  # refused: never durable here
        wait_until(lambda: old.stats()["readings_fenced"] == 1, 10, "the late batch refused")
        assert old.stats()["records_fenced"] == 1 and old.stats()["pending"] == 0
        assert new.wait_durable(new.add_readings([reading(3)]), scaled(10))
    finally:
        old.close(timeout=5)
        new.close()
    assert [s for (s,) in pg_backend.sql("SELECT seq FROM readings ORDER BY id")] == [1, 3]
    assert pg_backend.sql("SELECT epoch, server FROM leader_epoch") == [(2, "server-b")]
    assert pg_backend.sql("SELECT count(*) FROM operator_actions") == [(0,)]


def test_two_servers_writing_one_bay_at_once_never_interleave_their_batches(pg_backend: Backend) -> None:
    """A leader stepping down while the standby takes over may both write for a moment: the
    bay's write lock keeps ids, the audit chain and the ledger whole."""
    stores = [pg_backend.open(), pg_backend.open()]
    go = threading.Barrier(2)

    def write(store: Any, chair: str, who: str) -> None:
        go.wait()
        for n in range(30):
            store.add(readings=[reading(n * 500 + k, chair=chair) for k in range(500)],
                      records=[OperatorAction(T0 + n, who, "acknowledge", None, str(n), {})])
            assert store.flush(scaled(20))

    threads = [threading.Thread(target=write, args=(store, f"c{i}", f"nurse.{i}"))
               for i, store in enumerate(stores)]
    try:
        for store in stores:
            store.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for store in stores:
            store.close()
    ids = [i for (i,) in pg_backend.sql("SELECT id FROM readings ORDER BY id")]
    assert ids == list(range(1, 30_001))  # 30 000 readings, each its own id
    assert verify_chain(pg_backend.database()).ok
    records = verify_records(pg_backend.database(), pg_backend.key_file)
    assert records.ok, records.problems
    assert records.sealed["operator_actions"] == 60
