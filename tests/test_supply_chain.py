"""Supply chain (issue 12, point 9): every Python package that `make demo` and `make test`
install comes from a lock file that pins one version and its sha256 hashes, and a file that
does not match them (a tampered mirror, a substituted wheel) is refused."""
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


def test_make_picks_uv_from_path_and_pip_without_it(tmp_path: Path) -> None:
    """No UV given: make looks for uv on PATH (only make's own shell looks there: -n)."""
    make = shutil.which("make")
    assert make
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    target = f"{venv}/.installed"
    for path, installer in ((fake.parent, f"{fake} pip install"),
                            (tmp_path, "-m pip --disable-pip-version-check install")):
        done = subprocess.run([make, "--no-print-directory", "-n", "-C", str(ROOT),
                               f"VENV={venv}", target], capture_output=True, text=True,
                              timeout=60, check=True, env={**os.environ, "PATH": str(path)})
        assert installer in done.stdout, done.stdout


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
        uv = shutil.which("uv")
        if uv is None:
            pytest.skip("uv is not on PATH (make uses pip then: the pip case covers it)")
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


@pytest.mark.parametrize("lock", [LOCK, RUNTIME_LOCK, TOOLS_LOCK], ids=lambda p: p.name)
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
