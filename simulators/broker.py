"""A private Mosquitto broker for the demo and the tests: its own config, port and
persistence folder.

Never the system broker on 1883: each :class:`Mosquitto` takes a free loopback port from
the OS, writes ``mosquitto.conf`` into its folder and runs ``/usr/sbin/mosquitto`` as a
child process (its log goes to ``mosquitto.log`` there). :meth:`stop` and :meth:`start`
again reuse the same port and persistence folder, so a test can take the broker down and
bring it back with its sessions and queued messages (an outage). All waits have deadlines.

    with Mosquitto(tmp_path) as broker:
        client.connect("127.0.0.1", broker.port)
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from simulators.errors import SimulatorError

__all__ = ["DEFAULT_CONFIG", "MOSQUITTO", "BrokerError", "Mosquitto", "free_port"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class BrokerError(SimulatorError, RuntimeError):
    """The broker would not start or stop; the message quotes its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


DEFAULT_CONFIG = """\
listener {port} 127.0.0.1
{listener}
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 1
max_queued_messages 100000
max_inflight_messages 100
"""


class Mosquitto:
    """One broker. ``config`` is the text of a mosquitto.conf with ``{port}``, ``{data}``
    (the persistence folder) and ``{listener}`` (``listener`` lines, e.g. TLS options, for
    the test listener) to fill in; the default is a plain anonymous broker with persistence.
    ``extra`` lines are appended."""

    def __init__(self, folder: Path, port: int | None = None, *, config: str = DEFAULT_CONFIG,
                 listener: str = "", extra: str = "") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._may_move = port is None  # until the first start succeeds
        self.template, self.listener, self.extra = config, listener, extra
        self.config_path = self.folder / "mosquitto.conf"
        self.log_path = self.folder / "mosquitto.log"
        self.data = self.folder / "data"
        self.data.mkdir(exist_ok=True)
        self._write_config()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _write_config(self) -> None:
        text = (self.template.replace("{port}", str(self.port)).replace("{data}", str(self.data))
                .replace("{listener}", self.listener))
        # run as root, mosquitto would switch to the "mosquitto" user, who cannot write here
        user = pwd.getpwuid(os.getuid()).pw_name
        self.config_path.write_text(f"{text}\n{self.extra}\nuser {user}\n", encoding="utf-8")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and return once its port accepts connections. A port taken by
        someone else between choosing it and the first start is swapped for another."""
        for _ in range(3):
            try:
                return self._start(timeout)
            except BrokerError:
                if not self._may_move or "in use" not in self.log_text():
                    raise
                self.port = free_port()
                self._write_config()
        return self._start(timeout)

    def _start(self, timeout: float) -> Mosquitto:
        if self.running:
            return self
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # its own process group: a Ctrl-C at the terminal goes to our process group only, and
        # the broker stays up until stop() (the demo stops it after its MQTT monitors)
        self._proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config_path)], stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT, process_group=0)
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._reap()
                raise BrokerError(f"mosquitto exited with {code} at start:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"mosquitto did not listen on {self.port} in {timeout} s:\n"
                                  f"{self.log_text()}")
            time.sleep(0.02)
        self._may_move = False
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file on the way out), SIGKILL after
        ``timeout``. Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash; only what autosave wrote survives."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._reap()

    def restart(self, timeout: float = 10.0) -> Mosquitto:
        self.stop(timeout)
        return self.start(timeout)

    def _reap(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
