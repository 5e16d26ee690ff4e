"""deploy/chairside.example.toml documents every configuration key with its default.

The example is read twice: as shipped (what `install` copies to /etc/chairside/bay.toml),
and with its commented-out keys and sources uncommented (every optional key and every source
kind at once). Both must load with the project's own loader; the second must name every
field of every configuration model (walked from ``BayConfig``, each source kind included),
and show each default that has a value as that value. A key added to a model without its
line in the example fails here.
"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from monitor.alarm_rules import VALUE_KEYS
from monitor.config import BayConfig, SourceConfig, load_config, parse_config

EXAMPLE = Path(__file__).parent.parent / "deploy" / "chairside.example.toml"

#: "# key = value", "# [[table]]", "#   { inline table }," -- a commented-out line of TOML;
#: commentary never starts with one of these.
COMMENTED = re.compile(r'^(\s*)# ((?:\[\[?[A-Za-z0-9_."-]+\]\]?|[A-Za-z_][A-Za-z0-9_]* = |\{ ).*)$')

#: Keys whose example value is deliberately not the default (the comment says so).
EXAMPLE_VALUES = {("Hl7Source", "host")}

#: The keys of a limit rule in its configuration form (monitor.alarm_rules.rules_from_dicts).
RULE_KEYS = {"parameter", *VALUE_KEYS, "priority", "delay_s", "hysteresis"}


def uncommented(text: str) -> str:
    return "\n".join(COMMENTED.sub(r"\1\2", line) for line in text.splitlines())


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return tomllib.loads(uncommented(EXAMPLE.read_text(encoding="utf-8")))


def test_the_example_loads_as_shipped():
    config = load_config(EXAMPLE)
    assert [c.id for c in config.chairs] == ["c01", "c02"]
    assert config.sources == ()  # sources are commented out: a fresh install reads nothing yet


def test_the_example_loads_with_every_optional_key_and_source(tmp_path):
    bay = tmp_path / "bay.toml"
    bay.write_text(uncommented(EXAMPLE.read_text(encoding="utf-8")))
    config = load_config(bay)
    # two MQTT sources: one broker (host, port), and a cluster's nodes (brokers)
    assert sorted(s.kind for s in config.sources) == ["hl7", "mqtt", "mqtt", "serial"]
    assert config.bay.timezone is not None and config.alarms.data_delayed_after_s is not None


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The configuration models an annotation holds (inside Annotated, unions, containers)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _children(value: Any) -> list[dict[str, Any]]:
    """The tables below a key: the table itself, an array's tables, a map's tables."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if isinstance(value, dict):
        nested = [v for v in value.values() if isinstance(v, dict)]
        return nested if nested and len(nested) == len(value) else [value]
    return []


def _kind(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    return typing.get_args(field.annotation)[0] if field is not None else None


def _walk(model: type[BaseModel], tables: list[dict[str, Any]], path: str, missing: list[str]) -> None:
    kind = _kind(model)
    if kind is not None:  # one kind of a discriminated union: only its own tables
        tables = [t for t in tables if t.get("kind") == kind]
        if not tables:
            missing.append(f"{path.rstrip('.')} (no [[sources]] of kind {kind!r})")
            return
    for name, field in model.model_fields.items():
        if not any(name in t for t in tables):
            missing.append(f"{path}{name}")
            continue
        for sub in _models(field.annotation):
            below = [c for t in tables if name in t for c in _children(t[name])]
            _walk(sub, below, f"{path}{name}.", missing)


def test_every_field_of_every_model_is_in_the_example(full):
    missing: list[str] = []
    _walk(BayConfig, [full], "", missing)
    assert not missing, f"not in {EXAMPLE.name}: {', '.join(missing)}"


def test_the_walk_reaches_every_source_kind_and_fails_for_an_undocumented_key(full):
    kinds = {m.__name__ for m in _models(SourceConfig)}
    assert kinds == {"SerialSource", "MqttSource", "Hl7Source"}
    stripped = {**full, "sources": [{k: v for k, v in s.items() if k != "reconnect_max_s"}
                                    for s in full["sources"]]}
    missing: list[str] = []
    _walk(BayConfig, [stripped], "", missing)
    assert "sources.reconnect_max_s" in missing  # serial and MQTT both have it


def test_every_rule_key_is_in_the_example(full):
    rules = [r for p in full["limit_profiles"].values() for r in p["rules"]]
    rules += [r for p in full["protocols"].values() for r in p.get("limits", [])]
    assert {k for r in rules for k in r} >= RULE_KEYS


def _empty(default: Any) -> bool:
    return default is None or (isinstance(default, tuple | dict | list) and not default)


def _instances(config: BayConfig) -> list[BaseModel]:
    sections = [getattr(config, name) for name, f in BayConfig.model_fields.items() if _models(f.annotation)
                and isinstance(getattr(config, name), BaseModel)]
    return [*sections, *config.sources]


def test_the_values_shown_are_the_defaults(full):
    config = parse_config(full, "example")  # no base folder: paths stay as written
    wrong = []
    checked = 0
    for instance in _instances(config):
        cls = type(instance)
        for name, field in cls.model_fields.items():
            default = field.get_default(call_default_factory=True)
            if field.is_required() or _empty(default) or (cls.__name__, name) in EXAMPLE_VALUES:
                continue
            checked += 1
            if getattr(instance, name) != default:
                wrong.append(f"{cls.__name__}.{name}: shows {getattr(instance, name)!r}, default {default!r}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 60  # the sections' and all three source kinds' defaults were compared


def test_the_models_are_plain_and_walkable():
    """The walk above relies on every nested model being a field annotation it can see."""
    assert {m.__name__ for f in BayConfig.model_fields.values() for m in _models(f.annotation)} >= {
        "BaySection", "StoreSection", "AuthSection", "LimitProfile", "ProtocolPreset", "ChairConfig",
        "SerialSource", "MqttSource", "Hl7Source"}
