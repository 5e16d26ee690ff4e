"""Chairside's monitoring core: readings, ring buffers, alarms, sessions and the store.

Errors: one project-wide base, :class:`monitor.errors.ChairsideError` (the other packages'
roots derive from it too); the core's root is :class:`~monitor.errors.CoreError`, and the
seam's :class:`~monitor.seam.ParseError` stands beside it::

    ChairsideError                          monitor.errors (dependency-free)
    └── CoreError                           monitor.errors: anything the core raises
        ├── MonitorError                    monitor.core: what the Monitor facade refuses
        │   ├── NotFound (+KeyError)        no such chair, session or alarm
        │   ├── NoHistory                   the stored history cannot be read now (no store)
        │   ├── ConfirmationRequired        an action that needs a second, confirmed call
        │   │   └── ConfirmationNeeded      limits looser than the chair's profile defaults
        │   └── InvalidLimits (+ValueError) limits that contradict each other or the rules
        ├── AlarmError                      monitor.alarm_commands (the engine's commands)
        │   └── UnknownAlarm (+KeyError)
        ├── RuleError (+ValueError)         monitor.alarm_rules: a rule clinicians would refuse
        ├── SessionError                    monitor.sessions: a step the session's state forbids
        ├── ConfigError                     monitor.validation: the file is wrong (names the key)
        ├── StoreError                      monitor.store: the store cannot (names the file)
        │   ├── DbError                     monitor.store.db: a statement or connection failed
        │   │   └── DbIntegrityError        a constraint (a duplicate key)
        │   └── Fenced                      monitor.store.writer: another server took the bay over
        ├── AuditError                      monitor.audit: the file cannot be checked
        ├── UserError (+ValueError)         monitor.users
        │   └── NotPermitted                monitor.user_admin
        └── UnknownFormat (+ValueError)     monitor.exports
    ParseError (+ValueError)                monitor.seam: a frame that cannot be taken (the
                                            seam's: the wire formats raise it, see :mod:`wire`)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time each name is imported on first use: see __getattr__
    from monitor.alarm_engine import AlarmEngine
    from monitor.alarm_rules import DEFAULT_RULES, AlarmSettings, LimitRule
    from monitor.clock import Clock, ManualClock, SystemClock
    from monitor.config import BayConfig, ConfigError, load_config, parse_config
    from monitor.core import ChairStatus, Monitor, MonitorError
    from monitor.news2 import News2, news2
    from monitor.parameters import PARAMETERS, Parameter
    from monitor.readings import QualityFlag, Reading, RejectReason
    from monitor.records import (
        RECEIPTS_KEPT_S,
        Alarm,
        AlarmEvent,
        AlarmKind,
        AlarmState,
        MessageReceipt,
        OperatorAction,
        Priority,
        Session,
        SessionEvent,
        SessionEventKind,
        SessionState,
    )
    from monitor.ring_buffer import RingBuffer, Window
    from monitor.seam import Frame, IngestResult, ParseError, Sink, Source, SourceState
    from monitor.store import SqliteStore, Store, StoreError

# Where each export lives. The package imports nothing until a name is used, so that
# ``import station.cli`` is quick and ``chairside run`` installs its SIGTERM handler
# before the heavy imports (numpy, pydantic, sqlite...) of the core.
_SOURCES = {
    "monitor.alarm_engine": ("AlarmEngine",),
    "monitor.alarm_rules": ("DEFAULT_RULES", "AlarmSettings", "LimitRule"),
    "monitor.clock": ("Clock", "ManualClock", "SystemClock"),
    "monitor.config": ("BayConfig", "ConfigError", "load_config", "parse_config"),
    "monitor.core": ("ChairStatus", "Monitor", "MonitorError"),
    "monitor.news2": ("News2", "news2"),
    "monitor.parameters": ("PARAMETERS", "Parameter"),
    "monitor.readings": ("QualityFlag", "Reading", "RejectReason"),
    "monitor.records": ("Alarm", "AlarmEvent", "AlarmKind", "AlarmState", "MessageReceipt", "OperatorAction",
                        "Priority", "RECEIPTS_KEPT_S", "Session", "SessionEvent", "SessionEventKind",
                        "SessionState"),
    "monitor.ring_buffer": ("RingBuffer", "Window"),
    "monitor.seam": ("Frame", "IngestResult", "ParseError", "Sink", "Source", "SourceState"),
    "monitor.store": ("SqliteStore", "Store", "StoreError"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "DEFAULT_RULES",
    "PARAMETERS",
    "RECEIPTS_KEPT_S",
    "Alarm",
    "AlarmEngine",
    "AlarmEvent",
    "AlarmKind",
    "AlarmSettings",
    "AlarmState",
    "BayConfig",
    "ChairStatus",
    "Clock",
    "ConfigError",
    "Frame",
    "IngestResult",
    "LimitRule",
    "ManualClock",
    "MessageReceipt",
    "Monitor",
    "MonitorError",
    "News2",
    "OperatorAction",
    "Parameter",
    "ParseError",
    "Priority",
    "QualityFlag",
    "Reading",
    "RejectReason",
    "RingBuffer",
    "Session",
    "SessionEvent",
    "SessionEventKind",
    "SessionState",
    "Sink",
    "Source",
    "SourceState",
    "SqliteStore",
    "Store",
    "StoreError",
    "SystemClock",
    "Window",
    "load_config",
    "news2",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
