"""The layers hold (station/__init__.py draws them): the import contracts in pyproject.toml,
checked by import-linter's ``lint-imports`` as part of the suite, so a wrong-way import fails
the build; and a pure parser loads only the standard library, the seam types and its own
format modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("monitor", "wire", "devices", "simulators", "dashboard", "station")
SEAM = {"monitor", "monitor.seam", "monitor.readings", "monitor.parameters", "monitor.clock",
        "monitor.timefmt", "monitor.errors"}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_the_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " 0 broken" in done.stdout and "kept" in done.stdout


@pytest.mark.parametrize(("module", "wrong_way"), [
    ("monitor/readings.py", "import wire.registry"),  # a seam type reaching up
    ("monitor/alarm_rules.py", "import devices.registry"),  # the core reaching an adapter
    ("wire/lines.py", "import monitor.core"),  # a wire format reaching into the core
    ("simulators/patient.py", "import devices.source"),
    ("dashboard/views.py", "import monitor.store"),  # a page around the Monitor
])
def test_a_wrong_way_import_fails_the_contracts(tmp_path, module, wrong_way):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "assets"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text("utf-8") + f"\n{wrong_way}  # noqa\n", "utf-8")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    source = module.removesuffix(".py").replace("/", ".")
    assert f"{source} -> {wrong_way.split()[-1]}" in done.stdout, done.stdout[-3000:]  # named


@pytest.mark.parametrize("parser", ["wire.serial.masimo", "wire.serial.nonin", "wire.serial.nellcor",
                                    "wire.serial.chairside_line", "wire.mqtt_json", "wire.hl7.pcd01"])
def test_a_pure_parser_loads_only_the_seam_and_its_own_format(parser):
    script = ("import sys; before = set(sys.modules); import " + parser +
              "; print('\\n'.join(sorted(set(sys.modules) - before)))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout.split()
    ours = {m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names}
    assert ours - SEAM <= {m for m in ours if m == "wire" or m.startswith("wire.")}, ours - SEAM
    assert not {m for m in ours if m.startswith("wire.")} & {"wire.registry"}  # not every format
    assert len(loaded) < 60  # (it was 348 with the core behind it)


def test_the_dashboard_reaches_the_engine_and_the_store_only_through_monitor():
    """No page or API route touches ``monitor.engine`` or ``monitor.store``: the Monitor's
    locked accessors are the door (``[store]`` of the configuration is another thing)."""
    import ast

    found = []
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("engine", "store"):
                base = node.value
                config = (isinstance(base, ast.Name) and base.id == "config") or (
                    isinstance(base, ast.Attribute) and base.attr == "config")
                if not config:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert not found, found


def test_monitor_is_the_door_to_rules_pause_and_history(tmp_path):
    from monitor.clock import ManualClock
    from monitor.config import parse_config
    from monitor.core import Monitor, NoHistory, NotFound

    config = parse_config({"store": {"path": str(tmp_path / "bay.db")}, "chairs": [{"id": "c1"}]}, "t")
    monitor = Monitor(config, store=None, clock=ManualClock(1_800_000_000.0))
    assert {r.parameter for r in monitor.rules("c1")} >= {"hr", "spo2", "nibp_sys"}
    assert monitor.baseline("c1") == {} and monitor.paused_until("c1") is None
    assert monitor.alarm_events() == [] and monitor.session_events("x") == []
    assert monitor.sessions("c1", 1) == []
    assert monitor.store_stats() is None and monitor.alarm_history(10) == []
    with pytest.raises(NoHistory, match="no store"):
        monitor.history()
    with pytest.raises(NotFound):
        monitor.rules("c9")
