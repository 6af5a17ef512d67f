"""The lock files in requirements/ agree with pyproject.toml, offline.

`make install` and CI install requirements/dev.lock with `--require-hashes`; the environment
that `otphub serve` needs comes from requirements/runtime.lock alone. These tests read the
files only: they catch a lock that misses a dependency or holds one outside its floor (after
an edit to pyproject.toml without `make lock`), a test tool that leaked into the runtime lock,
and a server that would run other versions than the tests ran.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
RUNTIME_LOCK = REQUIREMENTS / "runtime.lock"
DEV_LOCK = REQUIREMENTS / "dev.lock"
BUILD_IN = REQUIREMENTS / "build.in"

# Named here as well as read from the dev extra, so that a dev extra parsed wrong, or emptied,
# cannot make the check below vacuous.
KNOWN_TEST_TOOLS = ("pytest", "hypothesis", "ruff", "mypy", "smsactivate", "requests")

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\;]+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: int


def read_lock(path: Path) -> dict[NormalizedName, Pin]:
    """Package -> pinned version and number of sha256 hashes, as `uv pip compile` writes it:
    `name==version \\` followed by indented `--hash=sha256:...` lines and `# via` comments."""
    pins: dict[NormalizedName, Pin] = {}
    current: NormalizedName | None = None
    version = Version("0")
    hashes = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            if current is not None:
                pins[current] = Pin(version, hashes)
            current = canonicalize_name(match["name"])
            assert current not in pins, f"{path.name}: {current} pinned twice"
            version = Version(match["version"])
            hashes = 0
        elif line and not line[0].isspace() and not line.startswith("#"):
            raise AssertionError(f"{path.name}: unexpected line {line!r}")
        hashes += len(_HASH.findall(line))
    if current is not None:
        pins[current] = Pin(version, hashes)
    return pins


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines]


def runtime_requirements() -> list[Requirement]:
    return requirements(pyproject()["project"]["dependencies"])


def dev_requirements() -> list[Requirement]:
    return requirements(pyproject()["project"]["optional-dependencies"]["dev"])


def build_requirements() -> list[Requirement]:
    lines = BUILD_IN.read_text(encoding="utf-8").splitlines()
    return requirements([line for line in lines if line.strip() and not line.startswith("#")])


def assert_locked(requirement: Requirement, lock: dict[NormalizedName, Pin], name: str) -> None:
    if requirement.marker is not None and not requirement.marker.evaluate():
        return
    package = canonicalize_name(requirement.name)
    assert package in lock, f"{requirement} is missing from {name}: run `make lock`"
    version = lock[package].version
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{name} pins {package}=={version}, outside {requirement}: run `make lock`"
    )


@pytest.mark.parametrize("path", [RUNTIME_LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_every_locked_package_is_pinned_with_hashes(path: Path) -> None:
    lock = read_lock(path)
    assert lock, f"{path.name} pins nothing"
    unhashed = sorted(package for package, pin in lock.items() if pin.hashes == 0)
    assert unhashed == [], f"{path.name}: no sha256 hash for {unhashed}"


def test_runtime_lock_holds_no_test_tool() -> None:
    dev_only = {canonicalize_name(tool) for tool in KNOWN_TEST_TOOLS}
    dev_only |= {canonicalize_name(requirement.name) for requirement in dev_requirements()}
    leaked = sorted(dev_only & read_lock(RUNTIME_LOCK).keys())
    assert leaked == [], f"test-only packages in runtime.lock: {leaked}"


def test_every_test_tool_is_in_the_dev_lock() -> None:
    dev_lock = read_lock(DEV_LOCK)
    for requirement in dev_requirements():
        assert_locked(requirement, dev_lock, DEV_LOCK.name)
    for tool in KNOWN_TEST_TOOLS:
        assert canonicalize_name(tool) in dev_lock, f"{tool} is missing from {DEV_LOCK.name}"


@pytest.mark.parametrize("path", [RUNTIME_LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_every_runtime_dependency_is_locked_within_its_floor(path: Path) -> None:
    lock = read_lock(path)
    for requirement in runtime_requirements():
        assert_locked(requirement, lock, path.name)


@pytest.mark.parametrize("path", [RUNTIME_LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_the_build_tools_are_locked(path: Path) -> None:
    """Both installs build OTPHub with `--no-build-isolation`, from the locked setuptools."""
    lock = read_lock(path)
    for requirement in build_requirements():
        assert_locked(requirement, lock, path.name)


def test_build_in_and_build_system_ask_for_the_same_setuptools() -> None:
    build_system = requirements(pyproject()["build-system"]["requires"])
    wanted = {canonicalize_name(req.name): req.specifier for req in build_requirements()}
    for requirement in build_system:
        package = canonicalize_name(requirement.name)
        assert package in wanted, f"{requirement} (build-system) is missing from build.in"
        assert wanted[package] == requirement.specifier, (
            f"build.in asks for {package}{wanted[package]}, build-system for {requirement}"
        )


def test_the_server_runs_the_versions_the_tests_ran() -> None:
    dev_lock = read_lock(DEV_LOCK)
    runtime_lock = read_lock(RUNTIME_LOCK)
    differing = {
        package: (str(pin.version), str(dev_lock[package].version) if package in dev_lock else None)
        for package, pin in runtime_lock.items()
        if package not in dev_lock or dev_lock[package].version != pin.version
    }
    assert differing == {}, f"runtime.lock vs dev.lock: {differing}: run `make lock`"


def test_license_is_an_spdx_expression() -> None:
    """A TOML table here makes setuptools print a deprecation warning on every install."""
    assert pyproject()["project"]["license"] == "MIT"
