"""Timelines in reports: lanes draw the events the service read (no parsing here), every verdict gets its
pictures, and `compare` draws the same problems for every run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import typer
from typer.testing import CliRunner

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, score_and_read
from shared_schema import ProblemSpec, ScoreResult
from trainer.evaluation.commands import register
from trainer.evaluation.records import ResultRow
from trainer.evaluation.timeline import Lane, draw, optima_from_solver, pick_shared, sample

PNG = b"\x89PNG\r\n\x1a\n"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _pair(problem: dict[str, Any]) -> list[dict[str, str]]:
    """The problem's first overlapping pair of events, in time order."""
    ev = problem["events"]
    pair = next(
        (a, b)
        for i, a in enumerate(ev)
        for b in ev[i + 1 :]
        if a["start"] < b["end"] and b["start"] < a["end"]
    )
    return sorted(pair, key=lambda e: e["start"])


def _answers(url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One served problem and four answers to it: valid, overlapping, invented, unformatted."""
    problem = httpx.get(f"{url}/v1/problems/test-000001", timeout=10).json()
    spec = {"events": problem["events"], "priorities": problem["priorities"]}
    gold = httpx.post(f"{url}/v1/solve", json={"problem": spec}, timeout=10).json()["completion"]
    first, second = _pair(problem)

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
    assert all(r.events is not None for r in scored)  # evaluation asks the service for its reading
    overlap, unknown = Lane.of("m", scored[1]), Lane.of("m", scored[2])
    assert overlap.overlapping == {0, 1} and len(overlap.clashes) == 1 and not overlap.unknown
    assert [e.name for e in overlap.events] == [e["name"] for e in _pair(problem)]
    assert unknown.unknown == {1} and not unknown.overlapping and unknown.events[1].name == "Nap"
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


def _scored(problem: dict[str, Any], completion: str, profile: str = "default") -> ResultRow:
    """A row scored in-process as `/v1/score` with `return_events` scores it."""
    spec = ProblemSpec.model_validate(problem)
    result = ScoreResult.model_validate(score_and_read(completion, index_problem(spec), PROFILES[profile]))
    return ResultRow(
        problem_id="p", problem=problem, completion=completion, verdict=result.verdict,
        reward=result.reward, violations=result.violations, events=result.events,
    )  # fmt: skip


def test_draw_without_optimum_and_with_impossible_times(tmp_path: Path) -> None:
    problem = {"events": [{"name": "A", "start": "09:00", "end": "10:00"}], "priorities": ["A"]}
    row = _scored(problem, (
        "<think>t</think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "<event><name>Z</name><start>99:99</start><end>10:00</end></event></schedule>"))  # fmt: skip
    lane = Lane.of("m", row)
    assert lane.spans == [(540, 600), (6039, 600)] and lane.unknown == {1}
    path = draw(problem, [lane], None, tmp_path / "t.png", "title")
    assert path.read_bytes()[:8] == PNG


def test_original_profile_lanes_use_its_reading() -> None:
    """`original` reads events anywhere, names as written and any Unicode digit: the lane is its reading."""
    problem = {"events": [{"name": "A", "start": "09:00", "end": "10:00"},
                          {"name": "B", "start": "09:30", "end": "11:00"}], "priorities": []}  # fmt: skip
    text = (
        "<event><name>A</name><start>09:00</start><end>10:00</end></event> then "
        "<event><name> B </name><start>٠٩:٣٠</start><end>11:00</end></event>"
    )
    lane = Lane.of("m", _scored(problem, text, "original"))
    assert [e.name for e in lane.events] == ["A", " B "] and lane.spans == [(540, 600), (570, 660)]
    assert lane.unknown == {1}  # " B " at ٠٩:٣٠ is not the problem's B
    assert Lane.of("m", _scored(problem, text)).events == []  # `default` needs a <schedule> block


def test_rows_scored_before_events_were_recorded_draw_as_not_read(tmp_path: Path) -> None:
    problem = {"events": [{"name": "A", "start": "09:00", "end": "10:00"}], "priorities": []}
    old = ResultRow(problem_id="p", problem=problem, completion="<schedule>…</schedule>", verdict="valid",
                    score_ratio=1.0, reward=100.0)  # fmt: skip
    lane = Lane.of("m", old)
    assert lane.events == [] and lane.note.endswith("not read")
    assert draw(problem, [lane], None, tmp_path / "t.png", "t").read_bytes()[:8] == PNG
    assert optima_from_solver([old]) == {}  # nothing read, nothing claimed optimal
    gold = _scored(problem, "<think>t</think><schedule><event><name>A</name><start>09:00</start>"
                            "<end>10:00</end></event></schedule>")  # fmt: skip
    gold = gold.model_copy(update={"score_ratio": 1.0, "verdict": "valid"})
    assert [e.name for e in optima_from_solver([gold])["p"]] == ["A"]
