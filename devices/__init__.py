"""Device adapters: serial, MQTT and HL7 sources feeding the core (their wire formats are in
:mod:`wire`).

Errors (one tree, under the project-wide base; a frame that cannot be parsed is the seam's
:class:`monitor.seam.ParseError`)::

    ChairsideError                          monitor.errors
    └── DeviceError                         devices.source: a device or its input is unusable
        ├── _SinkRefused                    devices.mqtt_messages (internal: the core refused)
        └── _LinkIdle                       devices.serial_source (internal: a silent network link)
"""

__all__: list[str] = []  # the package's modules are imported by name
