"""The suite's own tools and rules: the load-scaled deadline every wait goes through, and each
module's ``__all__`` naming exactly what it defines for others (checked both ways)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from conftest import scaled

PACKAGES = ("monitor", "wire", "devices", "simulators", "dashboard", "station")
SKIP = ("dashboard.pages.",)  # Dash registers these pages when an app loads them


def modules() -> list[str]:
    names = []
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")
                  if not m.name.startswith(SKIP)]
    return names


def test_deadlines_scale_with_the_setting_and_never_shrink(monkeypatch):
    monkeypatch.setenv("CHAIRSIDE_TIMEOUT_SCALE", "3")
    assert scaled(2.0) == 6.0
    monkeypatch.delenv("CHAIRSIDE_TIMEOUT_SCALE")
    assert 2.0 <= scaled(2.0) <= 12.0  # by the load per core, 1x to 6x


@pytest.mark.parametrize("name", modules())
def test_all_names_exactly_what_the_module_defines_for_others(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
    if name in PACKAGES or name.endswith("__init__"):
        return  # a package's __all__ re-exports its modules' names
    defined = {n for n, obj in vars(module).items()
               if not n.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
               and getattr(obj, "__module__", None) == name}
    unlisted = sorted(defined - set(exported))
    assert not unlisted, f"{name} defines public {unlisted} but its __all__ leaves them out"
