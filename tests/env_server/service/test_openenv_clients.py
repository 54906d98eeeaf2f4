"""OpenEnv's own clients against a live two-worker service: `openenv` 0.10 and `openenv-core` 0.3, installed
from the registry by `make test` into an environment of their own (.venv/clients: they pull gradio and
fastmcp 3, which .venv's vLLM build would fight). Each runs 8 tool episodes at once through `MCPToolClient`
(the sessions land on both workers) and one single-answer episode through `GenericEnvClient`
(tests/env_server/service/openenv_client_episodes.py does the client's side)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CLIENTS, LiveServer, missing_tool, run_client_script, start_server

PYTHON = CLIENTS / "openenv" / "bin" / "python"
SCRIPT = Path(__file__).with_name("openenv_client_episodes.py")
SESSIONS = 8


@pytest.fixture(scope="module")
def two_workers() -> Iterator[LiveServer]:
    server = start_server(workers=2)
    yield server
    server.stop()


def run_client(url: str, *flags: str, core_03: bool = False) -> dict[str, Any]:
    if not PYTHON.is_file():
        missing_tool("OpenEnv's clients are not installed (`make test` installs them into .venv/clients)")
    # openenv-core 0.3's `openenv` package in front of 0.10's, with 0.10's dependencies
    path = CLIENTS / "openenv-core-0.3" if core_03 else None
    return run_client_script(PYTHON, SCRIPT, url, "--sessions", str(SESSIONS), *flags, pythonpath=path)


def check_episodes(url: str, report: dict[str, Any], checks: int) -> None:
    episodes = report["episodes"]
    assert len(episodes) == SESSIONS and len({e["session"] for e in episodes}) == SESSIONS
    for e in episodes:
        assert e["tools"] == ["get_problem", "check_schedule", "submit"]
        assert e["checks"] == checks and e["checks_seen"] == ["format_error", "valid"]
        assert e["remaining"] == [checks - 1, checks - 2]
        assert e["reward"] == 100.0 and e["verdict"] == "valid"  # the solver's answer, scored as /v1/score
        body = {"items": [{"problem_id": e["problem"], "completion": "<schedule></schedule>"}]}
        assert httpx.post(f"{url}/v1/score", json=body).status_code == 200
        assert httpx.get(f"{url}/v1/episodes/{e['session']}").status_code == 404  # submit ended it
    single = report["single"]
    assert single["reward"] == 100.0 and single["done"] is True and single["problem"].startswith("train-")


def test_openenv_0_10_runs_tool_episodes_and_the_single_answer_one(two_workers: LiveServer) -> None:
    report = run_client(two_workers.url, "--reset")
    assert report["client"] == "openenv 0.10.0"
    check_episodes(two_workers.url, report, checks=2)
    episodes = report["episodes"]
    assert all(e["reset_problem"] == e["problem"] for e in episodes)  # the WebSocket's reset, seen over HTTP
    assert all("no checks left" in e["third"] for e in episodes)  # past the budget: the tool failed
    assert len({e["problem"] for e in episodes}) > 1  # reset(seed=i) picked different problems


def test_openenv_core_0_3_runs_tool_episodes_and_the_single_answer_one(two_workers: LiveServer) -> None:
    report = run_client(two_workers.url, core_03=True)
    assert report["client"] == "openenv-core 0.3.0"
    check_episodes(two_workers.url, report, checks=3)
    assert all(e["third"] == 0 for e in report["episodes"])  # the default budget of 3: the third is allowed


def test_the_docs_sample_runs_with_openenv_0_10(two_workers: LiveServer, tmp_path: Path) -> None:
    from tests.test_docs_samples import python_blocks

    if not PYTHON.is_file():
        missing_tool("OpenEnv's clients are not installed (`make test` installs them into .venv/clients)")
    sample = python_blocks("integrations.md", "OpenEnv MCP tools")[0]
    assert 'url = "http://127.0.0.1:8000"' in sample
    script = tmp_path / "sample.py"
    script.write_text(sample.replace("http://127.0.0.1:8000", two_workers.url))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(PYTHON), str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "['get_problem', 'check_schedule', 'submit']" in done.stdout and "valid" in done.stdout
