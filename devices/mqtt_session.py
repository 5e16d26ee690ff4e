"""The MQTT source's broker session and connection options (:mod:`devices.mqtt_source`).

:func:`make_client` builds the paho-mqtt 2.x client from the configuration: a fixed client id,
MQTT 5 or 3.1.1, manual acknowledgement (:mod:`devices.mqtt_messages` acknowledges a message
once it is committed), the reconnect backoff, the credentials (the password is the first line of
``password_file``) and TLS (``tls_ca``, ``tls_cert``, ``tls_key``). :func:`connect_session`
starts connecting with a persistent session:

- A fixed client id and a persistent session: MQTT 5 ``clean_start=False`` with a
  SessionExpiryInterval of ``session_expiry_s`` (paho's defaults, clean start on the first
  connect and an expiry of 0, would both drop what the broker queued for us), or MQTT 3.1.1
  ``clean_session=False``. While the monitor is away the broker queues our QoS 1 messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.config import MqttSource as MqttConfig

__all__ = ["connect_session", "make_client"]


def make_client(cfg: MqttConfig, on_log: Callable[..., Any]) -> mqtt.Client:
    """The client, not yet connected, with no callback but ``on_log``; raises OSError or
    ValueError (a certificate or password file that cannot be read)."""
    if cfg.protocol == "5":
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                             protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                             clean_session=False, protocol=mqtt.MQTTv311)
    client.manual_ack_set(True)
    client.suppress_exceptions = True  # a second guard: the source's callbacks catch everything
    client.on_log = on_log
    client.reconnect_delay_set(1, max(1, math.ceil(cfg.reconnect_max_s)))
    if cfg.username is not None or cfg.password_file is not None:
        client.username_pw_set(cfg.username or "", _first_line(cfg.password_file))
    if cfg.tls_ca is not None or cfg.tls_cert is not None:
        client.tls_set(ca_certs=_path(cfg.tls_ca), certfile=_path(cfg.tls_cert),
                       keyfile=_path(cfg.tls_key))
    return client


def connect_session(client: mqtt.Client, cfg: MqttConfig, host: str, port: int) -> None:
    """Start connecting to ``host:port`` (paho's network thread does it) with the persistent
    session. Every later connect, to this endpoint or another node of a cluster, presents the
    same client id and session flags, so whichever node takes it hands over the session."""
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry_s
        client.connect_async(host, port, cfg.keepalive_s, clean_start=False, properties=props)
    else:
        client.connect_async(host, port, cfg.keepalive_s)


def _path(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _first_line(p: Path | None) -> str | None:
    if p is None:
        return None
    lines = p.read_text(encoding="utf-8").splitlines()
    return lines[0] if lines else ""
