"""Summaries, reports, `compare` and `rescore`: the numbers people read, and how they are re-derived."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from trainer.client.env_client import EnvClient
from trainer.evaluation.commands import register
from trainer.evaluation.dataset import from_split, spec_to_json
from trainer.evaluation.policies import SolverBackend
from trainer.evaluation.records import ResultRow, summarize
from trainer.evaluation.report import FAILURE_CHART, VALID_CHART, markdown, table, write_report
from trainer.evaluation.runner import load_completions, load_rows, load_summary, rescore, run_eval, write_run


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _row(verdict: str | None, ratio: float = 0.0, **extra: Any) -> ResultRow:
    components = {"format": 10.0, "order": 20.0, "score": 70.0 * ratio} if verdict else {}
    reward = sum(components.values()) if verdict else None
    return ResultRow(
        problem_id="p",
        problem={},
        completion="",
        verdict=verdict,
        score_ratio=ratio,
        reward=reward,
        components=components,
        **extra,
    )


def test_summarize_follows_the_spec() -> None:
    rows = [_row("valid", 1.0), _row("valid", 0.5), _row("overlap"), _row(None, error="unknown problem_id")]
    s = summarize(rows, label="m", backend="hf")
    assert s.n == 4 and s.verdicts["valid"] == 2 and s.verdicts["overlap"] == 1 and s.verdicts["error"] == 1
    assert s.verdicts["format_error"] == 0  # every verdict is listed, even at zero
    assert (s.valid_pct, s.mean_score_ratio, s.exact_optimal_pct) == (50.0, 0.375, 25.0)
    assert s.mean_components == {"format": 7.5, "order": 15.0, "score": 26.25}
    assert s.examples["error"]["message"] == "unknown problem_id"


def test_report_has_table_reference_note_and_charts(tmp_path: Path) -> None:
    model = summarize([_row("valid", 1.0), _row("overlap"), _row("unsorted")], label="my-model", backend="hf")
    ref = summarize([_row("valid", 1.0)] * 3, label="solver", backend="solver", reference=True)
    path = write_report([model, ref], tmp_path, "Run")
    text = path.read_text()
    assert "| model | n | valid % | mean score ratio | exact optimal % | format_error |" in text
    assert "| **my-model** | 3 | 33.3 | 0.333 | 33.3 | 0 | 0 | 0 | 1 | 1 |" in text
    assert "| solver (reference) | 3 | 100.0 | 1.000 | 100.0 |" in text
    assert "**9/100**" in text and "**48/100**" in text and "**63/100**" in text and "**0.585**" in text
    assert "not measured here" in text
    for chart in (VALID_CHART, FAILURE_CHART):
        assert (tmp_path / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(table([model]).splitlines()) == 3  # header, separator, one row
    assert "## Failure examples" in markdown([model]) and "## Failure examples" not in markdown([ref])


def test_rescore_under_another_profile(client: TestClient, tmp_path: Path) -> None:
    env = EnvClient(client)
    problems = from_split(env, "test", limit=4)
    run = run_eval(env, SolverBackend(env), problems, label="solver")
    write_run(run, tmp_path / "run")
    rows = load_completions(tmp_path / "run")
    assert [r.completion for r in rows] == [r.completion for r in run.rows]
    again = rescore(env, rows, profile="original", label="solver [original]")
    assert again.summary.profile == "original" and again.summary.n == 4
    assert again.summary.mean_score_ratio == 1.0 and again.summary.mean_reward == 100.0
    assert not again.summary.optimal_mismatches  # the stored optima still agree with the solver


def test_rescore_any_jsonl_of_problem_and_completion(client: TestClient, tmp_path: Path) -> None:
    env = EnvClient(client)
    p, q = from_split(env, "test", limit=2)
    lines = [
        {"problem": spec_to_json(p.spec), "completion": env.solve(p.spec).completion},  # nested problem
        {"events": [[e.name, e.start, e.end] for e in q.spec.events], "priority_events": q.spec.priorities,
         "optimal_score": 1, "completion": "nothing"},  # published layout, wrong stated optimum
        {"problem_id": p.id, "completion": env.solve(p.spec).completion},  # served id only
    ]  # fmt: skip
    path = tmp_path / "stored.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = rescore(env, load_completions(path), profile="default")
    assert [r.verdict for r in run.rows] == ["valid", "format_error", "valid"]
    assert run.summary.optimal_mismatches[0].stored == 1


def test_rescore_rejects_rows_without_a_completion(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"problem_id": "x"}) + "\n")
    with pytest.raises(ValueError, match="no `completion`"):
        load_completions(path)


def test_eval_compare_rescore_cli(live_server: Any, tmp_path: Path) -> None:
    runner, url = CliRunner(), ["--env_url", live_server.url]
    first, second = tmp_path / "greedy", tmp_path / "earliest"
    for backend, out in (("greedy_weight", first), ("earliest_finish", second)):
        result = runner.invoke(
            _app(), ["eval", "--backend", backend, "--limit", "8", *url, "--output_dir", str(out)]
        )
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (first / "references").iterdir()) == ["earliest_finish", "solver"]

    result = runner.invoke(
        _app(), ["compare", str(first), str(second), "--output_dir", str(tmp_path / "cmp")]
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "cmp" / "report.md").read_text()
    assert "| **greedy_weight** | 8 |" in text and "| **earliest_finish** | 8 |" in text
    assert "| solver (reference) | 8 | 100.0 | 1.000 | 100.0 |" in text
    assert text.count("earliest_finish") >= 1 and "earliest_finish (reference)" not in text  # run beats ref
    # the second run against the first, problem by problem, from their results.jsonl
    assert "## Paired differences" in text
    rows = {k: {r.problem_id: r for r in load_rows(d)} for k, d in (("a", first), ("b", second))}
    diff = sum((rows["b"][i].score_ratio or 0) - (rows["a"][i].score_ratio or 0) for i in rows["a"]) / 8
    paired = [line for line in text.splitlines() if line.startswith("| earliest_finish vs greedy_weight |")]
    assert [line.split(" | ")[1] for line in paired] == ["reward", "score_ratio"]
    assert paired[1].split(" | ")[4] == f"{diff:+.3f}" and paired[1].endswith("| 8 |")
    assert "earliest_finish vs greedy_weight: score_ratio" in result.output

    out = tmp_path / "rescored"
    result = runner.invoke(
        _app(), ["rescore", str(first), "--profile", "original", *url, "--output_dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = load_summary(out)
    assert summary.label == "greedy_weight [original]" and summary.profile == "original" and summary.n == 8

    result = runner.invoke(
        _app(), ["rescore", str(first), "--profile", "nope", *url, "--output_dir", str(out)]
    )
    assert result.exit_code == 2 and "unknown profile" in result.output
