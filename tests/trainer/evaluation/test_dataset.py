"""`--dataset`: files in the published layout are read, prompted by the service, and their stated
`optimal_score` is checked against the service's solver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from trainer.client.env_client import EnvClient
from trainer.evaluation.commands import register
from trainer.evaluation.dataset import from_dataset, from_split
from trainer.evaluation.policies import SolverBackend
from trainer.evaluation.runner import load_summary, run_eval

WRONG_ROW = 2


def published_rows(env: EnvClient, n: int = 5) -> list[dict[str, object]]:
    """Rows as the published dataset has them; row WRONG_ROW states a wrong optimum, one has no id."""
    rows: list[dict[str, object]] = []
    for i, p in enumerate(from_split(env, "test", limit=n)):
        rows.append(
            {
                "id": p.id if i != 1 else None,
                "events": [[e.name, e.start, e.end] for e in p.spec.events],
                "priority_events": list(p.spec.priorities),
                "optimal_score": (p.expected_optimal or 0) + (7 if i == WRONG_ROW else 0),
                "prompt": [{"role": "user", "content": "the file's own prompt, which is not used"}],
            }
        )
    return rows


def write(rows: list[dict[str, object]], path: Path) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_dataset_file_is_read_and_its_optima_checked(client: TestClient, tmp_path: Path, suffix: str) -> None:
    env = EnvClient(client)
    rows = published_rows(env)
    served = from_split(env, "test", limit=len(rows))
    problems = from_dataset(env, write(rows, tmp_path / f"data{suffix}"))
    assert [p.id for p in problems] == [served[0].id, "row-000001", *(p.id for p in served[2:])]
    assert all(not p.served for p in problems)  # scored inline: the service recomputes the optimum
    assert [p.prompt for p in problems] == [p.prompt for p in served]  # the service's prompts, not the file's
    run = run_eval(env, SolverBackend(env), problems, label="solver", source=f"dataset:data{suffix}")
    s = run.summary
    assert s.valid_pct == 100.0 and s.mean_score_ratio == 1.0
    assert [m.model_dump() for m in s.optimal_mismatches] == [
        {
            "problem_id": served[WRONG_ROW].id,
            "stored": (served[WRONG_ROW].expected_optimal or 0) + 7,
            "computed": served[WRONG_ROW].expected_optimal,
        }
    ]
    assert [r.optimal_score for r in run.rows] == [p.expected_optimal for p in served]


def test_dataset_without_optimal_score(client: TestClient, tmp_path: Path) -> None:
    env = EnvClient(client)
    rows = [{"events": r["events"], "priority_events": r["priority_events"]} for r in published_rows(env, 2)]
    problems = from_dataset(env, write(rows, tmp_path / "bare.jsonl"))
    assert [p.expected_optimal for p in problems] == [None, None]
    run = run_eval(env, SolverBackend(env), problems, label="solver")
    assert run.summary.mean_score_ratio == 1.0 and not run.summary.optimal_mismatches


def test_eval_cli_dataset_reports_mismatch(live_server: Any, tmp_path: Path) -> None:
    env = EnvClient.from_url(live_server.url)
    path = write(published_rows(env), tmp_path / "data.jsonl")
    app = typer.Typer()
    register(app)
    out = tmp_path / "run"
    args = ["eval", "--backend", "greedy_weight", "--dataset", str(path), "--no-references"]
    result = CliRunner().invoke(app, [*args, "--env_url", env.base_url, "--output_dir", str(out)])
    assert result.exit_code == 0, result.output
    summary = load_summary(out)
    assert summary.source == f"dataset:{path}" and len(summary.optimal_mismatches) == 1
    assert "state a wrong `optimal_score`" in (out / "report.md").read_text()
    assert not (out / "references").exists()


def test_missing_dataset_file_is_a_clear_error(live_server: Any, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    url = live_server.url
    args = [
        "eval",
        "--dataset",
        str(tmp_path / "nope.jsonl"),
        "--env_url",
        url,
        "--output_dir",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "dataset file not found" in result.output
