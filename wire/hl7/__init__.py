"""HL7 v2 (docs/protocols.md#hl7): :mod:`~wire.hl7.v2` the basics (separators, escaping, MSH,
DTM), :mod:`~wire.hl7.mllp` the framing, :mod:`~wire.hl7.pcd01` ORU^R01 observations (IHE
PCD-01) read and written, :mod:`~wire.hl7.ack` the acknowledgements."""
