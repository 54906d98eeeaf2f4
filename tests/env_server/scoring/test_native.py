"""The compiled scoring core (`env_server.scoring.native`): what is loaded, stale builds, failed builds.

Whether the core is compiled or not, the reward tests (digest, property test against the published code,
gold = 100) run on whatever is loaded; after `make install` on a machine with a C compiler that is the
compiled core, which these tests check too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from env_server.scoring import native
from tests.conftest import copy_checkout


def test_what_is_built_is_what_is_loaded() -> None:
    built = {m: any(f.is_file() for f in native.compiled_files(m)) for m in native.BUILT}
    assert native.status() == built
    assert native.stale() == []  # conftest refuses to start otherwise
    assert native.describe().startswith("compiled (mypyc" if all(built.values()) else "pure Python")


def _package(tmp_path: Path) -> Path:
    """A source checkout's layout: `pyproject.toml` and the package with the core's sources."""
    (tmp_path / "pyproject.toml").write_text("")
    package = tmp_path / "pkg"
    package.mkdir()
    for module in native.BUILT:
        native.source(module, package).write_text("x = 1\n")
    return package


def test_a_compiled_module_older_than_its_source_is_stale(tmp_path: Path) -> None:
    package = _package(tmp_path)
    assert native.stale(package) == []  # nothing compiled: nothing stale
    for module in native.BUILT:
        for f in native.compiled_files(module, package)[:1]:
            f.write_bytes(b"")
    assert native.stale(package) == []  # compiled after the sources were written
    for name in ("checks.py", "_core.c"):
        source = package / name
        later = source.stat().st_mtime + 10
        os.utime(source, (later, later))
    assert native.stale(package) == ["checks", "_core"]
    (tmp_path / "pyproject.toml").unlink()
    assert native.stale(package) == []  # installed, not a checkout: file times mean nothing


def test_a_failed_build_leaves_no_compiled_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = _package(tmp_path)
    old = native.compiled_files("parsing", package)[0]
    old.write_bytes(b"an earlier build")
    calls: list[list[str]] = []

    def fail(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "error: no C compiler\n")

    monkeypatch.setattr(native.subprocess, "run", fail)
    monkeypatch.setattr(native, "PACKAGE", package)
    assert native.build(package) == list(native.BUILT)
    mypyc, *setup = calls
    assert mypyc == native.mypyc_command(package)  # the core modules: one mypyc group, one run
    assert mypyc[3:] == ["pkg", native.GROUP, *native.CORE]
    assert [c[-2:] for c in setup] == [["pkg", m] for m in native.EXTENSIONS]  # setuptools, in place
    assert not old.exists()  # an older build never stays in front of the new source


def test_a_build_is_newer_than_its_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """setuptools copies a module it did not rebuild with its old file time; the build marks it new."""
    package = _package(tmp_path)
    long_ago = native.source("parsing", package).stat().st_mtime - 1000

    def build_with_old_times(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        modules = native.CORE if cmd == native.mypyc_command(package) else cmd[-1:]
        for f in (f for m in modules for f in native.compiled_files(m, package)):
            f.write_bytes(b"")
            os.utime(f, (long_ago, long_ago))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(native.subprocess, "run", build_with_old_times)
    assert native.build(package) == []
    assert all(f.is_file() for m in native.BUILT for f in native.compiled_files(m, package)[:1])
    assert native.stale(package) == []


def test_cli_status_and_require(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert native.main(["--status"]) == 0
    assert capsys.readouterr().out.startswith("scoring core: ")
    monkeypatch.setattr(native, "build", lambda package=native.PACKAGE: ["profiles"])
    monkeypatch.setattr(native, "clean", lambda package=native.PACKAGE: None)
    monkeypatch.setattr(native, "compiler", lambda: "/usr/bin/cc")
    assert native.main(["--allow-pure"]) == 0  # asked to go on: the service runs as pure Python
    assert "pure Python" in capsys.readouterr().out
    assert native.main([]) == 1  # a compiler exists, so make install stops rather than test pure Python
    assert native.main(["--require"]) == 1  # so does the container build
    monkeypatch.setattr(native, "compiler", lambda: None)
    assert native.main([]) == 0  # no compiler: make install goes on, saying so loudly
    assert "PURE PYTHON" in capsys.readouterr().err
    assert native.main(["--require"]) == 1  # the container build has a compiler, or stops


PURE_DIGEST = """
import sys
sys.modules["env_server.scoring._core"] = None  # as if never built (the editable install would find the .so)
import env_server.scoring.parsing, env_server.scoring.checks, env_server.scoring.profiles
from tests.env_server.scoring.test_reward_digest import EXPECTED, canonical, core_results, digest
loaded = [m.__file__ for m in (env_server.scoring.parsing, env_server.scoring.checks, env_server.scoring.profiles)]
assert all(f.endswith(".py") for f in loaded), loaded
assert env_server.scoring.parsing.parse_strict is env_server.scoring.parsing.parse_strict_reference
assert env_server.scoring.checks.violations is env_server.scoring.checks.violations_reference
assert digest([f"{n} {canonical(r)}" for n, r in core_results()]) == EXPECTED
from tests.env_server.scoring.test_graded_profile import test_results_of_the_digest_cases_are_pinned
assert env_server.scoring.profiles.PROFILES["graded"].native is None
test_results_of_the_digest_cases_are_pinned()
print("pure", len(core_results()))
"""


def test_the_pure_python_core_gives_the_pinned_digest_too(tmp_path: Path) -> None:
    """The suite runs on the compiled core when one is built; the same sources as pure Python must give
    the same pinned results (a copy of the sources without the extensions, in a fresh interpreter)."""
    copy_checkout(tmp_path, "*.so")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PURE_DIGEST],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("pure ")
