"""A problem's exact optimum, a served problem with it, and the gold answer text."""

from __future__ import annotations

from env_server.task.solver import Interval, solve_intervals
from shared_schema import Event, Problem, ProblemSpec
from shared_schema.answer import format_answer

PRIORITY_WEIGHT = 2


def solve(spec: ProblemSpec) -> tuple[int, list[Event]]:
    """The exact optimum of a problem and one optimal schedule, chronological."""
    prio = set(spec.priorities)
    intervals = [
        Interval(i, e.start_min, e.end_min, (PRIORITY_WEIGHT if e.name in prio else 1) * e.duration)
        for i, e in enumerate(spec.events)
    ]
    value, keys = solve_intervals(intervals)
    return value, [spec.events[k] for k in keys]


def with_optimum(spec: ProblemSpec, problem_id: str) -> Problem:
    """A served problem: the optimum is always recomputed, never trusted from input."""
    return Problem(
        id=problem_id, events=spec.events, priorities=spec.priorities, optimal_score=solve(spec)[0]
    )


def gold_completion(spec: ProblemSpec, solution: tuple[int, list[Event]] | None = None) -> str:
    """The optimal answer written as a model should write it: reasoning block, then the schedule.

    Pass `solution` (the result of `solve(spec)`) when it is already at hand, to solve only once.
    """
    value, schedule = solution if solution is not None else solve(spec)
    reasoning = (
        f"Weighted interval scheduling over {len(spec.events)} events; priority events count double. "
        f"The best non-overlapping selection has {len(schedule)} events worth {value}."
    )
    return format_answer(reasoning, schedule)
