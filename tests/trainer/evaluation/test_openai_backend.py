"""`openai` backend against a small OpenAI-compatible server that returns canned completions.

The server (FastAPI in uvicorn, in a thread, on a free port) answers by the problem in the prompt:
gold answers, an overlapping schedule, a malformed answer, a 503 then a gold answer, a too-slow first
answer (the client times out and retries), and a problem whose requests always fail. The summary must
come out exactly as the rules say.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shared_schema import Event
from tests.conftest import free_port
from trainer.client.env_client import EnvClient
from trainer.evaluation.commands import register
from trainer.evaluation.dataset import EvalProblem, from_split
from trainer.evaluation.generation import SamplingConfig
from trainer.evaluation.openai_backend import OpenAIBackend
from trainer.evaluation.runner import run_eval

PLAN = ["gold", "flaky", "slow", "overlap", "malformed", "broken"]


class CannedModel:
    """Completion per user message, with per-problem misbehaviour and an in-flight high-water mark."""

    def __init__(self, answers: dict[str, tuple[str, str]]) -> None:
        self.answers, self.calls, self.inflight, self.max_inflight = answers, {}, 0, 0
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        behaviour, text = self.answers.get(body["messages"][-1]["content"], ("malformed", "no idea"))
        count = self.calls[text] = self.calls.get(text, 0) + 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(1.0 if behaviour == "slow" and count == 1 else 0.05)
            if behaviour == "broken" or (behaviour == "flaky" and count == 1):
                return JSONResponse({"error": "overloaded"}, status_code=503)
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return JSONResponse(
                {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [choice]}
            )
        finally:
            self.inflight -= 1


def _overlapping_answer(events: list[Event]) -> str | None:
    pairs = [
        (a, b)
        for a in events
        for b in events
        if a.start_min < b.start_min < a.end_min  # overlap, with strictly increasing starts
    ]
    if not pairs:
        return None
    a, b = pairs[0]
    lines = "\n".join(
        f"<event><name>{e.name}</name><start>{e.start}</start><end>{e.end}</end></event>" for e in (a, b)
    )
    return f"<think>both</think>\n<schedule>\n{lines}\n</schedule>"


@pytest.fixture(scope="module")
def canned(client: TestClient) -> Iterator[tuple[str, CannedModel, list[EvalProblem]]]:
    env = EnvClient(client)
    pool = from_split(env, "test")
    overlap_at = next(i for i, p in enumerate(pool) if _overlapping_answer(list(p.spec.events)))
    problems = [p for i, p in enumerate(pool) if i != overlap_at][: len(PLAN) - 1]
    problems.insert(PLAN.index("overlap"), pool[overlap_at])
    answers = {}
    for behaviour, p in zip(PLAN, problems, strict=True):
        if behaviour == "overlap":
            text = _overlapping_answer(list(p.spec.events)) or ""
        elif behaviour == "malformed":
            text = "I would attend the concert and then the lecture."
        else:
            text = env.solve(p.spec).completion
        answers[p.prompt[-1].content] = (behaviour, text)
    model = CannedModel(answers)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(model.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "canned model server did not start"
    yield f"http://127.0.0.1:{port}/v1", model, problems
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_backend_yields_the_expected_summary(
    client: TestClient, canned: tuple[str, CannedModel, list[EvalProblem]]
) -> None:
    url, model, problems = canned
    sampling = SamplingConfig(max_new_tokens=64)
    backend = OpenAIBackend(
        url, "canned", sampling, concurrency=2, timeout=0.5, max_retries=3, backoff_initial=0.01
    )
    run = run_eval(EnvClient(client), backend, problems, label="canned")
    s = run.summary
    assert s.n == 6
    verdicts = {
        "format_error": 2,
        "too_few_events": 0,
        "unknown_event": 0,
        "unsorted": 0,
        "overlap": 1,
        "valid": 3,
    }
    assert s.verdicts == verdicts
    assert (s.valid_pct, s.mean_score_ratio, s.exact_optimal_pct) == (50.0, 0.5, 50.0)
    # valid: 10 + 20 + 70 each; overlap: format 10, order 20, score 0 (both events dropped); rest 0
    assert s.mean_components == pytest.approx({"format": 40 / 6, "order": 80 / 6, "score": 35.0}, abs=1e-3)
    assert s.mean_reward == pytest.approx(330 / 6, abs=1e-3)
    assert s.generation_errors == 1 and s.truncated == 0
    by_behaviour = dict(zip(PLAN, run.rows, strict=True))
    assert by_behaviour["broken"].generation_error and "503" in by_behaviour["broken"].generation_error
    assert by_behaviour["overlap"].violations[0].type == "overlap"
    assert by_behaviour["slow"].verdict == by_behaviour["flaky"].verdict == "valid"
    assert model.max_inflight <= 2  # bounded concurrency


def test_eval_cli_with_openai_backend(
    live_server: Any, canned: tuple[str, CannedModel, list[EvalProblem]], tmp_path: Path
) -> None:
    url, _, _ = canned
    app = typer.Typer()
    register(app)
    model = [
        "--backend",
        "openai",
        "--base_url",
        url,
        "--model",
        "canned",
        "--timeout",
        "0.5",
        "--max_retries",
        "2",
    ]
    args = ["eval", *model, "--limit", "6", "--env_url", live_server.url, "--output_dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("results.jsonl", "summary.json", "report.md", "valid_and_score.png", "failures.png"):
        assert (tmp_path / name).is_file(), name
    report = (tmp_path / "report.md").read_text()
    assert (
        "| **canned** | 6 |" in report and "solver (reference)" in report and "Published reference" in report
    )
