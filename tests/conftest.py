"""Shared fixtures: small settings, an in-process app and client, and a real uvicorn server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from env_server.scoring.native import compiler, stale
from env_server.scoring.native import status as native_status
from env_server.service.app import create_app
from env_server.service.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    """Test the code production runs: refuse stale compiled modules, and refuse the pure-Python core
    where a C compiler exists (`make install` builds the compiled one there; the image does too).

    `SCHED_PURE_PYTHON=1` tests the pure-Python core on purpose (after `python -m
    env_server.scoring.native --clean`)."""
    old = stale()
    if old:
        pytest.exit(
            f"env_server/scoring/{old[0]} is newer than its compiled module: run `make native` "
            "(or `python -m env_server.scoring.native --clean` and SCHED_PURE_PYTHON=1 to test the "
            "pure-Python core)",
            returncode=4,
        )
    loaded = native_status()
    if compiler() is not None and not all(loaded.values()) and os.environ.get("SCHED_PURE_PYTHON") != "1":
        missing = ", ".join(m for m, ok in loaded.items() if not ok)
        pytest.exit(
            f"the scoring core is not compiled ({missing}) although a C compiler exists: run `make native`, "
            "or set SCHED_PURE_PYTHON=1 to test the pure-Python core on purpose",
            returncode=4,
        )


def missing_tool(reason: str) -> NoReturn:
    """A test cannot run because a tool is missing: a skip that says so on a developer's machine, a
    failure in CI (`CI` set), where `.ci/run` installs every tool the tests need."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must have it (.ci/run installs it)", pytrace=False)
    pytest.skip(reason)


SMALL = {"train_size": 64, "test_size": 16, "seed": 0}


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(**SMALL)


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def copy_checkout(dst: Path, *leave_out: str) -> None:
    """The packages and tests of this checkout copied into `dst` (no `__pycache__`, nor `leave_out`
    patterns): a fresh interpreter with `PYTHONPATH=dst` imports them instead of the checkout's."""
    root = Path(__file__).resolve().parent.parent
    ignore = shutil.ignore_patterns("__pycache__", *leave_out)
    for name in ("env_server", "shared_schema", "tests"):
        shutil.copytree(root / name, dst / name, ignore=ignore)


CLIENTS = Path(__file__).resolve().parent.parent / ".venv" / "clients"  # other projects' clients (make test)


def run_client_script(
    python: str | Path, script: Path, *args: str, pythonpath: str | Path | None = None, **env: str
) -> dict[str, Any]:
    """Run `script` (another project's client against the service) with `python`, and return the JSON of its
    last output line; `pythonpath` replaces PYTHONPATH (unset otherwise), `env` adds variables."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        environ["PYTHONPATH"] = str(pythonpath)
    cmd = [str(python), str(script), *args]
    done = subprocess.run(cmd, env={**environ, **env}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_workers(server_pid: int) -> list[Any]:
    """The uvicorn workers (spawned processes running the app) of the server whose process is
    `server_pid`, as `psutil.Process`es; not multiprocessing's resource tracker."""
    import psutil  # installed with accelerate; only these diagnostics need it

    out = []
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            continue
    return out


def connections_per_worker(server_pid: int, port: int) -> list[int]:
    """Established connections to `port` that each worker of the server holds, largest first (as the
    kernel counts them)."""
    import psutil

    counts = []
    for worker in server_workers(server_pid):
        try:
            conns = worker.net_connections(kind="tcp")
        except psutil.Error:
            continue
        counts.append(sum(c.status == "ESTABLISHED" and c.laddr.port == port for c in conns))
    return sorted(counts, reverse=True)


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_server(workers: int = 1, port: int | None = None, **env: str) -> LiveServer:
    """Start `sched-env serve` (the command the container runs) on `port` (default: a free one) and wait
    for /health."""
    port = port or free_port()
    environ = {
        **os.environ,
        "SCHED_TRAIN_SIZE": str(SMALL["train_size"]),
        "SCHED_TEST_SIZE": str(SMALL["test_size"]),
        "SCHED_LOG_LEVEL": "warning",
        **env,
    }
    cmd = [
        sys.executable,
        "-m",
        "env_server.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return LiveServer(url, proc)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy in 60 s")


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    server = start_server()
    yield server
    server.stop()
