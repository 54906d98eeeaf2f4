"""`sched-env generate | solve | score` through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from env_server.cli import app
from env_server.task.files import load_problems
from env_server.task.problems import gold_completion

runner = CliRunner()


def test_generate_solve_and_score(tmp_path: Path) -> None:
    out = tmp_path / "test.parquet"
    r = runner.invoke(app, ["generate", str(out), "--split", "test", "--size", "6", "--difficulty", "easy"])
    assert r.exit_code == 0, r.output
    problems, _ = load_problems(out, "test")
    assert len(problems) == 6 and problems[0].id == "test-easy-000000"

    spec = tmp_path / "p.json"
    spec.write_text(
        json.dumps(
            {"events": [e.model_dump() for e in problems[0].events], "priorities": problems[0].priorities}
        )
    )
    r = runner.invoke(app, ["solve", str(spec)])
    assert (
        r.exit_code == 0
        and json.loads(r.stdout[: r.stdout.rindex("}") + 1])["optimal_score"] == problems[0].optimal_score
    )

    rows = tmp_path / "rows.jsonl"
    with rows.open("w") as f:
        for i, p in enumerate(problems):
            completion = gold_completion(p) if i % 2 == 0 else "no schedule"
            f.write(json.dumps({"problem": json.loads(p.model_dump_json()), "completion": completion}) + "\n")
    scored = tmp_path / "scored.jsonl"
    r = runner.invoke(app, ["score", str(rows), "--out", str(scored), "--profile", "default"])
    assert r.exit_code == 0, r.output
    results = [json.loads(line) for line in scored.read_text().splitlines()]
    assert [x["reward"] for x in results] == [100.0, 0.0] * 3
    assert "verdict valid" in r.output and "3 (50.0%)" in r.output


def test_unknown_preset_is_a_usage_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["generate", str(tmp_path / "x.jsonl"), "--difficulty", "impossible"])
    assert r.exit_code != 0 and "unknown preset" in r.output


def test_sft_data_writes_conversational_traced_answers(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    r = runner.invoke(app, ["sft-data", str(out), "--size", "3", "--prompt-style", "compact"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["train-000000", "train-000001", "train-000002"]
    for row in rows:
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert row["prompt"][0]["content"].startswith("Plan a day:")  # the compact style
        (answer,) = row["completion"]
        assert answer["role"] == "assistant" and answer["content"].startswith("<think>By start time:")
    r = runner.invoke(app, ["sft-data", str(out), "--prompt-style", "terse"])
    assert r.exit_code != 0 and "unknown prompt style" in r.output
    r = runner.invoke(app, ["sft-data", str(out), "--size", "2", "--trace-style", "by_hour"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(row["completion"][0]["content"].startswith("<think>By start hour:\n00h") for row in rows)
    r = runner.invoke(app, ["sft-data", str(out), "--trace-style", "shuffled"])
    assert r.exit_code != 0 and "unknown trace style" in r.output
