"""A bedside device on a serial line: one thread per port, pyserial for the I/O.

The thread opens the port with the configured framing, reads whatever bytes arrive, cuts
them into lines (``LineSplitter``: partial lines kept, over-long or non-UTF-8 lines dropped
and counted, resynchronised at the next line end), parses each line with the port's
protocol (a pure dialect module of ``wire.serial``, found by name in ``wire.registry``)
and hands the readings to the core. When the port fails (unplugged adapter, read error) it
tells the core the device is offline (a technical alarm on an armed chair), closes the port
and reopens it with exponential backoff until the device is back, without operator action.

The port may be a terminal server's (``socket://host:port``, ``rfc2217://host:port``:
``monitor.serial_port``), opened with pyserial's URL handlers. A dropped TCP link (the
terminal server closed or rebooted, its bridge killed) fails the read as an unplugged
adapter does, with the same offline report and backoff. A link that only falls silent (a
cut network sends no close) is recycled after ``link_idle_s`` without bytes: closed and
reopened at once, quietly; only if it cannot be reopened is the device reported offline.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import serial

from devices.source import DeviceError, SourceBase, frame_readings
from monitor.config import SerialSource as SerialConfig
from monitor.seam import ParseError, Sink, SourceState
from monitor.serial_port import is_network_port
from wire.lines import LineError, LineSplitter
from wire.registry import DIALECTS

__all__ = ["SerialSource"]

FIRST_RETRY_S = 0.25
READ_TIMEOUT_S = 0.2  # how often the thread looks at its stop flag while idle


class _LinkIdle(DeviceError):
    """A terminal server's link carried no byte for ``link_idle_s``: recycle it."""


class SerialSource(SourceBase):
    kind = "serial"

    def __init__(self, config: SerialConfig, sink: Sink) -> None:
        super().__init__(config.name, sink)
        self.config = config
        self._parse = DIALECTS[config.protocol].parse
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offline_reported = False
        self._network = is_network_port(config.port)
        self.link_recycles = 0  # silent terminal-server links closed and reopened

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._set_state(SourceState.STARTING)
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._set_state(SourceState.STOPPED)

    def health(self) -> dict[str, Any]:
        return super().health() | {"port": self.config.port, "protocol": self.config.protocol,
                                   "chair": self.config.chair, "link_recycles": self.link_recycles}

    # --- the port thread ---------------------------------------------------------------

    def _run(self) -> None:
        delay = FIRST_RETRY_S
        while not self._stop.is_set():
            try:
                port = self._open()
            except (serial.SerialException, OSError, ValueError) as exc:
                self._lost(f"cannot open {self.config.port}: {exc}")
                self._stop.wait(delay)
                delay = min(delay * 2, self.config.reconnect_max_s)
                continue
            delay = FIRST_RETRY_S
            self._set_state(SourceState.CONNECTED)
            if self._offline_reported:
                self.reconnects += 1
                self._offline_reported = False
                self.sink.report_connection(self.config.chair, self.name, True, "port reopened")
            try:
                self._read(port)
            except _LinkIdle as exc:
                self.link_recycles += 1
                self.log.info("%s; reopening it", exc)
                continue  # (the finally closes it) at once, no backoff: nothing failed yet
            except (serial.SerialException, OSError) as exc:
                self._lost(f"read error on {self.config.port}: {exc}")
            except Exception as exc:  # a bug must not end the port's thread for good
                self.log.exception("unexpected error reading %s", self.config.port)
                self._lost(f"unexpected error: {exc!r}")
            finally:
                port.close()
            self._stop.wait(delay)

    def _open(self) -> serial.Serial:
        c = self.config
        # a device path or a terminal server's URL alike: pyserial picks the handler
        return serial.serial_for_url(
            c.port, baudrate=c.baudrate, bytesize=c.bytesize, parity=c.parity,
            stopbits=c.stopbits, timeout=READ_TIMEOUT_S, exclusive=True,
        )

    def _read(self, port: serial.Serial) -> None:
        splitter = LineSplitter()
        idle_s = self.config.link_idle_s if self._network else 0
        last = time.monotonic()
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if data:
                last = time.monotonic()
                for item in splitter.feed(data):
                    self._line(item)
            elif idle_s and time.monotonic() - last > idle_s:
                raise _LinkIdle(f"no byte from {self.config.port} for {idle_s:g} s")

    def _line(self, item: str | LineError) -> None:
        if isinstance(item, LineError):
            self.reject(item.reason, item.detail)
            return
        try:
            frame = self._parse(item)
        except ParseError as exc:
            self.reject(exc.reason, str(exc))
            return
        if frame is None:  # a header line: nothing to take
            return
        readings = frame_readings(
            frame, chair=self.config.chair, device=self.config.device or self.name,
            receive_time=self.sink.clock.now(), use_device_time=self.config.use_device_time)
        if readings:
            self.deliver(readings)

    def _lost(self, error: str) -> None:
        self._set_state(SourceState.DISCONNECTED, error)
        if not self._offline_reported:
            self._offline_reported = True
            self.sink.report_connection(self.config.chair, self.name, False, error)
