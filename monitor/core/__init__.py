"""The monitoring core: one object per bay that every reading and every action goes through.

Ways in (each thread-safe, each the only way to make its kind of change)::

    ingest(readings)                  every reading from every adapter and simulator
    report_connection(chair, source, online)
    tick()                            time passing (a ticker thread calls it about 1/s)
    acknowledge / acknowledge_chair / pause_audio   operator actions on alarms (audited)
    start_session / session_step / set_baseline / confirm_baseline / set_limits / end_session
    enter_manual_nibp                 a nurse's NIBP reading, taken in like a device's (audited)

Inside, every alarm change goes through ``_alarm``: the engine decides, the store records,
the listeners (the dashboard) hear of it. Readings go to the ring buffers for display and
to the store's writer for durability; ``IngestResult.ticket`` says when they are on disk.

Modules: :mod:`.monitor` (the :class:`Monitor`: state, lifecycle, readings, alarm actions,
the alarm path), :mod:`.session_actions` (sessions, baselines, manual NIBP, limits),
:mod:`.queries` (status, sessions, alarms, trends) and :mod:`.results` (what it returns and
raises).
"""

from __future__ import annotations

from monitor.core.monitor import Monitor
from monitor.core.results import (
    BaselineProposal,
    ChairStatus,
    ConfirmationNeeded,
    ConfirmationRequired,
    InvalidLimits,
    MonitorError,
    NoHistory,
    NotFound,
    VitalStatus,
    alarm_line,
)
from monitor.seam import IngestResult

__all__ = [
    "BaselineProposal",
    "ChairStatus",
    "ConfirmationNeeded",
    "ConfirmationRequired",
    "IngestResult",
    "InvalidLimits",
    "Monitor",
    "MonitorError",
    "NoHistory",
    "NotFound",
    "VitalStatus",
    "alarm_line",
]
