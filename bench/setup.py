"""First set-up benchmark (issue 14, point 7): how long `make demo` takes from a machine with
the system packages but no venv until the demo bay answers, with each installer.

Each variant runs the Makefile's own install target (``make VENV=<tmp> <tmp>/.installed``,
so exactly what `make demo` runs) into a fresh venv in a temporary folder, then starts that
venv's ``chairside demo`` on a free port and times until the API shows every chair online
(the first start after an install, so it includes compiling what the demo imports):

- ``pip-compile``: pip as the Makefile ran it before (compiling every .pyc up front), the
  baseline;
- ``pip``: pip as the Makefile runs it now (``--no-compile``);
- ``uv``: uv (``UV=path``), when it is on PATH; otherwise one is installed from
  requirements-uv.lock (hashes checked) into a throwaway venv, outside the timing: a machine
  that has uv already (``--no-uv``: skip it and ``uv-bootstrap``);
- ``uv-bootstrap``: `make demo` as it runs with no uv on PATH (the default here and in CI):
  the venv, uv from requirements-uv.lock into a fresh ``UV_TOOL`` by the venv's pip, then the
  install with that uv, all inside the timing.

Each variant runs ``cold`` (its own empty download cache: every package fetched, as on a
fresh machine; pip still reads any wheel folder or index its configuration names) and then
``warm`` (the same cache again: a second venv on the same machine); within each phase the
variants run one after another, interleaved. Ratios are against ``pip-compile`` in the same
run, and ``uv-bootstrap`` against ``pip`` (what it replaces as the default); the load average
before and after is recorded, as the machine is shared.

    python -m bench.setup [--no-uv]    prints JSON, writes bench/results/setup.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from simulators.broker import free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
CHAIRS = 8
UV_LOCK = ROOT / "requirements-uv.lock"


def make_install(venv: Path, variables: dict[str, str], env: dict[str, str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("a") as out:
        subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}",
                        *(f"{k}={v}" for k, v in variables.items()), f"{venv}/.installed"],
                       check=True, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=1800)
    return time.perf_counter() - start


def online_chairs(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/chairs", timeout=2) as r:
            return sum(c["connection"] == "online" for c in json.load(r)["chairs"])
    except OSError:
        return 0


def demo_up(venv: Path, log: Path) -> float:
    """Seconds from starting the venv's demo until every chair is online; then Ctrl-C."""
    port = free_port()
    start = time.perf_counter()
    with log.open("a") as out:
        proc = subprocess.Popen([str(venv / "bin" / "chairside"), "demo", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=venv.parent)
        try:
            while online_chairs(port) < CHAIRS:
                if proc.poll() is not None or time.perf_counter() - start > 300:
                    raise RuntimeError(f"the demo did not come up: see {log}")
                time.sleep(0.05)
            seconds = time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"the demo exited {proc.returncode}: see {log}")
    return seconds


def find_uv(tmp: Path, log: Path) -> tuple[str | None, str]:
    uv = shutil.which("uv")
    if uv:
        return uv, "on PATH"
    tool = tmp / "uv-tool"
    with log.open("a") as out:
        subprocess.run([sys.executable, "-m", "venv", str(tool)], check=True, stdout=out,
                       stderr=subprocess.STDOUT)
        done = subprocess.run([str(tool / "bin" / "python"), "-m", "pip", "install",
                               "--require-hashes", "--only-binary", ":all:", "-r", str(UV_LOCK)],
                              stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        return None, f"not on PATH and could not be installed from {UV_LOCK.name} (see {log})"
    return str(tool / "bin" / "uv"), f"installed from {UV_LOCK.name} into a throwaway venv"


def without_uv(tmp: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Make's variables and environment for a machine with no uv: a PATH of the commands make
    and its recipes need, wherever this machine keeps a uv, and python3 named outright."""
    folder = tmp / "bin-without-uv"
    folder.mkdir()
    for command in ("make", "rm", "touch"):
        found = shutil.which(command)
        if found is None:
            raise RuntimeError(f"{command} is not on PATH")
        (folder / command).symlink_to(found)
    python3 = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return {"PYTHON": python3}, {"PATH": str(folder)}


def run_phase(phase: str, name: str, variables: dict[str, str], env_extra: dict[str, str],
              tmp: Path, log: Path) -> dict[str, float]:
    """One install and first start; the variant's download caches are its own (cold: empty,
    warm: what its cold run left); the bootstrap's uv folder is new each time."""
    env = {**os.environ, "PIP_CACHE_DIR": str(tmp / f"cache-{name}" / "pip"),
           "UV_CACHE_DIR": str(tmp / f"cache-{name}" / "uv"), **env_extra}
    env.pop("UV", None)  # the Makefile's UV comes from the variables (or PATH) alone
    venv = tmp / f"{name}-{phase}" / ".venv"
    venv.parent.mkdir()
    variables = {**variables, "UV_TOOL": str(venv.parent / ".uv-tool")}
    install = make_install(venv, variables, env, log)
    if "UV" not in variables and not (venv.parent / ".uv-tool" / ".installed").exists():
        raise RuntimeError(f"{name}: make fell back to pip, no uv bootstrapped: see {log}")
    up = demo_up(venv, log)
    return {"install_s": round(install, 1), "demo_up_s": round(up, 1),
            "total_s": round(install + up, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-uv", action="store_true", help="measure pip only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chairside-setup-bench-") as name:
        tmp = Path(name)
        log = Path(tempfile.gettempdir()) / "chairside-setup-bench.log"  # kept on a failure
        log.unlink(missing_ok=True)
        # name: (make variables, environment)
        plans: dict[str, tuple[dict[str, str], dict[str, str]]] = {
            "pip-compile": ({"UV": "", "PIP_ARGS": ""}, {}),
            "pip": ({"UV": ""}, {}),
        }
        uv, uv_note = (None, "skipped (--no-uv)") if args.no_uv else find_uv(tmp, log)
        uv_version = None
        if uv:
            uv_version = subprocess.run([uv, "--version"], capture_output=True, text=True,
                                        check=True).stdout.strip()
            plans["uv"] = ({"UV": uv}, {})
        if not args.no_uv:
            plans["uv-bootstrap"] = without_uv(tmp)
        # variants interleaved within each phase, so that a shared machine's drift spreads
        # over all of them rather than falling on one
        variants: dict[str, Any] = {name: {} for name in plans}
        load_before = os.getloadavg()[0]
        for phase in ("cold", "warm"):
            for name, (variables, env_extra) in plans.items():
                variants[name][phase] = run_phase(phase, name, variables, env_extra, tmp, log)
        load_after = os.getloadavg()[0]
    base = variants["pip-compile"]
    report = {
        "benchmark": "setup",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1min": [round(load_before, 1), round(load_after, 1)]},
        "uv": {"version": uv_version, "source": uv_note},
        "variants": variants,
        "ratio_total_vs_pip_compile": {
            name: {phase: round(v[phase]["total_s"] / base[phase]["total_s"], 2)
                   for phase in ("cold", "warm")}
            for name, v in variants.items() if name != "pip-compile"},
    }
    for name in ("uv", "uv-bootstrap"):
        if name in variants:
            report[f"ratio_total_{name.replace('-', '_')}_vs_pip"] = {
                phase: round(variants[name][phase]["total_s"] / variants["pip"][phase]["total_s"],
                             2) for phase in ("cold", "warm")}
    text = json.dumps(report, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "setup.json").write_text(text + "\n")
    log.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
