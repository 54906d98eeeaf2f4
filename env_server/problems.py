"""Problems as the core sees them: a scoring index, the exact optimum, and the gold answer text."""

from __future__ import annotations

from dataclasses import dataclass

from env_server.solver import Interval, solve_intervals
from shared_schema import Event, Problem, ProblemSpec

PRIORITY_WEIGHT = 2


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    name: str
    start: int
    end: int
    weight: int

    @property
    def value(self) -> int:
        return self.weight * (self.end - self.start)


@dataclass(frozen=True, slots=True)
class ProblemIndex:
    """Everything scoring needs, precomputed once per problem.

    `exact` maps the untrimmed (name, start, end) strings to an event (the `original` profile compares
    names exactly); `trimmed` maps (stripped name, start, end) (the `default` profile). Input names never
    carry surrounding white space, so both maps have the same keys today; they stay separate so each
    profile states its own rule.
    """

    events: tuple[IndexedEvent, ...]
    exact: dict[tuple[str, str, str], int]
    optimal_score: int
    spans: tuple[tuple[int, int], ...] = ()  # (start, end) minutes of each event: converted once
    values: tuple[int, ...] = ()  # weight × duration of each event

    def __post_init__(self) -> None:
        if not self.spans and self.events:
            object.__setattr__(self, "spans", tuple((e.start, e.end) for e in self.events))
            object.__setattr__(self, "values", tuple(e.value for e in self.events))


def index_problem(spec: ProblemSpec, optimal_score: int | None = None) -> ProblemIndex:
    """Build the scoring index; the optimum is computed here unless already known."""
    prio = set(spec.priorities)
    events = tuple(
        IndexedEvent(e.name, e.start_min, e.end_min, PRIORITY_WEIGHT if e.name in prio else 1)
        for e in spec.events
    )
    exact = {(e.name, e.start, e.end): i for i, e in enumerate(spec.events)}
    if optimal_score is None:
        optimal_score = solve(spec)[0]
    return ProblemIndex(events=events, exact=exact, optimal_score=optimal_score)


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


def format_schedule(schedule: list[Event]) -> str:
    """A schedule in the answer format (the `<schedule>` block only)."""
    lines = [
        f"<event><name>{e.name}</name><start>{e.start}</start><end>{e.end}</end></event>" for e in schedule
    ]
    return "<schedule>\n" + "\n".join(lines) + "\n</schedule>"


def gold_completion(spec: ProblemSpec, solution: tuple[int, list[Event]] | None = None) -> str:
    """The optimal answer written as a model should write it: reasoning block, then the schedule.

    Pass `solution` (the result of `solve(spec)`) when it is already at hand, to solve only once.
    """
    value, schedule = solution if solution is not None else solve(spec)
    reasoning = (
        f"Weighted interval scheduling over {len(spec.events)} events; priority events count double. "
        f"The best non-overlapping selection has {len(schedule)} events worth {value}."
    )
    return f"<think>{reasoning}</think>\n{format_schedule(schedule)}"
