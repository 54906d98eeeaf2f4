"""Simple scheduling policies that act as "models", so every report has reference rows.

They write answers in the answer format like a model would; the service scores them like any other
completion. `greedy_weight` takes events by value (priority weight × minutes) while they fit;
`earliest_finish` is the classic unweighted interval-scheduling greedy (most events, ignoring weights).
Neither is optimal in general: the gap to the `solver` row (`SolverBackend`, the service's exact optimum)
shows how much the weighting matters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared_schema import Event, ProblemSpec
from shared_schema.answer import format_answer
from trainer.client.env_client import EnvClient
from trainer.evaluation.dataset import EvalProblem
from trainer.evaluation.generation import Generation, Progress

PRIORITY_WEIGHT = 2  # the task definition (docs/contract.md section 1), needed by a policy that maximises it

Policy = Callable[[ProblemSpec], list[Event]]


def _value(e: Event, priorities: set[str]) -> int:
    return (PRIORITY_WEIGHT if e.name in priorities else 1) * e.duration


def _overlaps(a: Event, b: Event) -> bool:
    return a.start_min < b.end_min and b.start_min < a.end_min


def greedy_by_weight(spec: ProblemSpec) -> list[Event]:
    """Highest value first, skipping anything that overlaps what is already taken; chronological."""
    prio = set(spec.priorities)
    order = sorted(spec.events, key=lambda e: (-_value(e, prio), e.start_min, e.name))
    taken: list[Event] = []
    for e in order:
        if not any(_overlaps(e, t) for t in taken):
            taken.append(e)
    return sorted(taken, key=lambda e: e.start_min)


def earliest_finish(spec: ProblemSpec) -> list[Event]:
    """Earliest end first, taking every event that starts at or after the last one taken ends."""
    taken: list[Event] = []
    for e in sorted(spec.events, key=lambda e: (e.end_min, e.start_min, e.name)):
        if not taken or e.start_min >= taken[-1].end_min:
            taken.append(e)
    return taken


POLICIES: dict[str, tuple[Policy, str]] = {
    "greedy_weight": (greedy_by_weight, "Take the most valuable event that still fits, repeatedly."),
    "earliest_finish": (earliest_finish, "Take the event that ends first, then the next compatible one."),
}


def policy_answer(name: str, spec: ProblemSpec) -> str:
    """The answer text of baseline policy `name` for one problem."""
    policy, reasoning = POLICIES[name]
    return format_answer(reasoning, policy(spec))


class SolverBackend:
    """The exact optimum from the service's `/v1/solve`: must score 100% valid, mean score ratio 1.0."""

    kind = "solver"

    def __init__(self, client: EnvClient) -> None:
        self.client = client

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        out = []
        for p in problems:
            out.append(Generation(self.client.solve(p.spec).completion, "stop"))
            if progress is not None:
                progress(1)
        return out


class PolicyBackend:
    """A client-side baseline policy from `POLICIES` (e.g. `greedy_weight`)."""

    def __init__(self, name: str) -> None:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; choose from {sorted(POLICIES)}")
        self.kind = name

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        out = [Generation(policy_answer(self.kind, p.spec), "stop") for p in problems]
        if progress is not None:
            progress(len(out))
        return out
