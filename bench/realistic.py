"""Realistic completions for the benchmarks: reasoning of about 1.5 k characters that names events and
their times, then a schedule; a mix of every verdict (optimal, overlapping, invented, unsorted, repeated,
single event, malformed, no reasoning).

Problems are `generate_problem(0, "train", i % 64)`: the train split of a service started with
`SCHED_TRAIN_SIZE=64` (seed 0), so the same pairs can be sent by `problem_id` or inline.
"""

from __future__ import annotations

from env_server.task.generator import generate_problem
from env_server.task.problems import solve
from shared_schema import Event, Problem
from shared_schema.answer import format_schedule

KINDS = ("optimal", "overlapping", "invented", "unsorted", "repeated", "single", "malformed", "no-think")


def reasoning(p: Problem, chars: int = 1500) -> str:
    """Prose that walks through the events by name and time, as a model's reasoning does."""
    parts = ["Let me list the events by start time and check which ones overlap. "]
    i = 0
    while sum(map(len, parts)) < chars:
        e, f = p.events[i % len(p.events)], p.events[(i + 1) % len(p.events)]
        prio = " It is a priority, so it counts double." if e.name in p.priorities else ""
        clash = f"does it clash with {f.name} ({f.start}-{f.end})?"
        parts.append(f"{e.name} runs from {e.start} to {e.end}; {clash}{prio} ")
        i += 1
    return "".join(parts)[:chars]


def completion(p: Problem, kind: str) -> str:
    _, best = solve(p)
    think = f"<think>{reasoning(p)}</think>\n"
    if kind == "overlapping":
        return think + format_schedule(sorted(p.events, key=lambda e: e.start_min))
    if kind == "invented":
        return think + format_schedule([*best, Event(name="Nap", start="23:00", end="23:30")])
    if kind == "unsorted":
        return think + format_schedule(list(reversed(best)))
    if kind == "repeated":
        return think + format_schedule([*best, best[0]])
    if kind == "single":
        return think + format_schedule(best[:1])
    if kind == "malformed":
        return (think + format_schedule(best)).replace("</schedule>", "")
    if kind == "no-think":
        return format_schedule(best)
    return think + format_schedule(best)


def realistic_pairs(n: int = 400) -> list[tuple[Problem, str]]:
    """`n` (problem, completion) pairs; half the answers optimal, the rest every other kind in turn."""
    out = []
    for i in range(n):
        p = generate_problem(0, "train", i % 64)
        kind = KINDS[0] if i % 2 == 0 else KINDS[1 + (i // 2) % (len(KINDS) - 1)]
        out.append((p, completion(p, kind)))
    return out
