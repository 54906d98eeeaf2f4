"""Simple scheduling policies that act as "models", so every report has reference rows.

They write answers in the answer format like a model would; the service scores them like any other
completion. `greedy_weight` takes events by value (priority weight × minutes) while they fit;
`earliest_finish` is the classic unweighted interval-scheduling greedy (most events, ignoring weights).
Neither is optimal in general: the gap to the `solver` row shows how much the weighting matters.
"""

from __future__ import annotations

from collections.abc import Callable

from shared_schema import Event, ProblemSpec

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


def write_answer(schedule: list[Event], reasoning: str) -> str:
    """A schedule in the answer format, with a one-line reasoning block."""
    lines = [
        f"<event><name>{e.name}</name><start>{e.start}</start><end>{e.end}</end></event>" for e in schedule
    ]
    return f"<think>{reasoning}</think>\n<schedule>\n" + "\n".join(lines) + "\n</schedule>"


POLICIES: dict[str, tuple[Policy, str]] = {
    "greedy_weight": (greedy_by_weight, "Take the most valuable event that still fits, repeatedly."),
    "earliest_finish": (earliest_finish, "Take the event that ends first, then the next compatible one."),
}


def policy_answer(name: str, spec: ProblemSpec) -> str:
    """The answer text of baseline policy `name` for one problem."""
    policy, reasoning = POLICIES[name]
    return write_answer(policy(spec), reasoning)
