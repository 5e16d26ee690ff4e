"""docs/deploy-postgresql.md does what it says: its role script, run as written against a real
PostgreSQL, gives Chairside's login exactly what it needs (its own schemas, tables and
partitions; no roles, no databases, nothing in ``public``), the reporting role read access to
what Chairside creates later and no writes, and nobody else a way in; its nightly backup script
and its restore commands carry a bay's data to a fresh server unchanged; its point-in-time
recovery (WAL archive, base backup, recovery target) brings back the moment before a mistake.

The SQL and the commands are taken from the page itself (its ```sql and ```sh blocks), so a
change to the page that breaks them fails here. Only ``runuser -u postgres --`` is left out (the
test reaches its own server over TCP as the superuser) and psql's interactive ``\\password`` is
replaced by ALTER ROLE with a test password."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import scaled, wait_until
from pg_support import PgServer
from psycopg import errors, sql

from monitor.audit import verify_chain, verify_records
from monitor.readings import Reading
from monitor.records import OperatorAction
from monitor.store.postgres import PostgresStore

DOC = Path(__file__).resolve().parent.parent / "docs" / "deploy-postgresql.md"
PASSWORDS = {"chairside_app": "app-test-pw-1", "chairside_report": "report-test-pw-2"}


def doc_blocks(lang: str) -> list[str]:
    """The page's fenced blocks of ``lang``, de-indented (blocks inside list items)."""
    found = re.findall(rf"^([ \t]*)```{lang}\n(.*?)^\1```", DOC.read_text(), re.M | re.S)
    return [textwrap.dedent(body) for _, body in found]


def doc_block(lang: str, marker: str) -> str:
    matching = [b for b in doc_blocks(lang) if marker in b]
    assert len(matching) == 1, f"docs/deploy-postgresql.md: expected one ```{lang} block with {marker!r}"
    return matching[0]


def doc_line(prefix: str) -> str:
    """The one command line of the page's ```sh blocks that starts with ``prefix``."""
    lines = {line for block in doc_blocks("sh") for line in block.splitlines() if line.startswith(prefix)}
    assert len(lines) == 1, f"docs/deploy-postgresql.md: expected one command {prefix!r}, found {lines}"
    return lines.pop()


def run_doc_command(server: PgServer, line: str, cwd: Path, replace: dict[str, str] | None = None,
                    as_system_user: bool = False) -> str:
    """A documented ``runuser -u postgres -- ...`` line, its example paths replaced by the
    test's, run against ``server`` as its superuser; ``as_system_user``: as the system user
    the server runs as (files it must own), through the page's own runuser when root."""
    for example, actual in (replace or {}).items():
        line = line.replace(example, actual)
    runuser, args = "runuser -u postgres -- ", shlex.split(line.removeprefix("runuser -u postgres -- "))
    program = server.bindir / args[0]
    args[0] = str(program) if program.exists() else shutil.which(args[0]) or args[0]
    if as_system_user and os.geteuid() == 0:
        args = [*shlex.split(runuser), *args]
    done = subprocess.run(args, cwd=cwd, env=server.env(), capture_output=True, text=True,
                          timeout=scaled(120))
    assert done.returncode == 0, f"{args} failed: {done.stderr}"
    return done.stdout


def set_up_site(server: PgServer, folder: Path) -> None:
    """Section 1 of the page: the role script with the documented psql command, then the
    passwords (the page's interactive ``\\password``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chairside-roles.sql").write_text(doc_block("sql", "chairside-roles.sql"))
    run_doc_command(server, doc_line("runuser -u postgres -- psql -v ON_ERROR_STOP=1 -f chairside-roles.sql"),
                    folder)
    assert "runuser -u postgres -- psql -c '\\password chairside_app'" in doc_blocks("sh")[0]
    with server.connect() as conn:
        for role, password in PASSWORDS.items():
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                                     sql.Literal(password)))


def connect_as(server: PgServer, role: str, dbname: str = "chairside") -> psycopg.Connection:
    return psycopg.connect(server.url(dbname, user=role, password=PASSWORDS[role]), autocommit=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A fresh server with the page's roles and database (roles are server-wide: not the shared one)."""
    server = PgServer().start()
    try:
        set_up_site(server, tmp_path_factory.mktemp("site"))
        yield server
    finally:
        server.cleanup()


def open_bay(server: PgServer, bay: str, folder: Path) -> PostgresStore:
    """Chairside itself, connected as ``chairside_app`` the way the page configures it (the
    password in a file): it creates its schemas, migrates them, makes its partitions."""
    password = folder / "db-password"
    password.write_text(PASSWORDS["chairside_app"] + "\n")
    password.chmod(0o600)
    url = f"postgresql://chairside_app@127.0.0.1:{server.port}/chairside"
    return PostgresStore(url, bay=bay, password_file=password, audit_key_file=folder / "site.audit-key",
                         commit_interval=0.01)


def fill_bay(server: PgServer, bay: str, folder: Path, rows: int = 3) -> None:
    """A bay's day in miniature: readings and an operator action, through the store."""
    with open_bay(server, bay, folder) as store:
        now = time.time()
        store.add_readings([Reading(f"c{n % 4:02d}", "hr", 60.0 + n, now + n, now + n, "ox", n, 0)
                            for n in range(rows)])
        store.add_records([OperatorAction(now, "nurse.ann", "acknowledge", "c01", "1", {})])
        assert store.flush(scaled(20))


def table_rows(conn: psycopg.Connection, schema: str) -> tuple[list[tuple], list[tuple]]:
    ident = sql.Identifier(schema)
    return (conn.execute(sql.SQL("SELECT id, chair, parameter, value, device_time, seq FROM {}.readings "
                                 "ORDER BY id").format(ident)).fetchall(),
            conn.execute(sql.SQL('SELECT id, "user", action, hash FROM {}.operator_actions '
                                 "ORDER BY id").format(ident)).fetchall())


def test_the_roles_are_what_the_page_promises(site: PgServer):
    with site.connect() as conn:
        roles = {r[0]: r[1:] for r in conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname LIKE 'chairside%'")}
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'chairside'")
        assert owner.fetchone()[0] == "chairside_owner"
    assert roles == {"chairside_owner": (False, False, False, False, False, False),
                     "chairside_app": (True, False, False, False, False, False),
                     "chairside_report": (True, False, False, False, False, False)}


def test_chairside_runs_on_the_app_role_alone(site: PgServer, tmp_path: Path):
    fill_bay(site, "create", tmp_path)  # schemas, migrations, triggers, partitions as chairside_app
    with connect_as(site, "chairside_app") as conn:
        bays = conn.execute("SELECT id, schema_name FROM chairside_site.bays WHERE id = 'create'").fetchall()
        assert bays == [("create", "bay_create")]
        months = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p "
            "ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE n.nspname = 'bay_create' AND p.relname = 'readings' ORDER BY 1")]
        assert len(months) == 4 and months[-1] == "readings_default"  # this month and two ahead
        readings, actions = table_rows(conn, "bay_create")
        assert len(readings) == 3 and len(actions) == 1
        month = sql.Identifier(months[-2])
        conn.execute(sql.SQL("DROP TABLE bay_create.{}").format(month))  # what retention does
    store = open_bay(site, "create", tmp_path)  # opens again: nothing left to migrate
    try:
        assert verify_records(store.database, tmp_path / "site.audit-key").ok
    finally:
        store.close()


@pytest.mark.parametrize("statement, refusal", [
    ("CREATE ROLE intruder LOGIN", "permission denied to create role"),
    ("CREATE DATABASE other", "permission denied to create database"),
    ("CREATE TABLE public.stray (n int)", "permission denied for schema public"),
    ("ALTER ROLE chairside_app SUPERUSER", "must be superuser"),
])
def test_the_app_cannot_reach_beyond_its_database(site: PgServer, statement: str, refusal: str):
    refused = pytest.raises(errors.InsufficientPrivilege, match=refusal)
    with connect_as(site, "chairside_app") as conn, refused:
        conn.execute(statement)


def test_the_reporting_role_reads_what_the_app_creates_later_and_writes_nothing(site: PgServer,
                                                                                 tmp_path: Path):
    fill_bay(site, "report", tmp_path)  # created after the role script: default privileges
    with connect_as(site, "chairside_app") as app:
        expected = table_rows(app, "bay_report")
    with connect_as(site, "chairside_report") as report:
        assert table_rows(report, "bay_report") == expected
        bays = report.execute("SELECT count(*) FROM chairside_site.bays WHERE id = 'report'")
        assert bays.fetchone() == (1,)
        with pytest.raises(errors.ReadOnlySqlTransaction):  # read-only by default ...
            report.execute("INSERT INTO bay_report.sessions (id, chair) VALUES ('s9', 'c09')")
        for statement in ("INSERT INTO bay_report.sessions (id, chair) VALUES ('s9', 'c09')",
                          "DELETE FROM bay_report.readings", "CREATE SCHEMA report_own"):
            with report.transaction():
                report.execute("SET TRANSACTION READ WRITE")
                with pytest.raises(errors.InsufficientPrivilege):
                    report.execute(statement)


def test_no_other_role_may_connect_to_the_chairside_database(site: PgServer):
    with site.connect() as conn:
        conn.execute("CREATE ROLE someone_else LOGIN PASSWORD 'other-pw'")
    url = site.url("chairside", user="someone_else", password="other-pw")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(url)
    psycopg.connect(site.url("postgres", user="someone_else", password="other-pw")).close()  # it exists


def test_the_nightly_dump_restores_into_a_fresh_server_unchanged(site: PgServer, pg_server_factory,
                                                                 tmp_path: Path):
    (tmp_path / "bay").mkdir()
    fill_bay(site, "dump", tmp_path / "bay", rows=50)
    with connect_as(site, "chairside_app") as app:
        before = table_rows(app, "bay_dump")

    backups = tmp_path / "backups"
    backups.mkdir()
    stale = backups / "chairside-2000-01-01T0230.dump"
    stale.write_text("an old dump")
    old = time.time() - 40 * 86400
    os.utime(stale, (old, old))
    script = tmp_path / "chairside-backup"
    script.write_text(doc_block("sh", "/usr/local/sbin/chairside-backup: "))
    done = subprocess.run(["sh", str(script)], env={**site.env(), "CHAIRSIDE_BACKUP_DIR": str(backups)},
                          capture_output=True, text=True, timeout=scaled(120))
    assert done.returncode == 0, done.stderr
    dumps = sorted(backups.iterdir())
    assert len(dumps) == 1 and re.fullmatch(r"chairside-\d{4}-\d\d-\d\dT\d{4}\.dump", dumps[0].name)
    assert dumps[0].read_bytes().startswith(b"PGDMP")  # pg_dump's custom format (-Fc); the stale one pruned

    fresh = pg_server_factory()
    set_up_site(fresh, tmp_path / "fresh")
    documented = "/var/backups/chairside/chairside-2025-03-14T0230.dump"
    restore = doc_line("runuser -u postgres -- pg_restore ")
    run_doc_command(fresh, restore, tmp_path, {documented: str(dumps[0])})
    run_doc_command(fresh, doc_line("runuser -u postgres -- vacuumdb --analyze-only"), tmp_path)

    with connect_as(fresh, "chairside_app") as app:
        assert table_rows(app, "bay_dump") == before
        owner = app.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'bay_dump'")
        assert owner.fetchone()[0] == "chairside_app"
    with connect_as(fresh, "chairside_report") as report:
        assert table_rows(report, "bay_dump")[0] == before[0]  # the grants came along
    # the bay runs on the restored database: its records check out, and it writes on
    with open_bay(fresh, "dump", tmp_path / "bay") as store:
        assert verify_chain(store.database).ok
        assert verify_records(store.database, tmp_path / "bay" / "site.audit-key").ok
        store.add_readings([Reading("c01", "hr", 70.0, time.time(), time.time(), "ox", 50, 0)])
        assert store.flush(scaled(20)) and store.count_readings() == 51


def test_point_in_time_recovery_as_the_page_describes(pg_server_factory):
    server = pg_server_factory()
    archive, backups = server.mkdir("wal-archive"), server.mkdir("backups")
    paths = {"/var/lib/postgresql/wal-archive": str(archive),
             "/var/backups/chairside/base-$(date +%F)": str(backups / "base"),
             "/var/backups/chairside/base-2025-03-09": str(backups / "base"),
             "/var/lib/postgresql/15/main": str(server.datadir)}

    def documented(text: str) -> str:
        for example, actual in paths.items():
            text = text.replace(example, actual)
        return text

    server.configure(documented(doc_block("ini", "archive_command")))  # step 1: archive the WAL
    server.restart()
    with server.connect() as conn:
        assert conn.execute("SHOW archive_mode").fetchone()[0] == "on"
    run_doc_command(server, doc_line("runuser -u postgres -- pg_basebackup "), server.root, paths,
                    as_system_user=True)  # step 2: the base backup
    assert {p.name for p in (backups / "base").iterdir()} >= {"base.tar.gz", "pg_wal.tar.gz"}

    with server.connect() as conn:  # the day goes on after the backup; then a mistake
        conn.execute("CREATE TABLE events (n int)")
        conn.execute("INSERT INTO events SELECT generate_series(1, 10)")
        moment = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        conn.execute("DELETE FROM events WHERE n > 3")
        last = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        conn.execute("SELECT pg_switch_wal()")
    wait_until(lambda: (archive / last).exists(), 30, f"WAL file {last} in the archive")

    server.stop()  # step 3: recover to the moment before the mistake
    server.datadir.rename(server.root / "data.before-recovery")
    server.mkdir("data")
    extract = "runuser -u postgres -- tar -xzf /var/backups/chairside/base-2025-03-09/"
    for line in (doc_line(extract + "base.tar.gz"), doc_line(extract + "pg_wal.tar.gz")):
        run_doc_command(server, line, server.root, paths, as_system_user=True)
    target = doc_block("ini", "recovery_target_time")
    assert "recovery_target_time = '2025-03-14 09:40:00+01'" in target
    server.configure(documented(target).replace("2025-03-14 09:40:00+01", moment.isoformat()))
    signal = doc_line("runuser -u postgres -- touch ")
    run_doc_command(server, signal, server.root, paths, as_system_user=True)
    server.start()
    with server.connect() as conn:
        wait_until(lambda: not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0], 60,
                   "the recovered server to be promoted")
        assert conn.execute("SELECT n FROM events ORDER BY n").fetchall() == [(n,) for n in range(1, 11)]
    assert "recovery stopping before commit of transaction" in server.log()
