"""The wire formats: what devices and other systems send and take, one module per dialect.

Pure: no sockets, no ports, no clock. Every dialect module holds its parser, its formatter
(the inverse: ``parse(format(x)) == x`` for what the dialect can carry) and its code tables;
:mod:`wire.registry` names them all, and the configuration, the simulators, the exports and
``chairside decode`` read it. The layer imports nothing of the rest of the project but the
seam types (:mod:`monitor.seam`, and the parameter and flag tables of ``monitor.parameters``
/ ``monitor.readings``, and ``monitor.timefmt``), as ``lint-imports`` checks::

    wire/
      numbers.py         decimal text in and out, shared by the dialects
      lines.py           LineSplitter: a serial byte stream cut into lines
      serial/            one module per serial line dialect (docs/protocols.md#serial-lines)
        common.py        the helpers the serial dialects share
        masimo.py  nonin.py  nellcor.py  chairside_line.py
      mqtt_json.py       MQTT topics and JSON payloads (section 2)
      hl7/               HL7 v2 (section 4)
        v2.py            separators, escaping, MSH, DTM: written once, for the listener and the exports
        mllp.py          MLLP framing
        pcd01.py         IHE PCD-01 ORU^R01 observations
        ack.py           acknowledgements
      registry.py        protocol name -> Dialect

Error tree::

    ChairsideError                  monitor.errors: the project-wide base
    +-- ParseError(reason)          monitor.seam: a frame that cannot be taken (also a ValueError)
        +-- Hl7ParseError           wire.hl7.pcd01: a message that cannot be taken (with its MSH)

A formatter raises plain ``ValueError`` for what its dialect cannot write.
"""

__all__: list[str] = []  # the package's modules are imported by name
