"""Reasoning traces: the optimal answer with a `<think>` block that walks through the method.

A small model learns the task faster from answers that show *how* they were reached than from bare
schedules (the cold start before GRPO). The trace is short, plain and the same shape for every problem:

    <think>By start time:
    - Gym 08:00-09:00: 60
    - Team sync 08:30-09:15: priority, 2 x 45 = 90
    - Lunch 12:00-13:00: 60
    Gym overlaps Team sync: keep Team sync (90 > 60).
    Keep 2 events, total 150.</think>
    <schedule>
    ...

1. every event in chronological order with its value (minutes, doubled for a priority), so the schedule
   that follows is a copy of this list with the dropped events left out;
2. one line per group of events that overlap one another (a connected component of the overlap
   graph; groups never interact, so the optimum is the best choice in each group): which events it
   keeps and drops, with their values;
3. the number of events kept and the optimal total.

The choices are the exact solver's (`problems.solve`), so the traced answer is always optimal and earns
the maximum under every profile. Deterministic: the same problem gives the same text.
"""

from __future__ import annotations

from env_server.task.problems import PRIORITY_WEIGHT, solve
from env_server.task.prompts import by_start_time, valued_event_lines
from shared_schema import Event, ProblemSpec
from shared_schema.answer import format_schedule


def _names(events: list[Event]) -> str:
    names = [e.name for e in events]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def overlap_groups(events: list[Event]) -> list[list[Event]]:
    """Events that overlap at least one other, grouped by connected run, in chronological order.

    Sorted by start, an event joins the current group while it starts before the group's latest end
    (touching does not overlap); events alone in their group overlap nothing and are left out.
    """
    ordered = by_start_time(events)
    groups: list[list[Event]] = []
    current: list[Event] = []
    reach = -1
    for e in ordered:
        if current and e.start_min < reach:
            current.append(e)
            reach = max(reach, e.end_min)
            continue
        if len(current) > 1:
            groups.append(current)
        current, reach = [e], e.end_min
    if len(current) > 1:
        groups.append(current)
    return groups


def traced_completion(spec: ProblemSpec, solution: tuple[int, list[Event]] | None = None) -> str:
    """The optimal answer with a step-by-step `<think>` block (see the module docstring).

    Pass `solution` (the result of `solve(spec)`) when it is already at hand, to solve only once.
    """
    total, schedule = solution if solution is not None else solve(spec)
    prio = set(spec.priorities)
    value = {e.name: (PRIORITY_WEIGHT if e.name in prio else 1) * e.duration for e in spec.events}
    kept = {e.name for e in schedule}

    lines = ["By start time:", *valued_event_lines(spec)]
    groups = overlap_groups(list(spec.events))
    if not groups:
        lines.append("No two events overlap: keep them all.")
    for group in groups:
        keep = [e for e in group if e.name in kept]
        drop = [e for e in group if e.name not in kept]
        keep_value = sum(value[e.name] for e in keep)
        drop_value = sum(value[e.name] for e in drop)
        if len(group) == 2:
            lines.append(
                f"{group[0].name} overlaps {group[1].name}: keep {_names(keep)} "
                f"({keep_value} {'>' if keep_value > drop_value else '='} {drop_value})."
            )
            continue
        sums = " + ".join(str(value[e.name]) for e in keep)
        kept_text = f"{sums} = {keep_value}" if len(keep) > 1 else str(keep_value)
        lines.append(
            f"{_names(group)} overlap: keep {_names(keep)} ({kept_text}), drop {_names(drop)} ({drop_value})."
        )
    lines.append(f"Keep {len(schedule)} events, total {total}.")
    return "<think>" + "\n".join(lines) + "</think>\n" + format_schedule(schedule)
