"""Fuzz the HTTP API from its OpenAPI description (dashboard.openapi) with schemathesis, in
process (WSGI) against a real core on a real SQLite file: no request, valid or not, may get a
5xx, and every answer must be what the description says (status, media type, JSON schema)."""

from __future__ import annotations

import re

import pytest
import schemathesis
from conftest import Harness
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.api import install_api
from dashboard.live import LiveBay
from dashboard.openapi import openapi_spec

SPEC = openapi_spec()
OPERATIONS = [(path, method) for path, item in SPEC["paths"].items() for method in item]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 40}  # a few seconds in all


def _app(harness: Harness) -> Flask:
    app = Flask("fuzz")
    install_api(app, LiveBay(harness.monitor, max_age=0))
    return app


@pytest.fixture
def bay(harness: Harness):
    """A bay with something in it, so that real ids exist: a session with readings and
    events, an open alarm, a cleared one, and an ended session."""
    m = harness.monitor
    ended = m.start_session("c2", "MRN-9", "nurse.ann")
    harness.feed("hr", 70, chair="c2", seconds=2)
    m.end_session(ended.id, "nurse.ann")
    session = m.start_session("c1", "MRN-1", "nurse.ann", protocol="ketamine")
    harness.feed("spo2", 97, seconds=2)
    harness.feed("nibp_sys", 190)
    harness.feed("nibp_sys", 120)  # clears that one
    harness.feed("nibp_sys", 210)  # and raises another
    harness.flush()
    app = _app(harness)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    alarm_ids = [e.alarm_id for e in m.store.alarm_events()]
    known = {"chair": ["c1", "c2", "c3"], "session_id": [session.id, ended.id],
             "alarm_id": sorted(set(alarm_ids)), "username": ["nurse.ann", "nobody"]}
    return schema, known


def _negatable(operation: dict) -> bool:
    """Whether an operation has an input that invalid data can be made for and still reach it
    (a free string in the path cannot: any string is one; an empty one is another URL)."""
    return "requestBody" in operation or any(
        p["in"] != "path" or p["schema"]["type"] != "string" for p in operation.get("parameters", []))


RUNS = [(path, method, mode) for path, method in OPERATIONS for mode in GenerationMode
        if mode is GenerationMode.POSITIVE or _negatable(SPEC["paths"][path][method])]


@pytest.mark.parametrize(("path", "method", "mode"), RUNS,
                         ids=[f"{m.upper()} {p} {mode}" for p, m, mode in RUNS])
def test_no_server_errors(bay, path, method, mode):
    schema, known = bay
    operation = schema[path][method.upper()]
    names = {p["name"] for p in SPEC["paths"][path][method].get("parameters", []) if p["in"] == "path"}

    @settings(max_examples=MAX_EXAMPLES[mode], derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case, data):
        if mode is GenerationMode.POSITIVE and names and data.draw(st.booleans(), "use real ids"):
            case.path_parameters = {**case.path_parameters,
                                    **{n: data.draw(st.sampled_from(known[n]), n) for n in names}}
        case.call_and_validate(checks=CHECKS)

    fuzz()


# Found while describing the API (the fuzzer's strings rarely hit these): str.isdigit() is true
# for "²" (int() then raised: a 500) and for U+0661 (Arabic-Indic one: int() made it alarm 1).
@pytest.mark.parametrize("url", ["/api/v1/alarms/%C2%B2/acknowledge", "/api/v1/alarms/%D9%A1/acknowledge"])
def test_non_ascii_digits_are_not_alarm_ids(harness, url):
    answer = _app(harness).test_client().post(url, json={"user": "n"})
    assert answer.status_code == 404 and "no alarm with id" in answer.get_json()["error"]


@pytest.mark.parametrize("limit", ["²", "١٢", "1_0", " 5"])
def test_non_ascii_digits_are_not_a_limit(harness, limit):
    answer = _app(harness).test_client().get("/api/v1/alarms", query_string={"state": "all", "limit": limit})
    assert answer.status_code == 400 and "limit must be" in answer.get_json()["error"]


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_the_description_covers_every_route(harness):
    app = _app(harness)
    routes = {(_openapi_path(r.rule), m.lower()) for r in app.url_map.iter_rules()
              if r.endpoint != "static" for m in r.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(OPERATIONS)
    served = app.test_client().get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.get_json() == SPEC


def test_the_description_is_valid_openapi():
    schema = schemathesis.openapi.from_dict(openapi_spec())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(OPERATIONS)
