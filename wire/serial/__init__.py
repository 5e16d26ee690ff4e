"""The serial line dialects of docs/protocols.md#serial-lines, one module each.

Every module holds ``parse`` (one line in, a :class:`~monitor.seam.Frame` or None out, or a
:class:`~monitor.seam.ParseError`), ``format`` (its inverse), its code tables and ``DIALECT``
(a :class:`~wire.dialect.Dialect`). :mod:`wire.registry` finds every module of this package
that has a ``DIALECT``: a new serial dialect is one new file here, plus its samples and
tests. :mod:`wire.serial.common` holds what the dialects share.

ParseError reasons (the counter keys) across the dialects:

``malformed``
    the line does not have the shape of its protocol (missing date/time, missing key,
    token without ``=``, duplicate key, wrong number of fields, not starting with ``$``).
``bad_value``
    a field is there but its value is not what it must be (not a number, not hex, a bad
    timestamp, an unknown flag name, a bad device id or sequence number).
``checksum``
    Chairside line: checksum missing, not two uppercase hex digits, or wrong.
``unknown_sentence``
    Chairside line: a correct checksum but a sentence other than ``$VT``.
``unknown_status``
    Nellcor row: a two-letter status code that is not one of the documented ones.

Values are converted to ``float``; ``None`` means the device said "no value" (dashes, or an
empty Chairside field). The parsers do not check plausible ranges (the core does), but they
refuse anything that is not a plain decimal number (``nan``, ``inf``, ``1e3``, non-ASCII
digits are ``bad_value``). Frame.values only ever holds keys of section 1; dialect fields
the core has no parameter for (PI, SpCO, pulse amplitude, alarm words...) go to
``Frame.extra`` for display.

The device dialects carry a local date and time without a zone: it is kept, as the device
wrote it, in ``extra["device_local_time"]`` and ``Frame.time`` stays ``None`` (the source
uses the receive time). Only the Chairside line has a ``ts`` with a zone. Their formatters
write ``extra["device_local_time"]`` when there is one, else ``Frame.time`` as a UTC clock
(a simulated device keeps its clock in UTC).
"""
