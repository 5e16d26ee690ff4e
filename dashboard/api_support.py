"""What every route of the HTTP API (:mod:`dashboard.api`) shares: the refusal it raises
(:class:`ApiError`, answered as JSON with its status), the reading and checking of a request's
body and query arguments, the acting user, and :class:`EncodedJson` (a view's JSON bytes
reused while the view stays the same)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request

from dashboard.auth import require
from dashboard.errors import DashboardError

__all__ = ["MAX_BODY", "ApiError", "EncodedJson", "acting_user", "flag", "int_arg", "request_body",
           "string_field"]

MAX_BODY = 16 * 1024


class ApiError(DashboardError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def acting_user(body: dict[str, Any], permission: str) -> str:
    """Who does this: the logged-in user if the role allows ``permission`` (401/403
    otherwise), or with login off the body's ``"user"``."""
    name = require(permission)
    if name is not None:
        return name
    user = body.get("user")
    if not isinstance(user, str) or not user.strip() or len(user) > 64:
        raise ApiError(400, "the body needs \"user\": who does this (1-64 characters)")
    return user.strip()


def request_body() -> dict[str, Any]:
    """The request's JSON object (413 past :data:`MAX_BODY`, 400 for anything else)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "send a JSON object (Content-Type: application/json)")
    return body


def flag(body: dict[str, Any], key: str) -> bool:
    """A true/false field of a request body (absent: false)."""
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(400, f"{key} must be true or false")
    return value


def string_field(body: dict[str, Any], key: str, what: str) -> str:
    """A string field the body must have (400 naming it and ``what`` it is otherwise)."""
    value = body.get(key)
    if not isinstance(value, str):
        raise ApiError(400, f"the body needs \"{key}\": {what}")
    return value


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query argument from ``low`` to ``high`` (absent: ``default``)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:  # not "²": int() refuses it
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


class EncodedJson:
    """The JSON bytes of a view, kept with the value they were made from (its ``key``) and
    reused while the key stays the same: the snapshot itself (``equal=False``: the same
    object), or a value compared with ``==`` (the open alarms). Threads may race to encode
    the same key; each gets correct bytes and the last one is kept."""

    def __init__(self) -> None:
        self._last: tuple[Any, bytes] | None = None
        self.encoded = 0  # how often it encoded (the rest reused the bytes)

    def get(self, key: Any, build: Callable[[], Any], *, equal: bool = False) -> bytes:
        last = self._last
        if last is not None and (last[0] is key or (equal and last[0] == key)):
            return last[1]
        data = (current_app.json.dumps(build()) + "\n").encode("utf-8")
        self._last = (key, data)
        self.encoded += 1
        return data

    def response(self, key: Any, build: Callable[[], Any], *, equal: bool = False) -> Response:
        return Response(self.get(key, build, equal=equal), mimetype="application/json")
