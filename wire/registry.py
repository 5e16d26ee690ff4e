"""Every wire format by protocol name: the one list the configuration, the simulators, the
exports and ``chairside decode`` read.

The serial dialects are found, not listed: every module of :mod:`wire.serial` with a
``DIALECT`` is one (a new serial dialect is one new file there). MQTT JSON and HL7 PCD-01
are the two message formats.
"""

from __future__ import annotations

import importlib
import pkgutil

import wire.serial
from wire import mqtt_json
from wire.dialect import Dialect
from wire.hl7 import pcd01

__all__ = ["DIALECTS", "SERIAL_PROTOCOLS", "Dialect", "lookup", "names"]


def _serial_dialects() -> list[Dialect]:
    found = []
    for info in sorted(pkgutil.iter_modules(wire.serial.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"wire.serial.{info.name}")
        dialect = getattr(module, "DIALECT", None)
        if isinstance(dialect, Dialect):
            found.append(dialect)
    return found


def _build() -> dict[str, Dialect]:
    out: dict[str, Dialect] = {}
    for dialect in [*_serial_dialects(), mqtt_json.DIALECT, pcd01.DIALECT]:
        for name in (dialect.name, *dialect.aliases):
            if name in out:
                raise RuntimeError(f"two wire formats are named {name!r}")
        out[dialect.name] = dialect
    return out


#: Protocol name -> dialect (serial dialects first, by name; then mqtt-json and hl7).
DIALECTS: dict[str, Dialect] = _build()
#: The ``protocol`` names a serial source takes.
SERIAL_PROTOCOLS: tuple[str, ...] = tuple(n for n, d in DIALECTS.items() if d.transport == "serial")
_ALIASES = {alias: d for d in DIALECTS.values() for alias in d.aliases}


def names() -> list[str]:
    """Every name :func:`lookup` takes: protocol names and their aliases."""
    return [*DIALECTS, *_ALIASES]


def lookup(name: str) -> Dialect:
    """The dialect of a protocol name or alias. KeyError naming the known ones."""
    dialect = DIALECTS.get(name) or _ALIASES.get(name)
    if dialect is None:
        raise KeyError(f"no wire format {name!r}; known: {', '.join(names())}")
    return dialect
