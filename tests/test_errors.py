"""One project-wide error base: every exception class Chairside defines derives from
:class:`monitor.errors.ChairsideError`, each package's own root derives from it, and the
classes keep their other bases (``ValueError``, ``KeyError``...) so handlers behave as before."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from monitor.errors import ChairsideError

PACKAGES = ("monitor", "wire", "devices", "dashboard", "simulators", "station")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
    return names


def _defined_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        if name.startswith("dashboard.pages."):
            continue  # registered with a Dash app on import; they define no exceptions (grep-checked below)
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == name:
                found[f"{name}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_exception_the_project_defines_derives_from_the_one_base():
    classes = _defined_exceptions()
    # the walk finds the known roots of every package (so it cannot pass by finding nothing)
    names = {c.__name__ for c in classes}
    assert {"StoreError", "ConfigError", "MonitorError", "DeviceError", "ParseError", "Hl7ParseError",
            "ApiError", "BrokerError", "CliError", "CoreError", "DashboardError", "SimulatorError",
            "StationError"} <= names, names
    stray = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, ChairsideError))
    assert stray == []


def test_dashboard_pages_define_no_exception_classes():
    import pathlib

    import dashboard.pages

    for path in pathlib.Path(dashboard.pages.__path__[0]).glob("*.py"):
        for line in path.read_text().splitlines():
            assert not (line.startswith("class ") and ("Error" in line or "Exception" in line)), (path, line)


@pytest.mark.parametrize(("module", "name", "also"), [
    ("monitor.core", "NotFound", KeyError), ("monitor.core", "InvalidLimits", ValueError),
    ("monitor.alarm_engine", "UnknownAlarm", KeyError), ("monitor.alarm_rules", "RuleError", ValueError),
    ("monitor.users", "UserError", ValueError), ("monitor.exports", "UnknownFormat", ValueError),
    ("monitor.seam", "ParseError", ValueError), ("dashboard.auth", "BadNext", ValueError),
    ("dashboard.security", "BindRefused", ValueError), ("simulators.broker", "BrokerError", RuntimeError),
])
def test_exceptions_keep_their_other_bases(module, name, also):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ChairsideError) and issubclass(cls, also)


@pytest.mark.parametrize(("package", "root"), [
    ("monitor", "CoreError"), ("devices", "DeviceError"), ("dashboard", "DashboardError"),
    ("simulators", "SimulatorError"), ("station", "StationError"), ("wire", "ParseError"),
])
def test_each_package_draws_its_tree_in_its_docstring(package, root):
    doc = importlib.import_module(package).__doc__ or ""
    assert "ChairsideError" in doc and root in doc
    for cls in _defined_exceptions():
        if cls.__module__.split(".")[0] == package:
            assert cls.__name__ in doc, f"{package}'s docstring does not draw {cls.__name__}"
