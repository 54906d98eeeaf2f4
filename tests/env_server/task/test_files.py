"""Published column layout: JSONL and Parquet round trips; stored optima are checked, never trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from env_server.task.files import load_problems, row_to_problem, save_problems
from env_server.task.generator import generate_split


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    problems = generate_split(0, "test", 12)
    path = save_problems(problems, tmp_path / f"test{suffix}")
    loaded, mismatches = load_problems(path, "test")
    assert loaded == problems and mismatches == []


def test_published_layout_row_is_read_and_its_optimum_checked(tmp_path: Path) -> None:
    rows = [
        {
            "events": [
                ["Standup", "09:00", "09:15"],
                ["Review", "09:10", "10:00"],
                ["Lunch ", "12:00", "13:00"],
            ],
            "priority_events": ["Review"],
            "optimal_score": 999,  # wrong on purpose
            "prompt": "whatever the published prompt said",
        },
        {
            "events": [["A", "23:30", "24:30"], ["B", "08:00", "09:00"]],
            "priority_events": ["A"],
            "optimal_score": 180,
        },
    ]
    path = tmp_path / "published.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    problems, mismatches = load_problems(path, "test")
    assert [p.optimal_score for p in problems] == [100 + 60, 180]
    assert [(m.id, m.stored, m.computed) for m in mismatches] == [("test-000000", 999, 160)]
    assert problems[0].events[2].name == "Lunch"  # trimmed on import
    assert problems[1].events[0].end == "24:30"  # past midnight is representable


def test_dict_events_and_priorities_alias() -> None:
    p, mm = row_to_problem(
        {"id": "x", "events": [{"name": "a", "start": "09:00", "end": "10:00"}], "priorities": ["a"]}, "d"
    )
    assert p.id == "x" and p.optimal_score == 120 and mm is None


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset file not found"):
        load_problems(tmp_path / "nope.parquet", "train")
