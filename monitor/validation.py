"""What every configuration-like file (the bay's TOML, a simulator scenario) is checked with:
the name type, the error, and pydantic's complaints in a site's words. Dependency-free (only
pydantic and the error base), so the simulators share it without importing the core."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationError

from monitor.errors import CoreError

__all__ = ["NAME_RE", "ConfigError", "Name", "describe_errors"]


class ConfigError(CoreError):
    """A configuration that cannot be used; the message names file, key and problem."""


NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"must be 1-32 letters, digits, '_' or '-' (got {value!r})")
    return value


Name = Annotated[str, AfterValidator(_name)]


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "tuple[", "list[", "dict[")):
            out += f".{part}" if out else str(part)
    return out


def describe_errors(exc: ValidationError, source: str) -> str:
    """A pydantic error as lines of ``source: key.path: what is wrong``."""
    problems = []
    for err in exc.errors():
        where = _loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "too_short":
            msg = "must have at least one entry"
        if where and msg.startswith("["):  # a rule's own path: limit_profiles.p.rules[0].low
            problems.append(f"{source}: {where}{msg}")
        else:
            problems.append(f"{source}: {where}: {msg}" if where else f"{source}: {msg}")
    return "\n".join(problems)
