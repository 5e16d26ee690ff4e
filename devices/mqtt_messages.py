"""What the MQTT source (:mod:`devices.mqtt_source`) does with each message: payload to
readings (parsed by the pure functions of ``wire.mqtt_json``), de-duplication by device and seq
(:class:`devices.mqtt_seqs.SeqTracker`), gap reports, presence, and the acknowledgements, sent
in order and only once the readings are committed.

No message lost between device and store
----------------------------------------
- A fixed client id and a persistent session (:mod:`devices.mqtt_session`): while the monitor
  is away the broker queues our QoS 1 messages.
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
  messages, and the de-duplication recognises the ones already ingested).
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

Presence
--------
``status`` messages (retained, and the device's Last Will ``offline``) go to
``sink.report_connection(chair, "mqtt:<topic chair>", online)``: the core raises or clears
DEVICE_OFFLINE for an armed chair. The source name is the topic's chair, stable across
restarts and devices, so an ``online`` always clears the alarm its ``offline`` raised.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt

from devices.mqtt_seqs import SeqTracker, SeqVerdict
from devices.source import DeviceError, SourceBase, frame_readings
from monitor.config import MqttSource as MqttConfig
from monitor.seam import ParseError, Sink
from wire.mqtt_json import parse_status, parse_topic, parse_vitals

__all__ = ["MqttMessageHandler"]


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

# --- the messages -----------------------------------------------------------------------


class MqttMessageHandler(SourceBase):
    """The message side of :class:`devices.mqtt_source.MqttSource`: paho's ``on_message``
    callback (network thread) and what it does, with the counters and the de-duplication
    memory. The subclass connects, and resets :attr:`_acks` with each connection."""

    def __init__(self, config: MqttConfig, sink: Sink) -> None:
        super().__init__(config.name, sink)
        self.config = config
        self.seqs = SeqTracker()
        self.duplicates = 0
        self.messages = 0
        self._acks = _AckQueue()
        self._handling = threading.Lock()  # held while a message is being taken
        self._stopping = False
        self._last_ticket: int | None = None
        self._devices_by_chair: OrderedDict[str, str] = OrderedDict()  # topic chair -> device

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

