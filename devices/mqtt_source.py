"""Readings from an MQTT broker (docs/protocols.md#mqtt), with paho-mqtt 2.x.

One client subscribes, with QoS 1, to ``<prefix>/<bay>/+/vitals`` and
``<prefix>/<bay>/+/status``. Payloads are parsed by the pure functions of
``wire.mqtt_json``; this module does the I/O, the acknowledgements, the
de-duplication, the counting and the reconnecting.

No message lost between device and store
----------------------------------------
- A fixed client id and a persistent session: MQTT 5 ``clean_start=False`` with a
  SessionExpiryInterval of ``session_expiry_s`` (paho's defaults, clean start on the first
  connect and an expiry of 0, would both drop what the broker queued for us), or MQTT 3.1.1
  ``clean_session=False``. While the monitor is away the broker queues our QoS 1 messages.
- Manual acknowledgement: a message's PUBACK is sent only once its readings are committed
  to the store (``sink.on_durable(ticket, ...)``). Until then the broker keeps it and
  sends it again after a reconnect, so a crash before the commit loses nothing.
- PUBACKs go out in the order the messages came in (MQTT 3.1.1 and 5, section 4.6): a
  message that needs no storing (malformed, refused, duplicate, a status) is acknowledged
  when everything received before it is durable, never ahead of it. A duplicate in
  particular waits for the store to hold everything ingested so far, so it cannot be
  acknowledged before the original it repeats is on disk.
- A PUBACK is only ever sent on the connection that delivered the message: when the
  connection drops, pending acknowledgements are abandoned (the broker redelivers those
  messages, and the de-duplication below recognises the ones already ingested).
- Messages the store refuses to take (it is closed: shutdown in the wrong order) are not
  acknowledged; the broker delivers them again after the next connect.
- A message whose handling raises (a bug) is counted as ``handler_error``, logged with its
  traceback and acknowledged, so that one poison message cannot block the queue forever.

Exactly once per (device, seq, device time): a crash after the commit and before the
PUBACK (a window of one store commit) makes the broker deliver those messages again to the
next run. That run's :class:`SeqTracker` starts from the store (``sink.device_seqs()``: the
last seq stored per device, kept in the readings' own transaction, and the seqs of the newest
readings), so it recognises them as duplicates and acknowledges them without storing them
again.

De-duplication and gaps
-----------------------
:class:`SeqTracker` keeps, per device, the highest ``seq`` and the device time of its last
1024 distinct seqs (seeded from the store at start). A seq seen before with the same time is
a redelivery: counted as
``duplicate`` and acknowledged, not ingested. A seq above the highest + 1 is a gap (counted,
logged, in ``health()``); seq 0 (or the same seq with another time, or a jump far back)
is a device restart and resets that device's window.

The monitor's own link
----------------------
Another client connecting with the monitor's client id takes its session over (the broker
disconnects the monitor; what arrives meanwhile goes to the intruder). The deployment config
makes that impossible (``use_username_as_clientid``); this source also watches for it: a
disconnect the broker says was a session takeover, a second unexpected disconnect within
``LINK_WINDOW_S``, or a disconnect that lasts ``LINK_DOWN_AFTER_S`` is reported to the sink
(``report_source``: a technical alarm on every chair the source serves, /healthz degraded)
until the link has been up again for ``LINK_STABLE_S``.

Presence
--------
``status`` messages (retained, and the device's Last Will ``offline``) go to
``sink.report_connection(chair, "mqtt:<topic chair>", online)``: the core raises or clears
DEVICE_OFFLINE for an armed chair. The source name is the topic's chair, stable across
restarts and devices, so an ``online`` always clears the alarm its ``offline`` raised.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.source import DeviceError, SourceBase, frame_readings
from monitor.config import MqttSource as MqttConfig
from monitor.seam import ParseError, Sink, SourceState
from wire.mqtt_json import parse_status, parse_topic, parse_vitals

__all__ = ["MqttSource", "SeqCheck", "SeqTracker", "SeqVerdict"]

STOP_TIMEOUT_S = 5.0
LINK_DOWN_AFTER_S = 3.0  # a disconnect this long is a lost link
LINK_WINDOW_S = 60.0  # two unexpected disconnects within this are a flapping link
LINK_STABLE_S = 20.0  # connected this long with no drop: the link is good again
SESSION_TAKEN_OVER = 142  # MQTT 5 reason code of the broker's DISCONNECT


# --- de-duplication ---------------------------------------------------------------------


class SeqVerdict(StrEnum):
    NEW = "new"  # the next seq, or one after a gap
    DUPLICATE = "duplicate"  # seen before (same seq, same device time): a redelivery
    LATE = "late"  # below the highest seq, never seen: arrived out of order (fills a gap)
    RESTART = "restart"  # the device started counting again (rebooted)


@dataclass(frozen=True, slots=True)
class SeqCheck:
    verdict: SeqVerdict
    missing: int = 0  # for NEW: how many seqs were skipped before this one


class _Device:
    __slots__ = ("last", "seen")

    def __init__(self, seq: int, t: float) -> None:
        self.last = seq
        self.seen: dict[int, float] = {seq: t}  # seq -> device time, oldest first


class SeqTracker:
    """Per device, the highest seq and the last ``window`` distinct seqs (with their device
    times); at most ``max_devices`` devices, the least recently heard forgotten first.
    Memory is bounded by ``window * max_devices`` entries. Not thread-safe (one network
    thread uses it). :meth:`check` only looks; :meth:`record` remembers a message once it
    has been handed on."""

    def __init__(self, window: int = 1024, max_devices: int = 4096) -> None:
        self.window = window
        self.max_devices = max_devices
        self._devices: OrderedDict[str, _Device] = OrderedDict()
        self.gaps = 0
        self.missing = 0
        self.late = 0
        self.restarts = 0
        self.last_gap: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, device: object) -> bool:
        return device in self._devices

    def seed(self, device: str, last: int, last_time: float,
             recent: Iterable[tuple[int, float]] = ()) -> None:
        """Start from what the store holds of a device: its last seq and the (seq, device
        time) pairs of its newest stored messages, oldest first."""
        d = _Device(last, last_time)
        d.seen = dict(recent)
        d.seen.pop(last, None)
        d.seen[last] = last_time
        while len(d.seen) > self.window:
            del d.seen[next(iter(d.seen))]
        self._devices[device] = d
        while len(self._devices) > self.max_devices:
            self._devices.popitem(last=False)

    def check(self, device: str, seq: int, t: float) -> SeqCheck:
        d = self._devices.get(device)
        if d is None:
            return SeqCheck(SeqVerdict.NEW)
        seen = d.seen.get(seq)
        if seen is not None:
            return SeqCheck(SeqVerdict.DUPLICATE if seen == t else SeqVerdict.RESTART)
        if seq > d.last:
            return SeqCheck(SeqVerdict.NEW, seq - d.last - 1)
        if seq == 0 or seq < d.last - self.window:
            return SeqCheck(SeqVerdict.RESTART)
        return SeqCheck(SeqVerdict.LATE)

    def record(self, device: str, seq: int, t: float, check: SeqCheck) -> None:
        d = self._devices.get(device)
        if d is None or check.verdict is SeqVerdict.RESTART:
            self._devices[device] = _Device(seq, t)
            self._devices.move_to_end(device)
            self.restarts += check.verdict is SeqVerdict.RESTART
            while len(self._devices) > self.max_devices:
                self._devices.popitem(last=False)
            return
        self._devices.move_to_end(device)
        if check.verdict is SeqVerdict.NEW:
            if check.missing:
                self.gaps += 1
                self.missing += check.missing
                self.last_gap = {"device": device, "after": d.last, "seq": seq,
                                 "missing": check.missing, "at": time.time()}
            d.last = seq
        elif check.verdict is SeqVerdict.LATE:
            self.late += 1
        d.seen[seq] = t
        while len(d.seen) > self.window:
            del d.seen[next(iter(d.seen))]


# --- ordered, durable acknowledgements --------------------------------------------------


class _Ack:
    __slots__ = ("generation", "mid", "qos", "ready", "send")

    def __init__(self, mid: int, qos: int, generation: int) -> None:
        self.mid, self.qos, self.generation = mid, qos, generation
        self.ready = False
        self.send = True


class _AckQueue:
    """PUBACKs in arrival order, each released once its message is done. Entries belong to
    one connection (generation); :meth:`reset` abandons those of a connection that is gone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[_Ack] = deque()
        self._client: mqtt.Client | None = None
        self._generation = 0
        self.sent = 0
        self.abandoned = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def reset(self, client: mqtt.Client | None) -> None:
        with self._cond:
            self._generation += 1
            self.abandoned += sum(e.send for e in self._queue)
            self._queue.clear()
            self._client = client
            self._cond.notify_all()

    def add(self, mid: int, qos: int) -> _Ack:
        with self._cond:
            entry = _Ack(mid, qos, self._generation)
            self._queue.append(entry)
            return entry

    def done(self, entry: _Ack, send: bool = True) -> None:
        """The message is finished with: acknowledge it (``send``) or not, in order."""
        with self._cond:
            entry.ready, entry.send = True, send
            if entry.generation != self._generation:
                return
            queue, client = self._queue, self._client
            while queue and queue[0].ready:
                e = queue.popleft()
                if e.send and e.qos > 0 and client is not None:
                    client.ack(e.mid, e.qos)  # only queues the packet for the network thread
                    self.sent += 1
            if not queue:
                self._cond.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue, timeout)


class _SinkRefused(DeviceError):
    """The sink raised while taking readings (e.g. its store is closed)."""


# --- the source -------------------------------------------------------------------------


class MqttSource(SourceBase):
    kind = "mqtt"

    def __init__(self, config: MqttConfig, sink: Sink) -> None:
        super().__init__(config.name, sink)
        self.config = config
        base = f"{config.topic_prefix}/{config.bay}/+"
        self.topics = (f"{base}/vitals", f"{base}/status")
        self.seqs = SeqTracker()
        self.duplicates = 0
        self.messages = 0
        self.broker_connected = False
        self.session_present: bool | None = None
        self._acks = _AckQueue()
        self._lifecycle = threading.Lock()
        self._handling = threading.Lock()  # held while a message is being taken
        self._client: mqtt.Client | None = None
        self._stopping = False
        self._connects = 0
        self._last_ticket: int | None = None
        self._devices_by_chair: OrderedDict[str, str] = OrderedDict()  # topic chair -> device
        self._paho_log = logging.getLogger(f"{self.log.name}.paho")
        self._drops: deque[float] = deque(maxlen=16)  # monotonic times of unexpected disconnects
        self._link_lock = threading.Lock()
        self.link_problem: str | None = None  # reported to the sink while set
        self._link_timer: threading.Timer | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and return; paho's network thread reconnects with
        backoff (1 s doubling to ``reconnect_max_s``) for as long as the source runs."""
        with self._lifecycle:
            if self._client is not None:
                return
            self._stopping = False
            self._connects = 0
            self._set_state(SourceState.STARTING)
            self._seed_seqs()
            try:
                client = self._make_client()
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self.log.error("cannot set up the MQTT client: %s", exc)
                self._set_state(SourceState.FAILED, f"configuration: {exc}")
                return
            cfg = self.config
            self._acks.reset(client)
            if cfg.protocol == "5":
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = cfg.session_expiry_s
                client.connect_async(cfg.host, cfg.port, cfg.keepalive_s, clean_start=False,
                                     properties=props)
            else:
                client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
            self._client = client
            client.loop_start()
            self._schedule_link_check(LINK_DOWN_AFTER_S)  # not connected by then: reported

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop taking messages, let the acknowledgements of those already taken go out
        (they wait for the store's next commit), disconnect (the broker keeps the session
        and queues for us) and stop the network thread, all within ``timeout``."""
        with self._lifecycle:
            client, self._client = self._client, None
            if client is None:
                self._set_state(SourceState.STOPPED)
                return
            deadline = time.monotonic() + timeout
            self._stopping = True
            if self._handling.acquire(timeout=timeout / 4):  # a message being taken finishes
                self._handling.release()
            if not self._acks.wait_empty(timeout / 2):
                self.log.warning("stopping with %d messages not yet acknowledged (the broker will "
                                 "deliver them again)", self._acks.pending)
            client.disconnect()
            stopper = threading.Thread(target=client.loop_stop, name=f"mqtt-stop-{self.name}",
                                       daemon=True)
            stopper.start()
            stopper.join(max(0.1, deadline - time.monotonic()))
            if stopper.is_alive():
                self.log.error("MQTT network thread did not stop within %.1f s", timeout)
            self._acks.reset(None)
            self.broker_connected = False
            self._schedule_link_check(None)
            self._set_state(SourceState.STOPPED)

    def _seed_seqs(self) -> None:
        """The de-duplication memory from the store, so a message the previous run stored
        but could not acknowledge is recognised when the broker delivers it again."""
        try:
            known = self.sink.device_seqs()
        except Exception:
            self.log.exception("cannot read the devices' last seqs from the store; a redelivery "
                               "of a message stored before the restart would be stored again")
            return
        for device, (last, t, recent) in known.items():
            if device not in self.seqs:
                self.seqs.seed(device, last, t, recent)
        self.log.info("seq memory of %d device(s) taken from the store", len(known))

    def health(self) -> dict[str, Any]:
        cfg, seqs = self.config, self.seqs
        return super().health() | {
            "broker": {"host": cfg.host, "port": cfg.port, "client_id": cfg.client_id,
                       "protocol": cfg.protocol,
                       "tls": cfg.tls_ca is not None or cfg.tls_cert is not None,
                       "connected": self.broker_connected, "session_present": self.session_present},
            "topics": list(self.topics),
            "messages": self.messages,
            "duplicates": self.duplicates,
            "seq_gaps": seqs.gaps,
            "missing_seqs": seqs.missing,
            "late_seqs": seqs.late,
            "seq_restarts": seqs.restarts,
            "last_gap": seqs.last_gap,
            "devices": len(seqs),
            "acks_sent": self._acks.sent,
            "acks_pending": self._acks.pending,
            "acks_abandoned": self._acks.abandoned,
            "link_ok": self.link_problem is None,
            "link_problem": self.link_problem,
            "unexpected_disconnects": len(self._drops),
        }

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        if cfg.protocol == "5":
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                                 protocol=mqtt.MQTTv5)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                                 clean_session=False, protocol=mqtt.MQTTv311)
        client.manual_ack_set(True)
        client.suppress_exceptions = True  # a second guard: our callbacks catch everything
        client.on_log = self._on_log
        client.reconnect_delay_set(1, max(1, math.ceil(cfg.reconnect_max_s)))
        if cfg.username is not None or cfg.password_file is not None:
            client.username_pw_set(cfg.username or "", _first_line(cfg.password_file))
        if cfg.tls_ca is not None or cfg.tls_cert is not None:
            client.tls_set(ca_certs=_path(cfg.tls_ca), certfile=_path(cfg.tls_cert),
                           keyfile=_path(cfg.tls_key))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    # --- paho callbacks (network thread) ---------------------------------------------

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
        if self._stopping and text.startswith("Client is not connected"):
            return  # paho's network loop says so once after every clean disconnect
        self._paho_log.log(mqtt.LOGGING_LEVEL.get(level, logging.INFO), "%s", text)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: Any, properties: Properties | None) -> None:
        if reason.is_failure:
            self.broker_connected = False
            self._set_state(SourceState.DISCONNECTED, f"broker refused the connection: {reason}")
            return
        self._acks.reset(client)
        self.broker_connected = True
        self._connects += 1
        if self._connects > 1:
            self.reconnects += 1
        self.session_present = bool(flags.session_present)
        if self._connects > 1 and not flags.session_present:
            self.log.error("the broker kept no session for client id %r: whatever it queued while "
                           "we were away is lost (persistence off, or the session expired)",
                           self.config.client_id)
        else:
            self.log.info("connected to %s:%d (%s session)", self.config.host, self.config.port,
                          "resumed" if flags.session_present else "new")
        client.subscribe([(topic, 1) for topic in self.topics])
        if self.link_problem is not None:
            self._schedule_link_check(LINK_STABLE_S)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[Any],
                      properties: Properties | None) -> None:
        refused = [f"{t}: {r}" for t, r in zip(self.topics, reasons, strict=False) if r.is_failure]
        if refused:
            self._set_state(SourceState.FAILED, "subscription refused (broker ACL?): " + "; ".join(refused))
        else:
            self._set_state(SourceState.CONNECTED)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.broker_connected = False
        # paho calls this inside its ``except OSError``: the reason (refused, TLS certificate
        # not trusted, ...) is the exception being handled
        exc = sys.exc_info()[1]
        why = f": {exc}" if exc is not None else ""
        self._set_state(SourceState.DISCONNECTED,
                        f"cannot connect to {self.config.host}:{self.config.port}{why}; retrying")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Properties | None) -> None:
        was_up, self.broker_connected = self.broker_connected, False
        self._acks.reset(client)  # those mids die with the connection; the broker resends
        if was_up and not self._stopping:  # (a refused connect has said why already)
            self._set_state(SourceState.DISCONNECTED, f"broker connection lost: {reason}")
            self._dropped(reason)

    # --- the link to the broker ---------------------------------------------------------

    def _dropped(self, reason: Any) -> None:
        """An unexpected disconnect: a takeover or a flapping link is reported at once, any
        other once it has lasted LINK_DOWN_AFTER_S."""
        now = time.monotonic()
        self._drops.append(now)
        while self._drops and now - self._drops[0] > LINK_WINDOW_S:
            self._drops.popleft()
        if getattr(reason, "value", None) == SESSION_TAKEN_OVER:
            self._link_down(f"another client took over the session of client id "
                            f"{self.config.client_id!r} (check the broker's accounts and ACL)")
        elif len(self._drops) >= 2:
            self._link_down(f"the broker dropped the connection {len(self._drops)} times within "
                            f"{LINK_WINDOW_S:.0f} s ({reason}); messages may go to another "
                            f"client with id {self.config.client_id!r}")
        else:
            self._schedule_link_check(LINK_DOWN_AFTER_S)

    def _schedule_link_check(self, delay: float | None) -> None:
        with self._link_lock:
            if self._link_timer is not None:
                self._link_timer.cancel()
            self._link_timer = None
            if delay is not None and not self._stopping:
                self._link_timer = threading.Timer(delay, self._check_link)
                self._link_timer.daemon = True
                self._link_timer.start()

    def _check_link(self) -> None:
        if self._stopping:
            return
        if not self.broker_connected:
            self._link_down(f"no connection to the broker {self.config.host}:{self.config.port} "
                            f"for {LINK_DOWN_AFTER_S:.0f} s: {self.last_error or 'lost'}")
        elif self.link_problem is not None and (
                not self._drops or time.monotonic() - self._drops[-1] >= LINK_STABLE_S):
            self._link_report(None)
        elif self.link_problem is not None:
            self._schedule_link_check(LINK_STABLE_S)
        # connected, nothing reported: nothing to do

    def _link_down(self, problem: str) -> None:
        self._link_report(problem)
        self._schedule_link_check(LINK_STABLE_S if self.broker_connected else LINK_DOWN_AFTER_S)

    def _link_report(self, problem: str | None) -> None:
        if problem == self.link_problem:
            return
        if problem is None:
            self.log.info("MQTT link good again")
        else:
            self.log.error("MQTT link problem: %s", problem)
        self.link_problem = problem
        chairs = sorted(set(self.config.chairs.values())) or None  # None: every chair of the bay
        try:
            self.sink.report_source(self.name, problem is None, problem or "link back", chairs,
                                    kind=self.kind)
        except Exception:
            self.log.exception("cannot report the link state to the core")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._handling:
            if self._stopping:
                return  # not acknowledged: the broker keeps it for our next session
            self._take(msg)

    def _take(self, msg: mqtt.MQTTMessage) -> None:
        self.messages += 1
        entry = self._acks.add(msg.mid, msg.qos)
        ticket = None
        try:
            ticket = self._handle(msg)
        except _SinkRefused as exc:
            self._acks.done(entry, send=False)
            self.reject("sink_error", f"{_topic(msg)}: {exc.__cause__!r}; not acknowledged")
            self.log.error("the core refused a message (%s); left unacknowledged for redelivery",
                           exc.__cause__)
            return
        except Exception:
            self.reject("handler_error", f"{_topic(msg)}: {bytes(msg.payload[:80])!r}")
            self.log.exception("handling a message on %s failed; acknowledged anyway so that it is "
                               "not redelivered forever", _topic(msg))
        try:
            self.sink.on_durable(ticket if ticket is not None else self._last_ticket,
                                 partial(self._acks.done, entry))
        except Exception:
            self.log.exception("cannot wait for the store; message left unacknowledged")
            self._acks.done(entry, send=False)

    # --- messages --------------------------------------------------------------------

    def _handle(self, msg: mqtt.MQTTMessage) -> int | None:
        """Take one message; returns the store ticket of its readings (None: nothing stored)."""
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            self.reject("bad_topic", "topic is not UTF-8")
            return None
        try:
            parsed = parse_topic(topic, self.config.topic_prefix, self.config.bay)
        except ParseError as exc:
            self.reject(exc.reason, str(exc))
            return None
        if parsed is None:
            self.reject("unexpected_topic", repr(topic))
            return None
        topic_chair, kind = parsed
        chair = self.config.chairs.get(topic_chair, topic_chair)
        if kind == "status":
            self._status(chair, topic_chair, msg.payload)
            return None
        try:
            frame = parse_vitals(msg.payload)
        except ParseError as exc:
            self.reject(exc.reason, f"{topic}: {exc}")
            return None
        device, seq, t = frame.device or topic_chair, frame.seq or 0, frame.time or 0.0
        check = self.seqs.check(device, seq, t)
        if check.verdict is SeqVerdict.DUPLICATE:
            self.duplicates += 1
            self.reject("duplicate", f"{topic}: device {device} seq {seq} again")
            return None
        readings = frame_readings(frame, chair=chair, device=device, receive_time=self.sink.clock.now())
        try:
            result = self.deliver(readings)
        except Exception as exc:
            raise _SinkRefused(str(exc)) from exc
        if result.ticket is not None:
            self._last_ticket = result.ticket
        self.seqs.record(device, seq, t, check)
        if check.missing:
            self.log.warning("device %s (%s): seq gap %d -> %d, %d message(s) missing", device, topic,
                             seq - check.missing - 1, seq, check.missing)
            try:
                self.sink.report_gap(chair, device, check.missing, seq - check.missing - 1, seq)
            except Exception:
                self.log.exception("cannot report the gap of device %s to the core", device)
        elif check.verdict is SeqVerdict.RESTART:
            self.log.info("device %s (%s): seq restarted at %d", device, topic, seq)
        self._devices_by_chair[topic_chair] = device
        self._devices_by_chair.move_to_end(topic_chair)
        if len(self._devices_by_chair) > 1024:
            self._devices_by_chair.popitem(last=False)
        return result.ticket

    def _status(self, chair: str, topic_chair: str, payload: bytes) -> None:
        try:
            online = parse_status(payload)
        except ParseError as exc:
            self.reject(exc.reason, f"chair {topic_chair}: {exc}")
            return
        device = self._devices_by_chair.get(topic_chair)
        detail = f"MQTT status {'online' if online else 'offline'}" + (f", device {device}" if device else "")
        try:
            self.sink.report_connection(chair, f"mqtt:{topic_chair}", online, detail)
        except KeyError:  # monitor.core.NotFound: no such chair
            self.reject("core:unknown_chair", f"status for chair {chair!r}")


def _topic(msg: mqtt.MQTTMessage) -> str:
    try:
        return msg.topic
    except UnicodeDecodeError:
        return repr(msg._topic)


def _path(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _first_line(p: Path | None) -> str | None:
    if p is None:
        return None
    lines = p.read_text(encoding="utf-8").splitlines()
    return lines[0] if lines else ""
