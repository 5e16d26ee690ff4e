"""The schemas of the OpenAPI description of the HTTP API (its ``components``), and the
building blocks the paths (:mod:`dashboard.openapi_paths`) are written with; the document is
put together in :mod:`dashboard.openapi`. Built once, at import, from the enums the answers are
made of (no I/O).
"""

from __future__ import annotations

from typing import Any

from monitor.records import AlarmKind, AlarmState, Priority, SessionEventKind, SessionState
from monitor.seam import SourceState

__all__ = ["NUM_OR_NULL", "SCHEMAS", "STR", "STR_OR_NULL", "TIME", "TIME_OR_NULL", "nullable", "obj", "ref"]

_REF = "#/components/schemas/"


def ref(name: str) -> dict[str, Any]:
    """A reference to the schema ``name`` of :data:`SCHEMAS`."""
    return {"$ref": _REF + name}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or null."""
    return {**schema, "nullable": True}


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object of ``properties``, all of them required unless ``required`` says which."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required}


TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC"}
TIME_OR_NULL = nullable(TIME)
STR = {"type": "string"}
STR_OR_NULL = nullable(STR)
NUM_OR_NULL = {"type": "number", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": {"type": "string", "minLength": 1}}),
    "Confirm": obj({"error": {"type": "string", "minLength": 1},
                    "confirm": {"type": "array", "items": STR}}, required=["error"]),
    "BaselineProposal": obj({
        "values": {"type": "object", "additionalProperties": {"type": "number"}},
        "since": TIME, "until": TIME,
        "readings": {"type": "object", "additionalProperties": {"type": "integer"}},
        "left_out_in_alarm": {"type": "object", "additionalProperties": {"type": "integer"}},
    }),
    "Alarm": obj({
        "id": {"type": "integer", "minimum": 1},
        "chair": STR,
        "kind": {"type": "string", "enum": [k.value for k in AlarmKind]},
        "code": STR,
        "priority": {"type": "string", "enum": [p.label for p in Priority]},
        "state": {"type": "string", "enum": [s.value for s in AlarmState]},
        "message": STR,
        "raised_at": TIME,
        "onset_at": {**TIME_OR_NULL, "description": "when the condition began (device time of the "
                     "first breaching reading); raised_at: when it was annunciated"},
        "value": NUM_OR_NULL,
        "limit": NUM_OR_NULL,
        "parameter": STR_OR_NULL,
        "sounding": {"type": "boolean"},
        "updated_at": TIME,
        "paused_until": TIME_OR_NULL,
        "acknowledged_by": STR_OR_NULL,
        "acknowledged_at": TIME_OR_NULL,
        "cleared_at": TIME_OR_NULL,
    }),
    "AlarmEvent": obj({
        "time": TIME,
        "chair": STR,
        "alarm_id": {"type": "integer", "minimum": 1},
        "old_state": {"type": "string", "enum": [*(s.value for s in AlarmState), None], "nullable": True},
        "new_state": {"type": "string", "enum": [s.value for s in AlarmState]},
        "user": STR_OR_NULL,
        "note": STR,
        "alarm": ref("Alarm"),
    }),
    "Vital": obj({
        "value": NUM_OR_NULL,
        "ts": TIME_OR_NULL,
        "unit": STR,
        "age_s": NUM_OR_NULL,
        "stale": {"type": "boolean"},
    }),
    "News2": obj({
        "total": {"type": "integer", "minimum": 0},
        "partial": {"type": "boolean"},
        "components": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "missing": {"type": "array", "items": STR},
        "not_measured": {"type": "array", "items": STR},
        "response": STR,
    }),
    "Session": obj({
        "id": STR,
        "chair": STR,
        "patient": STR,
        "protocol": STR,
        "drug": STR,
        "dose": STR,
        "state": {"type": "string", "enum": [s.value for s in SessionState]},
        "planned_minutes": NUM_OR_NULL,
        "nibp_interval_s": NUM_OR_NULL,
        "observation_minutes": NUM_OR_NULL,
        "started_at": TIME,
        "started_by": STR,
        "infusion_started_at": TIME_OR_NULL,
        "infusion_stopped_at": TIME_OR_NULL,
        "observation_started_at": TIME_OR_NULL,
        "observation_remaining_s": NUM_OR_NULL,
        "ended_at": TIME_OR_NULL,
        "ended_by": STR_OR_NULL,
        "baseline": {"type": "object", "additionalProperties": {"type": "number"}},
        "baseline_source": STR_OR_NULL,
        "limit_overrides": {"type": "array", "items": {"type": "object"}},
    }),
    "SessionEvent": obj({
        "time": TIME,
        "kind": {"type": "string", "enum": [k.value for k in SessionEventKind]},
        "user": STR,
        "detail": STR,
        "data": {"type": "object"},
    }),
    "Chair": obj({
        "chair": STR,
        "label": STR,
        "bay": STR,
        "connection": {"type": "string", "enum": ["online", "stale", "offline"]},
        "delayed": {"type": "boolean", "description": "data arriving with device times behind the "
                    "monitor's clock by more than the configured limit (shown as DELAYED)"},
        "delayed_s": {"type": "object", "additionalProperties": {"type": "number"},
                      "description": "per delayed parameter: seconds behind"},
        "last_reading_at": TIME_OR_NULL,
        "vitals": {"type": "object", "additionalProperties": ref("Vital")},
        "news2": ref("News2"),
        "alarms": {"type": "array", "items": ref("Alarm")},
        "audio_paused_until": TIME_OR_NULL,
        "session": nullable(ref("Session")),
    }),
    "Health": obj({
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "role": {"type": "string", "enum": ["leader", "standby"],
                 "description": "leader: this server serves the bay; a standby answers 503 (a warm standby, "
                                "docs/high-availability.md)"},
        "bay": STR,
        "adapters": {"type": "array", "items": obj({
            "name": STR,
            "kind": STR,
            "state": {"type": "string", "enum": [s.value for s in SourceState]},
        })},
        "store": {"type": "object", "nullable": True},
        "store_writable": {"type": "boolean"},
        "source_problems": {"type": "object", "additionalProperties": STR,
                            "description": "sources whose own link failed (e.g. MQTT session taken over)"},
        "readings_accepted": {"type": "integer", "minimum": 0},
        "readings_rejected": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
    }),
}
# what /healthz tells anyone while login is on: no addresses, paths, ids or counters
_PUBLIC = ("status", "role", "store_writable", "adapters", "source_problems")
SCHEMAS["PublicHealth"] = obj({key: SCHEMAS["Health"]["properties"][key] for key in _PUBLIC})
# a $ref sibling is ignored in OpenAPI 3.0: a nullable reference is an allOf
SCHEMAS["Chair"]["properties"]["session"] = {"allOf": [ref("Session")], "nullable": True}
