"""From a ``[[sources]]`` configuration entry to a running source."""

from __future__ import annotations

from monitor.config import Hl7Source, MqttSource, SerialSource, SourceConfig
from monitor.seam import Sink, Source

__all__ = ["make_source"]


def make_source(config: SourceConfig, sink: Sink) -> Source:
    # Imported here so a bay without MQTT (say) never imports paho, and the reverse.
    if isinstance(config, SerialSource):
        from devices.serial_source import SerialSource as Serial

        return Serial(config, sink)
    if isinstance(config, MqttSource):
        from devices.mqtt_source import MqttSource as Mqtt

        return Mqtt(config, sink)
    if isinstance(config, Hl7Source):
        from devices.hl7_listener import Hl7Listener

        return Hl7Listener(config, sink)
    raise TypeError(f"no source for {config!r}")
