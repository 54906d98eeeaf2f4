"""Timelines in reports: the drawing's reading of a completion matches the service's, every verdict gets
its pictures, and `compare` draws the same problems for every run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from env_server.scoring.parsing import parse_published, parse_strict
from env_server.task.generator import PRESETS, generate_split
from env_server.task.problems import gold_completion
from trainer.evaluation.commands import register
from trainer.evaluation.records import ResultRow
from trainer.evaluation.timeline import Lane, draw, extract_schedule, pick_shared, sample

PNG = b"\x89PNG\r\n\x1a\n"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _triples(events: Any) -> list[tuple[str, str, str]]:
    return [(e.name, e.start, e.end) for e in events]


FRAGMENTS = [
    "<think>", "</think>", "<schedule>", "</schedule>", "<event>", "</event>", "<name>", "</name>",
    "<start>", "</start>", "<end>", "</end>", "09:00", "10:3", "١٢:٣٠", " Lunch ", "Gym", "\n", " ", "x",
    "<event><name>A</name><start>09:00</start><end>10:00</end></event>",
    "<event> <name> B </name>\n<start>11:00</start> <end>12:00</end> </event>",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30))
def test_the_drawing_reads_completions_as_the_service_does(parts: list[str]) -> None:
    text = "".join(parts)
    assert _triples(extract_schedule(text, "default")) == _triples(parse_strict(text).events)
    assert _triples(extract_schedule(text, "original")) == _triples(parse_published(text).events)


def test_gold_answers_read_back_as_the_optimum() -> None:
    for problem in generate_split(3, "test", 20, PRESETS["hard"], "hard"):
        text = gold_completion(problem)
        assert _triples(extract_schedule(text)) == _triples(parse_strict(text).events)
        assert len(extract_schedule(text)) >= 2


def _answers(url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One served problem and four answers to it: valid, overlapping, invented, unformatted."""
    problem = httpx.get(f"{url}/v1/problems/test-000001", timeout=10).json()
    spec = {"events": problem["events"], "priorities": problem["priorities"]}
    gold = httpx.post(f"{url}/v1/solve", json={"problem": spec}, timeout=10).json()["completion"]
    ev = problem["events"]
    pair = next(
        (a, b)
        for i, a in enumerate(ev)
        for b in ev[i + 1 :]
        if a["start"] < b["end"] and b["start"] < a["end"]
    )
    first, second = sorted(pair, key=lambda e: e["start"])

    def answer(events: list[dict[str, str]]) -> str:
        body = "".join(
            f"<event><name>{e['name']}</name><start>{e['start']}</start><end>{e['end']}</end></event>"
            for e in events
        )
        return f"<think>t</think><schedule>{body}</schedule>"

    invented = {"name": "Nap", "start": "23:00", "end": "23:30"}
    completions = [gold, answer([first, second]), answer([first, invented]), "I would pick the long one."]
    rows = [{"problem_id": problem["id"], "problem": spec, "completion": c} for c in completions]
    return problem, rows


def test_rescore_draws_each_verdict_and_compare_draws_every_run(live_server: Any, tmp_path: Path) -> None:
    problem, rows = _answers(live_server.url)
    stored = tmp_path / "answers.jsonl"
    stored.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runner, url = CliRunner(), ["--env_url", live_server.url]
    out = tmp_path / "run"
    result = runner.invoke(
        _app(), ["rescore", str(stored), *url, "--output_dir", str(out), "--label", "mixed"]
    )
    assert result.exit_code == 0, result.output

    report = (out / "report.md").read_text()
    assert "## Schedules" in report
    for verdict in ("valid", "overlap", "unknown_event", "format_error"):
        name = f"timelines/mixed-{verdict}-{problem['id']}.png"
        assert f"- {verdict}: [`{problem['id']}`]({name})" in report
        assert (out / name).read_bytes()[:8] == PNG

    # What the picture marks comes from the service's violations.
    scored = [
        ResultRow.model_validate_json(line) for line in (out / "results.jsonl").read_text().splitlines()
    ]
    overlap, unknown = Lane.of("m", scored[1]), Lane.of("m", scored[2])
    assert overlap.overlapping == {0, 1} and len(overlap.clashes) == 1 and not overlap.unknown
    assert unknown.unknown == {1} and not unknown.overlapping
    assert Lane.of("m", scored[3]).events == []

    # compare: the same problem once per run, optimum from the service (these runs have no solver reference).
    original = tmp_path / "original"
    result = runner.invoke(_app(), ["rescore", str(stored), "--profile", "original", *url, "--output_dir", str(original), "--timelines", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "## Schedules" not in (original / "report.md").read_text()
    cmp = tmp_path / "cmp"
    result = runner.invoke(_app(), ["compare", str(out), str(original), "--output_dir", str(cmp), *url])
    assert result.exit_code == 0, result.output
    text = (cmp / "report.md").read_text()
    assert "## The same problems, every run" in text
    assert f"![{problem['id']}](timelines/compare-{problem['id']}.png)" in text
    assert (cmp / "timelines" / f"compare-{problem['id']}.png").read_bytes()[:8] == PNG


def test_sampling_and_shared_problems() -> None:
    def row(pid: str, verdict: str | None) -> ResultRow:
        return ResultRow(problem_id=pid, problem={"events": [{"name": "A", "start": "09:00", "end": "10:00"}]},
                         completion="", verdict=verdict)  # fmt: skip

    rows = [row("a", "valid"), row("b", "overlap"), row("c", "valid"), row("d", "valid"), row("e", None)]
    assert {k: [r.problem_id for r in v] for k, v in sample(rows, 2).items()} == {
        "valid": ["a", "c"], "overlap": ["b"], "error": ["e"],
    }  # fmt: skip
    other = [row("a", "valid"), row("b", "valid"), row("c", "valid")]
    assert pick_shared([rows, other], 2) == ["b", "a"]  # verdicts differ on b: it comes first


def test_draw_without_optimum_and_with_impossible_times(tmp_path: Path) -> None:
    problem = {"events": [{"name": "A", "start": "09:00", "end": "10:00"}], "priorities": ["A"]}
    row = ResultRow(problem_id="p", problem=problem, verdict="unknown_event", completion=(
        "<think>t</think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "<event><name>Z</name><start>99:99</start><end>10:00</end></event></schedule>"))  # fmt: skip
    path = draw(problem, [Lane.of("m", row)], None, tmp_path / "t.png", "title")
    assert path.read_bytes()[:8] == PNG


@pytest.mark.parametrize("profile", ["default", "original"])
def test_no_schedule_block(profile: str) -> None:
    assert extract_schedule("nothing here", profile) == []
