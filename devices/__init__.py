"""Device adapters: serial, MQTT and HL7 sources feeding the core, and their wire formats.

Errors (one tree, under the project-wide base)::

    ChairsideError                          monitor.errors
    └── DeviceError                         devices.source: a device or its input is unusable
        ├── ParseError (+ValueError)        devices.source: a frame that cannot be parsed
        │   └── Hl7ParseError               devices.parsers.hl7_pcd01
        └── _SinkRefused                    devices.mqtt_source (internal: the core refused)
"""
