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
  client certificate, when given an ``ssl_context``), failing over to a standby's listener
  and sending again every message whose ACK did not come back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import time
import tty
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt

from monitor.seam import ParseError
from simulators.formats import oru_r01, serial_header, serial_line, vitals_json
from simulators.mllp_client import MllpFailover
from wire.hl7.ack import read_ack

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
    """An HL7 gateway: one ORU^R01 per sample (control id ``<device>-<seq>``), sent over MLLP
    to ``host:port`` or, when that does not answer, to the ``standby`` listeners in turn (a
    bay's two servers: :class:`MllpFailover`).

    A message counts as delivered only on its ACK: until then it stays in order in
    :attr:`backlog` and is sent again, after the next sample or at :meth:`flush`, first
    ``retry_s`` after a failure and then twice as long each time up to ``retry_max_s``;
    an AR (e.g. not yet on the listener's disk) is sent again too, an AE (its content
    refused: sending it again would not help) is counted in :attr:`refused` and dropped. At
    most ``backlog_max`` messages wait; beyond that the oldest are dropped (:attr:`dropped`)."""

    def __init__(self, host: str, port: int, *, bed: str, device: str,
                 ssl_context: ssl.SSLContext | None = None, standby: Sequence[tuple[str, int]] = (),
                 retry_s: float = 0.25, retry_max_s: float = 5.0, backlog_max: int = 3600) -> None:
        self.endpoints = [(host, port), *standby]
        self.bed, self.device = bed, device
        self.ssl_context = ssl_context
        self.retry_s, self.retry_max_s = retry_s, retry_max_s
        self.failures = self.refused = self.dropped = 0
        self.backlog: deque[str] = deque(maxlen=backlog_max)
        self._client: MllpFailover | None = None
        self._retry_at = 0.0
        self._backoff = retry_s
        self._unplugged = False

    def open(self) -> None:
        self._client = MllpFailover(self.endpoints, timeout=5, ssl_context=self.ssl_context)

    def emit(self, values: Values, flags: int, t: float, seq: int) -> None:
        if self._client is None or self._unplugged:
            return
        if len(self.backlog) == self.backlog.maxlen:
            self.dropped += 1
        self.backlog.append(oru_r01(values, flags, t, control_id=f"{self.device}-{seq}", bed=self.bed,
                                    device=self.device))
        self._drain()

    def flush(self, timeout: float) -> bool:
        """Send the backlog, retrying with the backoff for up to ``timeout`` seconds; True
        when every message has its ACK."""
        deadline = time.monotonic() + timeout
        while self.backlog and self._client is not None:
            self._drain()
            if not self.backlog or time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, min(self._retry_at, deadline) - time.monotonic()))
        return not self.backlog

    def _drain(self) -> None:
        """Send from the front of the backlog until it is empty or a send fails (then not
        again before the backoff has passed)."""
        while self.backlog and self._client is not None and time.monotonic() >= self._retry_at:
            problem: Exception | None = None
            try:
                ack = read_ack(self._client.send(self.backlog[0]))
                code = ack.code
            except (OSError, ParseError) as exc:  # no listener answers, or an answer that is no ACK
                code, problem = "", exc
            if code in ("AE", "CE"):
                log.warning("%s: HL7 message refused (%s): %s", self.device, code, ack.text)
            if code in ("AA", "CA", "AE", "CE"):
                self.backlog.popleft()
                self.refused += code in ("AE", "CE")
                self._backoff = self.retry_s
                continue
            self.failures += 1
            log.debug("MLLP send from %s failed (%s): sending again in %.2f s", self.device,
                      code or problem, self._backoff)
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.retry_max_s)

    def set_outage(self, kind: str | None) -> None:
        if kind == "unplug" and not self._unplugged and self._client is not None:
            self._client.close()
        self._unplugged = kind == "unplug"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.backlog:
            log.warning("%s: %d HL7 message(s) never acknowledged, not sent", self.device, len(self.backlog))
