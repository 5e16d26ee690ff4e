"""Readings from an MQTT broker (docs/protocols.md#mqtt), with paho-mqtt 2.x: the source.

One client subscribes, with QoS 1, to ``<prefix>/<bay>/+/vitals`` and
``<prefix>/<bay>/+/status``. This module holds :class:`MqttSource`: starting and stopping,
connecting, subscribing and reconnecting, its state and ``health()``, and the watch on its link
to the broker. What it does with each message (readings, de-duplication, gaps, presence, and
the acknowledgements sent once the store has committed) is :mod:`devices.mqtt_messages`; the
seq memory is :mod:`devices.mqtt_seqs`; the client's session, credentials and TLS options are
:mod:`devices.mqtt_session`.

The monitor's own link
----------------------
Another client connecting with the monitor's client id takes its session over (the broker
disconnects the monitor; what arrives meanwhile goes to the intruder). The deployment config
makes that impossible (``use_username_as_clientid``); this source also watches for it: a
disconnect the broker says was a session takeover, a second unexpected disconnect within
``LINK_WINDOW_S``, or a disconnect that lasts ``LINK_DOWN_AFTER_S`` is reported to the sink
(``report_source``: a technical alarm on every chair the source serves, /healthz degraded)
until the link has been up again for ``LINK_STABLE_S``.

A clustered broker
------------------
With ``brokers`` (a cluster's nodes) the source connects to the first that answers and, when
a connection fails or is lost, tries the next one in turn: 1 s apart through the whole list,
then each further round of the list with double the wait, up to ``reconnect_max_s`` (one
endpoint: 1 s doubling); back to 1 s after a successful connect. A cluster that lost a node
may refuse the session on the next node for a few seconds (it is electing new leaders for
the session's replicated state), so the other nodes are tried again soon. Every node is offered the
same client id and persistent session, so the cluster hands over the session and the QoS 1
messages queued for it; what the lost node had sent but not seen acknowledged comes again and
is recognised by the de-duplication. ``health()["broker"]`` names the endpoint in use and
counts the failovers. paho has no list of hosts: :meth:`MqttSource._on_pre_connect` points the
client at the endpoint before each connect (docs/mqtt.md#clustered-brokers).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from devices.mqtt_messages import MqttMessageHandler
from devices.mqtt_seqs import SeqCheck, SeqTracker, SeqVerdict
from devices.mqtt_session import connect_session, make_client
from monitor.config import MqttSource as MqttConfig
from monitor.seam import Sink, SourceState

__all__ = ["MqttSource", "SeqCheck", "SeqTracker", "SeqVerdict"]  # the seq names: re-exported


STOP_TIMEOUT_S = 5.0
LINK_DOWN_AFTER_S = 3.0  # a disconnect this long is a lost link
LINK_WINDOW_S = 60.0  # two unexpected disconnects within this are a flapping link
LINK_STABLE_S = 20.0  # connected this long with no drop: the link is good again
SESSION_TAKEN_OVER = 142  # MQTT 5 reason code of the broker's DISCONNECT


class MqttSource(MqttMessageHandler):
    kind = "mqtt"

    def __init__(self, config: MqttConfig, sink: Sink) -> None:
        super().__init__(config, sink)
        base = f"{config.topic_prefix}/{config.bay}/+"
        self.topics = (f"{base}/vitals", f"{base}/status")
        self.broker_connected = False
        self.session_present: bool | None = None
        self.endpoints = config.endpoints
        self._endpoint_i = 0  # the endpoint the client connects (or is connected) to
        self._advance = False  # the last connect failed or its connection was lost: try the next
        self._failed = 0  # connects failed (or lost) since the last successful one
        self._connected_to: str | None = None  # the endpoint of the last successful connect
        self.failovers = 0
        self._lifecycle = threading.Lock()
        self._client: mqtt.Client | None = None
        self._connects = 0
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
            self._endpoint_i, self._advance, self._failed = 0, False, 0
            self._set_state(SourceState.STARTING)
            self._seed_seqs()
            try:
                client = self._make_client()
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self.log.error("cannot set up the MQTT client: %s", exc)
                self._set_state(SourceState.FAILED, f"configuration: {exc}")
                return
            self._acks.reset(client)
            connect_session(client, self.config, *self.endpoints[0])
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
            "broker": {"host": self.endpoints[self._endpoint_i][0],
                       "port": self.endpoints[self._endpoint_i][1], "endpoint": self.endpoint,
                       "endpoints": [_endpoint(h, p) for h, p in self.endpoints],
                       "failovers": self.failovers, "client_id": cfg.client_id,
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
        client = make_client(self.config, self._on_log)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def endpoint(self) -> str:
        """``host:port`` of the broker the client connects (or is connected) to."""
        return _endpoint(*self.endpoints[self._endpoint_i])

    # --- paho callbacks (network thread) ---------------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        """Before each connect: after a failed or lost connection, the next endpoint; and the
        wait before the connect after this one, should it fail (1 s within a round of the
        endpoints, doubling with each round)."""
        if self._advance:
            self._failed += 1
            if len(self.endpoints) > 1:
                previous = self.endpoint
                self._endpoint_i = (self._endpoint_i + 1) % len(self.endpoints)
                self.log.warning("broker %s unavailable; trying %s", previous, self.endpoint)
        self._advance = False
        most = max(1, math.ceil(self.config.reconnect_max_s))
        client.reconnect_delay_set(min(2 ** min(self._failed // len(self.endpoints), 16), most), most)
        # paho 2.x's host/port setters refuse while connecting, and this is the moment
        # reconnect() has not yet opened its socket to _host:_port
        client._host, client._port = self.endpoints[self._endpoint_i]

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
        if self._stopping and text.startswith("Client is not connected"):
            return  # paho's network loop says so once after every clean disconnect
        self._paho_log.log(mqtt.LOGGING_LEVEL.get(level, logging.INFO), "%s", text)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: Any, properties: Properties | None) -> None:
        if reason.is_failure:
            self.broker_connected = False
            self._advance = True
            self._set_state(SourceState.DISCONNECTED,
                            f"broker {self.endpoint} refused the connection: {reason}")
            return
        self._acks.reset(client)
        self.broker_connected = True
        self._failed = 0
        self._connects += 1
        if self._connects > 1:
            self.reconnects += 1
        self.session_present = bool(flags.session_present)
        if self._connects > 1 and not flags.session_present:
            self.log.error("the broker kept no session for client id %r: whatever it queued while "
                           "we were away is lost (persistence off, or the session expired)",
                           self.config.client_id)
        else:
            self.log.info("connected to %s (%s session)", self.endpoint,
                          "resumed" if flags.session_present else "new")
        if self._connected_to is not None and self._connected_to != self.endpoint:
            self.failovers += 1
            self.log.warning("failed over from broker %s to %s (session %s)", self._connected_to,
                             self.endpoint, "resumed" if flags.session_present else "NOT resumed")
        self._connected_to = self.endpoint
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
        self._advance = True
        # paho calls this inside its ``except OSError``: the reason (refused, TLS certificate
        # not trusted, ...) is the exception being handled
        exc = sys.exc_info()[1]
        why = f": {exc}" if exc is not None else ""
        self._set_state(SourceState.DISCONNECTED,
                        f"cannot connect to {self.endpoint}{why}; retrying"
                        + (" the next broker" if len(self.endpoints) > 1 else ""))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Properties | None) -> None:
        was_up, self.broker_connected = self.broker_connected, False
        self._advance = not self._stopping
        self._acks.reset(client)  # those mids die with the connection; the broker resends
        if was_up and not self._stopping:  # (a refused connect has said why already)
            self._set_state(SourceState.DISCONNECTED, f"connection to broker {self.endpoint} lost: "
                                                      f"{reason}")
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
            self._link_down(f"no connection to the broker {self.endpoint} "
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


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
