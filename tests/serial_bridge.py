"""A terminal server in front of a serial device, for the tests and the chaos benchmark:
the device is the master end of a real pseudo-terminal; the terminal server is socat in TCP
server mode serving the pty's slave on a loopback port (one client at a time), as a real
terminal server serves its serial port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import tty
from collections.abc import Mapping
from pathlib import Path

from conftest import wait_until

from wire.serial.chairside_line import chairside_line

__all__ = ["Bridge", "Device", "free_port", "listening"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """A socket listens on 127.0.0.1:``port`` (the kernel's table: no probe connection, which
    would take the terminal server's one client slot and the device's bytes)."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":
            return True
    return False


class Device:
    """The bedside device: the master end of a pty, whose slave the terminal server opens as
    its serial port. ``stream()`` sends a Chairside line with the next seq every few ms."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.tty = os.ttyname(self.slave)
        self.seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send_next(self, **line: object) -> int:
        """The next line (seq one more); ``line``: more of :func:`chairside_line`'s arguments."""
        self.seq += 1
        values: Mapping[str, float | None] = {"hr": 60 + self.seq % 40}
        os.write(self.master, (chairside_line(values, seq=self.seq, **line) + "\r\n").encode())  # type: ignore[arg-type]
        return self.seq

    def stream(self, interval: float = 0.01) -> None:
        def run() -> None:
            while not self._stop.wait(interval):  # the device's own rate, not a wait for anything
                self.send_next()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for fd in (self.master, self.slave):
            os.close(fd)


class Bridge:
    """A terminal server in TCP server mode: socat serving the device's tty on a loopback
    port, one client at a time (``max-children=1``), the tty opened anew for each client."""

    def __init__(self, device: Device, port: int) -> None:
        self.device, self.port = device, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,max-children=1",
             f"FILE:{self.device.tty},raw,echo=0"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: listening(self.port), what=f"socat listening on {self.port}")

    def signal(self, sig: int) -> None:
        """``sig`` to socat and the child serving the client (its process group)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait()
        wait_until(lambda: not listening(self.port), what="the bridge's port closed")
