"""A problem as the scoring engine sees it: its events keyed for lookup, their values, and the optimum.

Built once per problem (`index_problem`) and cached by the service; every profile scores against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from env_server.task.problems import PRIORITY_WEIGHT, solve
from shared_schema import ProblemSpec


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
