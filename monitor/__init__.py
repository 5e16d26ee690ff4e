"""Chairside's monitoring core: readings, ring buffers, alarms, sessions and the store."""

from monitor.alarm_engine import AlarmEngine
from monitor.alarm_rules import DEFAULT_RULES, AlarmSettings, LimitRule
from monitor.clock import Clock, ManualClock, SystemClock
from monitor.config import BayConfig, ConfigError, load_config, parse_config
from monitor.core import ChairStatus, IngestResult, Monitor, MonitorError
from monitor.news2 import News2, news2
from monitor.parameters import PARAMETERS, Parameter
from monitor.readings import QualityFlag, Reading, RejectReason
from monitor.records import (
    Alarm,
    AlarmEvent,
    AlarmKind,
    AlarmState,
    OperatorAction,
    Priority,
    Session,
    SessionEvent,
    SessionEventKind,
    SessionState,
)
from monitor.ring_buffer import RingBuffer, Window
from monitor.store import SqliteStore, Store, StoreError

__all__ = [
    "DEFAULT_RULES",
    "PARAMETERS",
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
    "IngestResult",
    "LimitRule",
    "ManualClock",
    "Monitor",
    "MonitorError",
    "News2",
    "OperatorAction",
    "Parameter",
    "Priority",
    "QualityFlag",
    "Reading",
    "RejectReason",
    "RingBuffer",
    "Session",
    "SessionEvent",
    "SessionEventKind",
    "SessionState",
    "SqliteStore",
    "Store",
    "StoreError",
    "SystemClock",
    "Window",
    "load_config",
    "news2",
    "parse_config",
]
