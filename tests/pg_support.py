"""A private PostgreSQL for the tests: its own cluster in a fresh folder under /tmp, on a free
loopback port, with a random superuser password. Never the server that may run on this machine
at 5432: a test that depended on it would pass or fail by what that server holds.

Debian's server package supplies the binaries (``pg_config --bindir`` may name only the client's
folder). initdb refuses to run as root, and the suite runs as root in CI: then every server
program runs as the ``postgres`` system user (``runuser``), which owns the folder (pytest's
tmp_path lies in a 0700 root folder that user cannot enter, hence /tmp). Every process started
is found again by pid (the postmaster's pid file, its children in /proc) and stopped by pid;
a finalizer stops the server and removes its folder at exit, whatever the test did.

The fixtures (``pg_server``, ``pg_url``, ``pg_server_factory``) reach every test module
through conftest.py."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from conftest import scaled, wait_until
from psycopg import sql

from monitor.errors import ChairsideError

__all__ = ["PgServer", "PgServerError", "find_bindir", "pg_server", "pg_server_factory", "pg_url",
           "port_is_free", "postmaster_pid", "process_alive"]

#: The system user the server runs as when the suite runs as root.
SYSTEM_USER = "postgres"


class PgServerError(ChairsideError, RuntimeError):
    """The test server could not be set up, started or stopped (the message says which step,
    and the server's log is appended to it)."""


def find_bindir() -> Path:
    """The newest server version's bin folder under /usr/lib/postgresql (Debian's layout)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        raise PgServerError("no PostgreSQL server: no /usr/lib/postgresql/*/bin/initdb "
                            "(make sysdeps installs Debian's postgresql package)")

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.parent.name))
    return Path(max(found, key=version)).parent


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, exited but not yet reaped by whoever
    adopted it, counts as gone: it holds no port, file or shared memory)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (the postmaster's backends and helpers)."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid:
            kids.append(int(Path(stat).parent.name))
    return kids


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (a bind succeeds)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postmaster_pid(datadir: Path) -> int | None:
    """The pid of the postmaster running on ``datadir``, else None. Read from its pid file and
    checked against the process's command line, so that a stale file (after a kill) whose pid
    the system has since given to another process never names that process."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return pid if os.fsencode(str(datadir)) in cmdline and process_alive(pid) else None


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and its children; returns every pid signalled. Children are listed
    before the parent dies (they are re-parented after)."""
    pids = [pid, *_children(pid)]
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    return pids


def _reap(root: Path, datadir: Path, launchers: list[subprocess.Popen]) -> None:
    """The finalizer (at cleanup, or at exit for a server a test left behind): kill what still
    runs of the server, collect its exit, remove its folder."""
    pid = postmaster_pid(datadir)
    if pid is not None:
        _kill_tree(pid)
    for launcher in launchers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            launcher.wait(timeout=scaled(30))
    shutil.rmtree(root, ignore_errors=True)


class PgServer:
    """One PostgreSQL cluster of its own. ``fsync`` is off by default: a killed server process
    still loses nothing committed (the kernel holds the written pages); only a machine crash
    would, which no test simulates. Benchmarks that measure commits pass ``fsync=True``."""

    def __init__(self, fsync: bool = False) -> None:
        self.bindir = find_bindir()
        self.fsync = fsync
        self.password = secrets.token_urlsafe(18)
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="chairside-pg-", dir="/tmp"))
        self.datadir = self.root / "data"
        #: the processes start() launched (the postmaster, or runuser as its parent): ours to reap
        self._launchers: list[subprocess.Popen] = []
        self._finalizer = weakref.finalize(self, _reap, self.root, self.datadir, self._launchers)
        self.sockdir = self.root / "sock"
        self.logfile = self.root / "server.log"
        self._initdb()

    # -- set-up ------------------------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bindir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                              timeout=scaled(timeout), stdin=subprocess.DEVNULL)
        return done

    def _initdb(self) -> None:
        self.sockdir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            account = pwd.getpwnam(SYSTEM_USER)
            for path in (self.root, self.sockdir, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        done = self._run("initdb", "-D", str(self.datadir), "-U", "postgres", f"--pwfile={pwfile}",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                         "--locale=C", "--no-instructions", "--no-sync")
        pwfile.unlink()
        if done.returncode:
            raise PgServerError(f"initdb failed ({done.returncode}): {done.stdout}{done.stderr}")
        # Only our own socket (trust) and loopback TCP with the password: nothing else
        # ("all" does not cover replication: pg_basebackup's connections are named apart).
        (self.datadir / "pg_hba.conf").write_text(
            "local all         all trust\n"
            "host  all         all 127.0.0.1/32 scram-sha-256\n"
            "host  replication all 127.0.0.1/32 scram-sha-256\n")
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# chairside tests\ninclude 'chairside-test.conf'\n")
        self._write_settings()

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "password_encryption": "'scram-sha-256'",
            "fsync": "on" if self.fsync else "off",
            "shared_buffers": "'32MB'",
            "max_connections": "50",
        }
        path = self.datadir / "chairside-test.conf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        if self._as_root:
            account = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, account.pw_uid, account.pw_gid)

    def configure(self, text: str = "", **settings: str) -> None:
        """Extra postgresql.conf lines (``text`` as written in the file, or ``settings`` with
        values as written there, e.g. ``"'on'"``), taking effect at the next start."""
        with (self.datadir / "chairside-test.conf").open("a") as conf:
            conf.write(text + "".join(f"\n{k} = {v}" for k, v in settings.items()) + "\n")

    def mkdir(self, name: str) -> Path:
        """A folder inside the server's own, which the server's user owns (an archive, a base
        backup's destination)."""
        path = self.root / name
        path.mkdir(mode=0o700)
        if self._as_root:
            account = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, account.pw_uid, account.pw_gid)
        return path

    # -- running -----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs, else None."""
        return postmaster_pid(self.datadir)

    def server_pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, WAL writer ...)."""
        pid = self.pid
        return [] if pid is None else [pid, *_children(pid)]

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> PgServer:
        """Start the postmaster and wait until it accepts connections. A port taken since it
        was chosen is replaced by another free one.

        The postmaster is this process's child (through runuser when root), not pg_ctl's: a
        server started by ``pg_ctl start`` is orphaned, and after a kill its pid stays a zombie
        until init collects it (some containers' init never does), which PostgreSQL takes for
        a server still running on the folder and refuses to start. Our child we reap ourselves."""
        if self.pid is not None:
            raise PgServerError(f"the server on {self.datadir} is already running (pid {self.pid})")
        self._reap_launchers()
        for _attempt in range(3):
            launcher = self._launch()
            wait_until(lambda launcher=launcher: self._ready() or launcher.poll() is not None, 60,
                       f"PostgreSQL on port {self.port} to accept connections")
            if launcher.poll() is None:
                return self
            if "could not bind" not in self.log():
                break
            self.port = _free_port()
            self._write_settings()
        self._reap_launchers()
        raise PgServerError(f"PostgreSQL did not start on port {self.port}\n--- server log ---\n"
                            f"{self.log()[-4000:]}")

    def _launch(self) -> subprocess.Popen:
        command = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
        if self._as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        with self.logfile.open("ab") as log:
            launcher = subprocess.Popen(command, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._launchers.append(launcher)
        return launcher

    def _ready(self) -> bool:
        """pg_ctl -w's own test: the postmaster wrote "ready" into its pid file."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().split("\n")
        except FileNotFoundError:
            return False
        return len(lines) > 7 and lines[7].strip() == "ready" and self.pid is not None

    def _reap_launchers(self) -> None:
        """Collect the exit of every launched process that has ended."""
        self._launchers[:] = [p for p in self._launchers if p.poll() is None]

    def _wait_gone(self, pids: list[int], what: str) -> None:
        wait_until(lambda: not any(process_alive(p) for p in pids) and not self._alive_launchers(),
                   30, what)
        self._reap_launchers()

    def _alive_launchers(self) -> bool:
        return any(p.poll() is None for p in self._launchers)

    def stop(self) -> None:
        """A fast shutdown (``pg_ctl stop -m fast``: sessions ended, a checkpoint written); if
        that does not end it in time, the postmaster and its children are killed by pid.
        Returns once none of them runs."""
        pids = self.server_pids()
        if not pids:
            self._reap_launchers()
            return
        done = self._run("pg_ctl", "stop", "-m", "fast", "-w", "-t", str(int(scaled(30))), "-D",
                         str(self.datadir), timeout=scaled(60))
        if done.returncode:
            for p in pids:
                if process_alive(p):
                    _kill_tree(p)
        self._wait_gone(pids, "the server's processes to end")

    def kill9(self) -> None:
        """A crash: SIGKILL the postmaster and every child at once, no shutdown checkpoint.
        Returns once none of them runs (the next start then does crash recovery)."""
        pid = self.pid
        if pid is None:
            return
        self._wait_gone(_kill_tree(pid), "the killed server's processes to end")

    def restart(self) -> PgServer:
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop the server (killing it if need be) and remove its folder."""
        with contextlib.suppress(Exception):
            self.stop()
        self._finalizer()

    # -- use ---------------------------------------------------------------------------------

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        """A libpq URL over loopback TCP (the password is the superuser's for ``postgres``)."""
        if password is None and user == "postgres":
            password = self.password
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def connect(self, dbname: str = "postgres", **kw: object) -> psycopg.Connection:
        """A superuser connection with autocommit (for set-up: CREATE DATABASE, roles ...)."""
        return psycopg.connect(self.url(dbname), autocommit=True, **kw)

    def env(self, user: str = "postgres", password: str | None = None) -> dict[str, str]:
        """An environment for libpq programs (psql, pg_dump ...) that reaches this server."""
        if password is None and user == "postgres":
            password = self.password
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=user,
                   PATH=f"{self.bindir}:{env.get('PATH', '/usr/bin:/bin')}")
        if password is not None:
            env["PGPASSWORD"] = password
        return env

    def psql(self, script: str, db: str = "postgres", user: str = "postgres",
             password: str | None = None) -> str:
        """Run ``script`` with psql (meta-commands such as ``\\connect`` allowed), stopping at
        the first error; returns its output, raises PgServerError with psql's message."""
        done = subprocess.run([str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-d", db, "-f", "-"], input=script, capture_output=True, text=True,
                              env=self.env(user, password), timeout=scaled(60))
        if done.returncode:
            raise PgServerError(f"psql failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL (as the superuser)."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop it, ending any session still connected to it."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One server for the whole run, started when the first test asks for it. Tests must not
    stop or kill it: a test that does uses ``pg_server_factory``."""
    server = PgServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh database of its own on the shared server (superuser URL), dropped afterwards
    whatever the test left connected to it."""
    name = f"t_{secrets.token_hex(6)}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def pg_server_factory() -> Iterator[Callable[..., PgServer]]:
    """Makes started servers of the test's own (``fsync=`` passed on); all are stopped and
    removed at teardown."""
    servers: list[PgServer] = []

    def make(**kw: object) -> PgServer:
        server = PgServer(**kw)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()
    yield make
    for server in servers:
        server.cleanup()
