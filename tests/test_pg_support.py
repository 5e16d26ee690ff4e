"""The private PostgreSQL the store's tests run against (tests/pg_support.py): its own server on
its own port behind a password, durable across a crash, leaving no process behind, several at
once. The tests that stop or kill a server use one of their own (``pg_server_factory``)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import psycopg
import pytest
from pg_support import PgServer, port_is_free, process_alive


def test_the_server_takes_the_superuser_with_its_password_on_its_own_port(pg_server: PgServer):
    assert pg_server.port != 5432  # never the machine's own server
    with psycopg.connect(pg_server.url("postgres")) as conn:
        port, datadir, user = conn.execute(
            "SELECT inet_server_port(), current_setting('data_directory'), current_user").fetchone()
    assert port == pg_server.port
    assert Path(datadir) == pg_server.datadir and pg_server.datadir.is_relative_to("/tmp")
    assert user == "postgres"
    if os.geteuid() == 0:  # initdb refuses root: the server runs as the postgres system user
        owner = Path(f"/proc/{pg_server.pid}").stat().st_uid
        assert owner == pwd.getpwnam("postgres").pw_uid


def test_loopback_connections_without_the_password_are_refused(pg_server: PgServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    no_passfile = str(tmp_path / "no-pgpass")
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(host="127.0.0.1", port=pg_server.port, user="postgres", dbname="postgres",
                        passfile=no_passfile)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_server.url("postgres", password="not-" + pg_server.password),
                        passfile=no_passfile)


def test_each_test_gets_a_fresh_empty_database(pg_url: str, pg_server: PgServer):
    with psycopg.connect(pg_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                              "('pg_catalog', 'information_schema')").fetchone()[0]
    assert name.startswith("t_") and tables == 0


def test_a_database_is_dropped_even_with_a_session_still_on_it(pg_server: PgServer):
    url = pg_server.create_database("t_left_open")
    with psycopg.connect(url) as conn:
        pg_server.drop_database("t_left_open")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with pg_server.connect() as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = 't_left_open'")
        assert left.fetchone()[0] == 0


def test_committed_rows_survive_a_kill_9_and_no_process_of_the_server_remains(pg_server_factory):
    server = pg_server_factory()
    with psycopg.connect(server.url()) as conn:
        conn.execute("CREATE TABLE r (n int PRIMARY KEY, v text)")
        conn.commit()
        for n in range(200):  # each its own commit, none checkpointed before the crash
            conn.execute("INSERT INTO r VALUES (%s, %s)", (n, f"v{n}"))
            conn.commit()
    pids = server.server_pids()
    assert len(pids) > 1  # the postmaster and its helpers
    server.kill9()
    assert [p for p in pids if process_alive(p)] == []
    assert server.pid is None

    server.start()
    with psycopg.connect(server.url()) as conn:
        rows = conn.execute("SELECT n, v FROM r ORDER BY n").fetchall()
    assert rows == [(n, f"v{n}") for n in range(200)]
    assert "automatic recovery in progress" in server.log()  # it did recover from a crash


def test_stop_leaves_no_process_and_frees_the_port(pg_server_factory):
    server = pg_server_factory()
    with psycopg.connect(server.url()):  # a session open at the stop: a fast shutdown ends it
        pids = server.server_pids()
        server.stop()
    assert [p for p in pids if process_alive(p)] == []
    assert port_is_free(server.port)
    server.restart()  # and it starts again on the same port
    with psycopg.connect(server.url()) as conn:
        assert conn.execute("SELECT inet_server_port()").fetchone()[0] == server.port


def test_cleanup_stops_the_server_and_removes_its_folder(pg_server_factory):
    server = pg_server_factory()
    pids = server.server_pids()
    server.cleanup()
    assert [p for p in pids if process_alive(p)] == []
    assert not server.root.exists()
    server.cleanup()  # twice is harmless (the factory's teardown calls it again)


def test_two_servers_run_side_by_side_each_with_its_own_data(pg_server_factory):
    fast, durable = pg_server_factory(), pg_server_factory(fsync=True)
    assert fast.port != durable.port and fast.password != durable.password
    with psycopg.connect(fast.url()) as a, psycopg.connect(durable.url()) as b:
        a.execute("CREATE TABLE only_here (n int)")
        a.commit()
        assert b.execute("SELECT to_regclass('only_here')").fetchone()[0] is None
        assert a.execute("SHOW fsync").fetchone()[0] == "off"
        assert b.execute("SHOW fsync").fetchone()[0] == "on"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(fast.url(password=durable.password), passfile=os.devnull)
