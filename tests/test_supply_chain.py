"""Supply chain (issue 12, point 9): every Python package that `make demo` and `make test`
install comes from a lock file that pins one version and its sha256 hashes, and a file that
does not match them (a tampered mirror, a substituted wheel) is refused. That holds for the
installer too: with no uv on PATH, make bootstraps uv from requirements-uv.lock (issue 14,
point 7), and falls back to pip when that uv is refused."""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
TOOLS_LOCK = ROOT / "requirements-tools.lock"
UV_LOCK = ROOT / "requirements-uv.lock"
UV_TOOL = ROOT / ".uv-tool"  # where `make` bootstraps uv when none is on PATH
SHA256 = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def read_lock(path: Path) -> dict[str, tuple[Version, frozenset[str]]]:
    """canonical name → (pinned version, hashes) of a pip-compile lock. Fails on an option
    line (an index, find-links or trusted host could redirect the install) or a loose pin."""
    entries: dict[str, tuple[Version, frozenset[str]]] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        assert not line.startswith("-"), f"{path.name}: option line {line!r}"
        spec, *hashes = line.split()
        req = Requirement(spec)
        assert req.url is None and len(req.specifier) == 1, f"{path.name}: not one pin: {spec!r}"
        (pin,) = req.specifier
        assert pin.operator == "==", f"{path.name}: {spec!r} is not pinned with =="
        assert hashes and all(SHA256.fullmatch(h) for h in hashes), f"{path.name}: {spec!r} hashes"
        name = canonicalize_name(req.name)
        assert name not in entries, f"{path.name}: {name} twice"
        entries[name] = (Version(pin.version), frozenset(hashes))
    return entries


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def assert_satisfied(lock: dict[str, tuple[Version, frozenset[str]]], requirements: list[str],
                     lock_name: str) -> None:
    """Every requirement (and the requirements of every extra it asks for) pinned in the lock
    at a version it accepts."""
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        assert name in lock, f"{lock_name} lacks {req.name} ({text}): run `make lock`"
        version = lock[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{lock_name} pins {name}=={version}, pyproject.toml asks {text}: run `make lock`")
        for extra in req.extras:
            extra_reqs = [r for r in importlib.metadata.requires(req.name) or []
                          if Requirement(r).marker is not None
                          and Requirement(r).marker.evaluate({"extra": extra})]
            assert_satisfied(lock, [str(Requirement(r)).split(";")[0] for r in extra_reqs],
                             lock_name)


def test_every_lock_pins_one_version_with_sha256_hashes_and_names_no_index() -> None:
    for path in (LOCK, RUNTIME_LOCK, TOOLS_LOCK):
        entries = read_lock(path)
        assert len(entries) > 10, path.name
    # the installer's lock: uv alone, every file of its release (one wheel per platform)
    (name, (version, hashes)), = read_lock(UV_LOCK).items()
    assert name == "uv" and len(hashes) >= 2, (name, hashes)
    wanted = [Requirement(line) for line in (ROOT / "requirements-uv.in").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert [r.name for r in wanted] == ["uv"] and wanted[0].specifier.contains(version), wanted


def test_the_lock_satisfies_pyproject_dependencies_every_extra_and_the_build_backend() -> None:
    project = pyproject()
    lock = read_lock(LOCK)
    build = project["build-system"]["requires"]
    assert_satisfied(lock, project["project"]["dependencies"] + build, LOCK.name)
    for extra, requirements in project["project"]["optional-dependencies"].items():
        assert_satisfied(lock, requirements, f"{LOCK.name} (extra {extra})")
    assert_satisfied(read_lock(RUNTIME_LOCK), project["project"]["dependencies"] + build,
                     RUNTIME_LOCK.name)


def test_the_runtime_lock_names_the_versions_and_files_the_tests_ran_with() -> None:
    tested, runtime = read_lock(LOCK), read_lock(RUNTIME_LOCK)
    for name, (version, hashes) in runtime.items():
        assert name in tested, f"{RUNTIME_LOCK.name}: {name} never tested"
        assert tested[name] == (version, hashes), f"{name}: runtime lock differs from {LOCK.name}"


def test_the_environment_under_test_is_the_locked_one() -> None:
    """What `make test` installed is what the lock says (pip and setuptools are the venv's
    own tools, and a developer's older venv may carry older ones)."""
    wrong = {}
    for name, (version, _) in read_lock(LOCK).items():
        if name in {"pip", "setuptools"}:
            continue
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (str(version), str(installed))
    assert not wrong, f"locked vs installed {wrong}: run `make test` (it installs the lock)"


def make_dry_run(venv: Path, target: str, uv: str = "") -> str:
    """The commands `make` would run for ``target`` with ``venv`` as the VENV and ``uv`` as
    the uv it found on PATH ("" when none: pip) (run nothing)."""
    done = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(ROOT), f"VENV={venv}",
                           f"UV={uv}", target], capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout


@pytest.mark.parametrize("uv", ["", "/opt/bin/uv"], ids=["pip", "uv"])
def test_make_demo_and_test_install_from_the_hashed_lock_again_whenever_it_changes(
        tmp_path: Path, uv: str) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    stamp = venv / ".installed"
    stamp.touch()
    newest = max(LOCK.stat().st_mtime, (ROOT / "pyproject.toml").stat().st_mtime)
    os.utime(stamp, (newest - 60, newest - 60))  # the lock changed after the last install
    installer = f"{uv} pip" if uv else f"{venv}/bin/python -m pip --disable-pip-version-check"
    for target in ("test", "demo"):
        commands = make_dry_run(venv, target, uv).splitlines()
        assert f"python3 -m venv {venv}" in commands  # the interpreter's own bundled pip
        assert "requirements-uv.lock" not in "\n".join(commands)  # UV given: no bootstrap
        installs = [c for c in commands if c.startswith(f"{installer} install ")]
        assert len(installs) == 2, commands  # the lock, then Chairside: nothing else
        lock_step, editable = installs
        assert re.search(r" --require-hashes -r requirements\.lock$", lock_step), lock_step
        assert "--quiet" not in lock_step, "the long install step shows its progress"
        assert editable.endswith(" -e ."), editable
        assert "--no-deps" in editable and "--no-build-isolation" in editable, editable
        assert any(c.startswith(f"{installer} check") for c in commands), commands
    os.utime(stamp, (newest + 60, newest + 60))  # installed after the last change: nothing to do
    assert "requirements.lock" not in make_dry_run(venv, "test", uv)


def path_without_uv(tmp_path: Path) -> str:
    """A PATH with the commands make and its recipes need and no uv, wherever this machine
    keeps one (make's own search for uv must find none)."""
    folder = tmp_path / "bin-without-uv"
    if not folder.exists():
        folder.mkdir()
        for command in ("make", "rm", "touch"):
            found = shutil.which(command)
            assert found, command
            (folder / command).symlink_to(found)
    return str(folder)


def test_make_picks_uv_from_path_else_bootstraps_it_from_its_lock_and_pip_when_told(
        tmp_path: Path) -> None:
    """No UV given: make looks for uv on PATH; without one, it plans the bootstrap from
    requirements-uv.lock and, that done, installs with the uv it bootstrapped. UV= is pip
    with no bootstrap. (-n: only make's own shell and sub-makes run, printing.)"""
    make = shutil.which("make")
    assert make
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    venv, tool = tmp_path / "venv", tmp_path / "uv-tool"
    pip = f"{venv}/bin/python -m pip --disable-pip-version-check install"

    def plan(path: str, *variables: str) -> str:
        return subprocess.run([make, "--no-print-directory", "-n", "-C", str(ROOT),
                               f"VENV={venv}", f"UV_TOOL={tool}", *variables,
                               f"{venv}/.installed"], capture_output=True, text=True,
                              timeout=60, check=True, env={**os.environ, "PATH": path}).stdout

    on_path = plan(f"{fake.parent}{os.pathsep}{path_without_uv(tmp_path)}")
    assert f"{fake} pip install " in on_path and "requirements-uv.lock" not in on_path, on_path
    forced_pip = plan(path_without_uv(tmp_path), "UV=")
    assert f"{pip} --no-compile --require-hashes -r requirements.lock" in forced_pip, forced_pip
    assert "requirements-uv.lock" not in forced_pip and "uv pip" not in forced_pip, forced_pip

    # none on PATH: the bootstrap (wheels only, hashes required, into UV_TOOL alone), then,
    # as it has not run (-n), pip
    bootstrap = plan(path_without_uv(tmp_path))
    assert re.search(rf"{re.escape(pip)} --no-compile --require-hashes --only-binary :all: "
                     rf"--target {re.escape(str(tool))} \\\n\s+-r requirements-uv\.lock\n",
                     bootstrap), bootstrap
    assert f"{tool}/bin/uv --version" in bootstrap, bootstrap
    assert f"{pip} --no-compile --require-hashes -r requirements.lock" in bootstrap, bootstrap
    # the bootstrap done (its stamp newer than its lock): that uv installs, nothing re-fetched
    (tool / "bin").mkdir(parents=True)
    (tool / ".installed").touch()
    later = UV_LOCK.stat().st_mtime + 60
    os.utime(tool / ".installed", (later, later))
    bootstrapped = plan(path_without_uv(tmp_path))
    assert f"{tool}/bin/uv pip install --python {venv}/bin/python --require-hashes " \
           "-r requirements.lock" in bootstrapped, bootstrapped
    assert "--only-binary" not in bootstrapped, bootstrapped


def fake_wheel(folder: Path, name: str, version: str, code: str) -> Path:
    """A wheel named like the real one, carrying other code (what a tampered mirror serves)."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", code)
        wheel.writestr(f"{info}/METADATA",
                       f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                       "Tag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


# What each installer says when it refuses: a file that does not match its hashes; a
# requirement without a hash.
REFUSALS = {"pip": ("DO NOT MATCH THE HASHES", "Hashes are required in --require-hashes mode"),
            "uv": ("Hash mismatch for", "all requirements must have a hash")}


def install_from(installer: str, lock: Path, wheels: Path,
                 target: Path) -> subprocess.CompletedProcess[str]:
    """The install `make` runs (pip or uv: pip install --require-hashes -r LOCK), offline
    from ``wheels``, without any cache or configuration of this machine's."""
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1",
           "UV_NO_CONFIG": "1", "UV_NO_CACHE": "1"}
    env.pop("PIP_FIND_LINKS", None)
    if installer == "pip":
        command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install"]
    else:
        uv = shutil.which("uv") or (str(UV_TOOL / "bin" / "uv")
                                    if (UV_TOOL / ".installed").exists() else None)
        if uv is None:
            pytest.skip("no uv on PATH and none bootstrapped into .uv-tool (make used pip)")
        command = [uv, "pip", "install", "--python", sys.executable]
    return subprocess.run([*command, "--require-hashes", "-r", str(lock), "--no-index",
                           "--find-links", str(wheels), "--target", str(target)],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_a_substituted_package_file_or_an_unhashed_addition_is_refused(
        tmp_path: Path, installer: str) -> None:
    mismatch, unhashed = REFUSALS[installer]
    name = "iniconfig"
    version, hashes = read_lock(LOCK)[name]
    evil = fake_wheel(tmp_path / "mirror", name, str(version), "raise SystemExit('tampered')\n")

    # The lock's own entry, served a tampered file of the same name and version: refused.
    lock = tmp_path / "sub.lock"
    lock.write_text(f"{name}=={version} " + " ".join(sorted(hashes)) + "\n")
    refused = install_from(installer, lock, evil.parent, tmp_path / "site")
    assert refused.returncode != 0
    assert mismatch in refused.stderr, refused.stderr
    assert not (tmp_path / "site" / name).exists()

    # Control: the same file with its own hash in the lock is installed, so the refusal
    # above is the hash check at work, not a broken set-up.
    own = f"{name}=={version} --hash=sha256:{hashlib.sha256(evil.read_bytes()).hexdigest()}\n"
    lock.write_text(own)
    accepted = install_from(installer, lock, evil.parent, tmp_path / "site2")
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "site2" / name / "__init__.py").read_text().startswith("raise")

    # A package slipped into the lock without a hash (beside a hashed one): refused.
    fake_wheel(tmp_path / "mirror", "slipped", "1.0", "")
    lock.write_text(own + "slipped==1.0\n")
    refused = install_from(installer, lock, evil.parent, tmp_path / "site3")
    assert refused.returncode != 0
    assert unhashed in refused.stderr, refused.stderr
    site3 = tmp_path / "site3"  # nothing installed (uv leaves its own .lock file there)
    assert not site3.exists() or not [p for p in site3.iterdir() if p.name != ".lock"]


@pytest.mark.parametrize("lock", [LOCK, RUNTIME_LOCK, TOOLS_LOCK, UV_LOCK], ids=lambda p: p.name)
def test_a_lock_that_names_an_index_or_a_loose_pin_is_caught(tmp_path: Path, lock: Path) -> None:
    """The checks above can fail: the same lock with an index line, or with a hash dropped."""
    text = lock.read_text()
    redirected = tmp_path / "redirected.lock"
    redirected.write_text("--extra-index-url https://mirror.invalid/simple\n" + text)
    with pytest.raises(AssertionError, match="option line"):
        read_lock(redirected)
    unhashed = tmp_path / "unhashed.lock"
    unhashed.write_text(re.sub(r" \\\n    --hash=sha256:[0-9a-f]{64}", "", text))
    with pytest.raises(AssertionError, match="hashes"):
        read_lock(unhashed)


# A project of its own for a copy of the Makefile: one dependency, built by an in-tree backend
# (an editable wheel of nothing), so that `make` runs its real install offline in seconds.
TINY_PYPROJECT = """[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "tinyproj"
version = "0.1"
dependencies = ["tinydep"]
"""
TINY_BACKEND = """import zipfile

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    name = "tinyproj-0.1-py3-none-any.whl"
    with zipfile.ZipFile(f"{wheel_directory}/{name}", "w") as wheel:
        info = "tinyproj-0.1.dist-info"
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\\nName: tinyproj\\n"
                       "Version: 0.1\\nRequires-Dist: tinydep\\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\n"
                       "Root-Is-Purelib: true\\nTag: py3-none-any\\n")
        wheel.writestr(f"{info}/RECORD", "")
    return name
"""


def fake_uv_wheel(folder: Path, version: str, log: Path) -> Path:
    """A wheel named like uv's whose `uv` only notes how it was called (and succeeds)."""
    path = fake_wheel(folder, "uv", version, "")
    script = zipfile.ZipInfo(f"uv-{version}.data/scripts/uv")
    script.external_attr = (0o100000 | 0o755) << 16  # a regular file, executable
    with zipfile.ZipFile(path, "a") as wheel:
        wheel.writestr(script, f'#!/bin/sh\necho "$*" >> {log}\n')
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_make_bootstraps_uv_only_from_its_hashed_lock_and_else_installs_with_pip(
        tmp_path: Path) -> None:
    """The real `make` on a copy of the Makefile, no uv on PATH, offline from a wheel folder
    that serves a file named like the locked uv. With its hash in the uv lock (the control),
    make installs that uv and installs the project with it; with the real lock (other
    hashes: a substituted file), pip refuses it, nothing of it stays, and make installs the
    project with pip and succeeds."""
    project, wheels = tmp_path / "project", tmp_path / "wheels"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project)
    (project / "pyproject.toml").write_text(TINY_PYPROJECT)
    (project / "backend.py").write_text(TINY_BACKEND)
    dep = fake_wheel(wheels, "tinydep", "1.0", "VALUE = 42\n")
    (project / "requirements.lock").write_text(f"tinydep==1.0 --hash=sha256:{sha256_of(dep)}\n")
    (version, real_hashes), = read_lock(UV_LOCK).values()
    calls = tmp_path / "uv-calls.log"
    served = fake_uv_wheel(wheels, str(version), calls)
    assert f"--hash=sha256:{sha256_of(served)}" not in real_hashes
    env = {**os.environ, "PATH": path_without_uv(tmp_path), "PIP_CONFIG_FILE": os.devnull,
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_NO_CACHE_DIR": "1"}
    venv, tool = project / ".venv", project / ".uv-tool"

    def make() -> subprocess.CompletedProcess[str]:
        (venv / ".installed").unlink(missing_ok=True)  # a fresh install each time
        return subprocess.run(["make", "--no-print-directory", "-C", str(project),
                               f"PYTHON={sys.executable}", ".venv/.installed"],
                              capture_output=True, text=True, timeout=300, env=env)

    # control: the served file's own hash in the lock: bootstrapped, then the installer
    (project / "requirements-uv.lock").write_text(
        f"uv=={version} --hash=sha256:{sha256_of(served)}\n")
    done = make()
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tool / ".installed").exists(), done.stdout + done.stderr
    used = calls.read_text().splitlines()
    assert used[0] == "--version", used
    assert used[1] == "pip install --python .venv/bin/python --require-hashes " \
                      "-r requirements.lock", used
    assert used[2].startswith("pip install ") and used[2].endswith(" -e ."), used
    assert used[3] == "pip check --python .venv/bin/python", used

    # the real lock (a newer file: the bootstrap runs again): the served file is refused
    (project / "requirements-uv.lock").write_text(UV_LOCK.read_text())
    later = (project / "requirements-uv.lock").stat().st_mtime + 60
    os.utime(project / "requirements-uv.lock", (later, later))
    done = make()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "DO NOT MATCH THE HASHES" in out, out
    assert "installing with pip instead" in out, out
    assert not tool.exists(), "the refused bootstrap left a uv behind"
    assert calls.read_text().splitlines() == used, "a uv ran after it was refused"
    installed = subprocess.run([f"{venv}/bin/python", "-c",
                                "import tinydep, importlib.metadata as m; "
                                "print(tinydep.VALUE, m.version('tinyproj'))"],
                               capture_output=True, text=True, timeout=60)
    assert installed.stdout.split() == ["42", "0.1"], installed.stdout + installed.stderr
