"""Emitters: the small drivers that put simulated samples on real transports.

- ``PtyEmitter``: a pseudo-terminal pair per serial chair; the adapter opens the pty's path
  (a stable symlink, like ``/dev/serial/by-id/...``) with pyserial exactly as it would open
  ``/dev/ttyUSB0``. Unplugging closes the pty and removes the link; plugging back in makes
  a new pty and points the link at it.
- ``MqttEmitter``: one MQTT client per device with a Last Will of ``offline`` on its retained
  status topic. Unplugging drops the TCP connection without a DISCONNECT, so the broker
  publishes the will. A broker outage queues the device's messages and sends them, in
  order and with their original times and sequence numbers, when it is over.
- ``MllpEmitter``: an HL7 gateway sending one ORU^R01 per sample over MLLP (over TLS, with a
  client certificate, when given an ``ssl_context``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tty
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt

from simulators.formats import oru_r01, serial_header, serial_line, vitals_json
from simulators.mllp_client import MllpClient

__all__ = ["Emitter", "MllpEmitter", "MqttEmitter", "PtyEmitter"]

log = logging.getLogger("chairside.simulators")
Values = dict[str, float | None]


class Emitter(Protocol):
    def open(self) -> None: ...

    def emit(self, values: Values, flags: int, t: float, seq: int) -> None: ...

    def set_outage(self, kind: str | None) -> None: ...

    def close(self) -> None: ...


class PtyEmitter:
    def __init__(self, link: Path, protocol: str, device: str, header_every: int = 60) -> None:
        self.link = link
        self.protocol = protocol
        self.device = device
        self.header_every = header_every
        self.dropped = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._lines = 0
        self._unplugged = False

    def open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing before the adapter configures the port
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        os.replace(tmp, self.link)

    def emit(self, values: Values, flags: int, t: float, seq: int) -> None:
        if self._master is None:
            return
        lines = []
        if self._lines % self.header_every == 0:
            lines += serial_header(self.protocol)
        lines.append(serial_line(self.protocol, values, flags, t, seq, self.device))
        self._lines += 1
        data = "".join(line + "\r\n" for line in lines).encode("ascii")
        try:
            os.write(self._master, data)
        except BlockingIOError:  # nobody reading and the line's buffer full: a real line drops it
            self.dropped += 1

    def set_outage(self, kind: str | None) -> None:
        if kind == "unplug" and not self._unplugged:
            self._unplugged = True
            self.close()
        elif kind is None and self._unplugged:
            self._unplugged = False
            self.open()

    def close(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()


class MqttEmitter:
    def __init__(self, host: str, port: int, *, prefix: str, bay: str, chair: str, device: str) -> None:
        self.host, self.port = host, port
        self.device = device
        self.vitals_topic = f"{prefix}/{bay}/{chair}/vitals"
        self.status_topic = f"{prefix}/{bay}/{chair}/status"
        self._client: mqtt.Client | None = None
        self._queued: list[bytes] = []
        self._outage: str | None = None

    def open(self) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{self.device}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(0.2, 5)
        client.connect_async(self.host, self.port, keepalive=10)
        client.loop_start()
        client.publish(self.status_topic, "online", qos=1, retain=True)  # queued until connected
        self._client = client

    def emit(self, values: Values, flags: int, t: float, seq: int) -> None:
        payload = vitals_json(values, flags, t, seq, self.device)
        if self._outage == "broker_outage":
            self._queued.append(payload)
        elif self._client is not None:
            self._client.publish(self.vitals_topic, payload, qos=1)

    def set_outage(self, kind: str | None) -> None:
        if kind == self._outage:
            return
        previous, self._outage = self._outage, kind
        if kind == "unplug" and self._client is not None:
            self._drop()
        elif kind is None and previous == "unplug":
            self.open()
        elif kind is None and previous == "broker_outage" and self._client is not None:
            for payload in self._queued:
                self._client.publish(self.vitals_topic, payload, qos=1)
            self._queued.clear()

    def _drop(self) -> None:
        """Power loss: the TCP connection just goes; the broker sends the Last Will."""
        client, self._client = self._client, None
        assert client is not None
        client.loop_stop()
        sock = client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """Say ``offline`` (waiting up to 2 s for the broker to take it) and disconnect. Closing
        never raises: a publish that fails (no connection, no broker) is logged and closing
        goes on."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.publish(self.status_topic, "offline", qos=1, retain=True).wait_for_publish(2)
        except (RuntimeError, ValueError) as exc:  # not connected, or the queue is full
            log.warning("%s: offline status not published at close: %s", self.device, exc)
        client.disconnect()
        client.loop_stop()


class MllpEmitter:
    def __init__(self, host: str, port: int, *, bed: str, device: str,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port = host, port
        self.bed, self.device = bed, device
        self.ssl_context = ssl_context
        self.failures = 0
        self._client: MllpClient | None = None
        self._count = 0
        self._unplugged = False

    def open(self) -> None:
        self._client = MllpClient(self.host, self.port, timeout=5, ssl_context=self.ssl_context)

    def emit(self, values: Values, flags: int, t: float, seq: int) -> None:
        if self._client is None or self._unplugged:
            return
        self._count += 1
        message = oru_r01(values, flags, t, control_id=f"{self.device}-{self._count}", bed=self.bed,
                          device=self.device)
        try:
            self._client.send(message)
        except OSError as exc:  # the listener is away: the gateway retries with the next sample
            self.failures += 1
            log.debug("MLLP send from %s failed: %s", self.device, exc)
            self._client.close()

    def set_outage(self, kind: str | None) -> None:
        if kind == "unplug" and not self._unplugged and self._client is not None:
            self._client.close()
        self._unplugged = kind == "unplug"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
