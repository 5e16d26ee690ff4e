"""An OpenAPI 3.0 description of the HTTP API (:mod:`dashboard.api`, docs/protocols.md#api).

Served at ``GET /api/v1/openapi.json``; ``tests/test_api_fuzz.py`` fuzzes the API from it and
checks that every route of the API is described here. Built once, at import, from the enums
the answers are made of (no I/O); :func:`openapi_spec` hands out a copy. The schemas are in
:mod:`dashboard.openapi_schemas`, the paths in :mod:`dashboard.openapi_paths`.
"""

from __future__ import annotations

import copy
from typing import Any

from dashboard.openapi_paths import PATHS
from dashboard.openapi_schemas import SCHEMAS

__all__ = ["openapi_spec"]

_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Chairside HTTP API", "version": "1",
             "description": "docs/protocols.md#api. Errors are JSON {\"error\": \"...\"} with a 4xx "
                            "status; times are RFC 3339 in UTC."},
    "paths": PATHS,
    "components": {"schemas": SCHEMAS},
}


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 description of the API (a fresh copy: the caller may change it)."""
    return copy.deepcopy(_SPEC)
