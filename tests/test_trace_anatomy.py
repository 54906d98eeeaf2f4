"""bench/trace_anatomy.py reads traces as the solver writes them: the solver's own traces are right on
every figure, and a trace that misstates values and overlaps is caught."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from env_server.task.generator import generate_problem
from env_server.task.traces import traced_completion

SPEC = importlib.util.spec_from_file_location(
    "trace_anatomy", Path(__file__).parents[1] / "bench" / "trace_anatomy.py"
)
assert SPEC is not None and SPEC.loader is not None
study = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(study)


def _row(
    problem: Any, completion: str, verdict: str = "valid", violations: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "problem": {
            "events": [{"name": e.name, "start": e.start, "end": e.end} for e in problem.events],
            "priorities": list(problem.priorities),
        },
        "completion": completion,
        "verdict": verdict,
        "violations": violations or [],
    }


@pytest.mark.parametrize("style", ["by_hour", "sorted", "checked"])
def test_the_solvers_traces_are_right_on_every_figure(style: str) -> None:
    problems = [generate_problem(0, "test", i) for i in range(40)]
    figures = study.anatomy([_row(p, traced_completion(p, style=style)) for p in problems])
    assert figures["event_lines"] == sum(len(p.events) for p in problems)
    assert figures["times_right"] == figures["values_right"] == 1.0
    assert figures["overlapping_pairs"] > 20 and figures["overlap_recall"] == 1.0
    assert figures["overlap_lines"] > 10 and figures["overlap_precision"] == 1.0
    if style == "checked":
        assert figures["checked_lines"] == figures["event_lines"]
        assert figures["sums_right"] == figures["latest_ends_right"] == figures["checks_right"] == 1.0
    else:
        assert figures["checked_lines"] == 0 and figures["checks_right"] is None


def test_a_wrong_checked_line_is_caught() -> None:
    problem = _two_overlapping()
    _, b = sorted(problem.events[:2], key=lambda e: (e.start_min, e.end_min, e.name))
    lines = traced_completion(problem, style="checked").splitlines()
    wrong = []
    for line in lines:
        if line.startswith(f"- {b.name} {b.start}-"):  # b overlaps a: write it as clear, its sum off by 5
            line = re.sub(r": (\d+)", lambda m: f": {int(m.group(1)) + 5}", line, count=1)
            line = line.replace(" overlap", " clear").replace(" < ", " >= ")
        wrong.append(line)
    figures = study.anatomy([_row(problem, "\n".join(wrong))])
    n = figures["checked_lines"]
    assert n == len(problem.events) and figures["checks_right"] == round((n - 1) / n, 3)
    assert figures["sums_right"] == round((n - 1) / n, 3) and figures["latest_ends_right"] == 1.0


def test_a_wrong_trace_is_caught() -> None:
    problem = _two_overlapping()
    a, b = problem.events[0], problem.events[1]
    trace = (
        f"<think>By start time:\n- {a.name} {a.start}-{a.end}: 15\n- {b.name} {b.start}-{b.end}: 15\n"
        f"No two events overlap: keep them all.</think>"
    )
    broken = [{"type": "overlap", "events": [{"name": a.name}, {"name": b.name}]}]
    figures = study.anatomy([_row(problem, trace, "overlap", broken)])
    assert figures["times_right"] == 1.0 and figures["values_right"] == 0.0
    assert figures["overlap_recall"] == 0.0 and figures["overlap_lines"] == 0
    assert figures["broken_pairs"] == 1 and figures["broken_pairs_named"] == 0


def _two_overlapping() -> Any:
    for i in range(200):
        p = generate_problem(0, "test", i)
        first, second = p.events[0], p.events[1]
        if first.start_min < second.end_min and second.start_min < first.end_min and first.duration != 15:
            return p
    raise AssertionError("no problem whose first two events overlap")
