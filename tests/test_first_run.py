"""The first run (issue 14, point 7): README's first command, `make demo`, started at a
terminal and stopped with Ctrl-C, shuts the demo down in order and exits 0, and a healthy
demo prints no WARNING on the way.

The terminal is a real pseudo-terminal whose controlling process is `make` (as a shell
runs a job), and Ctrl-C is the byte 0x03 typed into it: the terminal driver sends SIGINT
to its foreground process group, exactly as at a keyboard. Nothing is installed: VENV
points make at a folder under tmp_path holding this test run's own `chairside` and an
up-to-date stamp, and PY at this interpreter.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from conftest import wait_until

from simulators.broker import free_port

ROOT = Path(__file__).resolve().parent.parent
CTRL_C = b"\x03"


def installed_venv(tmp_path: Path) -> Path:
    """A VENV that make takes as installed: this interpreter's `chairside` script and a
    `.installed` stamp newer than the lock and pyproject.toml (so make installs nothing)."""
    chairside = Path(sys.executable).with_name("chairside")
    assert chairside.exists(), f"{chairside}: the package is not installed in this venv"
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "chairside").symlink_to(chairside)
    (venv / ".installed").touch()
    return venv


class Terminal:
    """A command run as the controlling process of a new pseudo-terminal; everything it
    writes there is collected (the reader also keeps the terminal from filling up)."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the terminal's session leader and foreground job
            try:
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.status: int | None = None

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: every process has closed the terminal
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def exited(self) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None

    def close(self) -> None:
        if not self.exited():
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        self._reader.join(timeout=10)
        os.close(self.fd)


def online_chairs(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/chairs", timeout=2) as r:
            return sum(c["connection"] == "online" for c in json.load(r)["chairs"])
    except OSError:
        return 0


@pytest.mark.slow
def test_make_demo_stopped_with_ctrl_c_at_a_terminal_shuts_down_and_exits_0(
        tmp_path: Path) -> None:
    port = free_port()
    venv = installed_venv(tmp_path)
    terminal = Terminal(["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}",
                         f"PY={sys.executable}", f"DEMO_ARGS=--port {port}", "demo"])
    try:
        wait_until(lambda: online_chairs(port) == 8 or terminal.exited(), timeout=90,
                   what="make demo's bay with 8 chairs online")
        assert not terminal.exited(), terminal.output[-3000:]
        terminal.type(CTRL_C)
        wait_until(terminal.exited, timeout=60, what="make demo to end after Ctrl-C")
    finally:
        terminal.close()
    out = terminal.output
    assert terminal.status == 0, out[-3000:]
    assert "SIGINT received: stopping the demo" in out and "demo stopped" in out, out[-3000:]
    assert "Interrupt" not in out and "Traceback" not in out, out[-3000:]
    # a healthy demo, from the set-up to the stop, warns of nothing
    assert "WARNING" not in out and " ERROR " not in out, out[-3000:]
    assert online_chairs(port) == 0  # the dashboard is gone with it


FOREGROUND = [sys.executable, str(ROOT / "deploy" / "foreground.py")]
# prints whether it runs in a process group of its own (not its session leader's, here the
# launcher's) that holds the terminal, then exits 5
JOB_REPORT = ("import os; g = os.getpgrp(); "
              "print('own group', g != os.getsid(0), 'has the terminal', os.tcgetpgrp(0) == g); "
              "raise SystemExit(5)")


def finish(terminal: Terminal) -> str:
    try:
        wait_until(terminal.exited, timeout=60, what="the command to end")
    finally:
        terminal.close()
    return terminal.output


def test_foreground_gives_the_command_the_terminal_and_returns_its_status() -> None:
    terminal = Terminal([*FOREGROUND, sys.executable, "-c", JOB_REPORT])
    out = finish(terminal)
    assert "own group True has the terminal True" in out, out
    assert terminal.status == 5
    # control: the same command run directly shares its launcher's group
    terminal = Terminal([sys.executable, "-c", JOB_REPORT])
    assert "own group False has the terminal True" in finish(terminal)

    terminal = Terminal([*FOREGROUND, "no-such-command-here"])
    out = finish(terminal)
    assert terminal.status == 127 and "no-such-command-here" in out, out


def test_foreground_without_a_terminal_becomes_the_command(tmp_path: Path) -> None:
    """No controlling terminal (CI, a pipe): the command replaces it (same process)."""
    proc = subprocess.Popen([*FOREGROUND, "sh", "-c", "echo $$; exit 3"], stdout=subprocess.PIPE,
                            text=True, start_new_session=True, stdin=subprocess.DEVNULL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 3 and out.strip() == str(proc.pid)
