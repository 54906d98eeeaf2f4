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

The `by_hour` trace style (`TraceStyle`) writes step 1 as a scan of the day's hours instead, for
prompts that list the events unsorted (the published one): one `HHh:` line for every hour from 00 to
23 (further only when an event starts past midnight), followed by the events that start in it (the same
`- NAME HH:MM-HH:MM: value` lines, by start time), or `HHh -` when none does. Sorting becomes a sequence
of lookups (which events start with `08:`?), which a small model may learn more easily than comparing
every start time with every other; steps 2 and 3 are the same.

The `checked` trace style is the `by_hour` scan with each event line's arithmetic written out, so that
every figure is computed from figures beside it rather than recalled (issue 26: models trained on
`by_hour` copy the times right but write the right value for 12 % of events and a true overlap line for
9-15 %; bench/trace_anatomy.py):

    09h:
    - Bank Visit 09:46-10:46: 14 + 46 = 60; 09:46 >= 08:19 clear
    - House Cleaning 09:55-11:40: 5 + 60 + 40 = 105; 09:55 < 10:46 overlap
    10h:
    - Dog Walk 10:02-11:32: 58 + 32 = 90, priority x 2 = 180; 10:02 < 11:40 overlap

- the duration as a sum: the minutes left in the start hour, 60 for each full hour between, the minutes
  into the end hour (`END - START = D` when both are in the same hour), then `, priority x 2 = V` for a
  priority;
- the start beside the latest end of the events listed before it: `S < E overlap` (the event overlaps
  an earlier one: it joins that one's group) or `S >= E clear` (it starts a new group); `first` for the
  day's first event. The groups of step 2 are the runs of `overlap` lines with the `clear` line above.

The choices are the exact solver's (`problems.solve`), so the traced answer is always optimal and earns
the maximum under every profile. Deterministic: the same problem gives the same text.
"""

from __future__ import annotations

from collections.abc import Callable

from env_server.task.problems import PRIORITY_WEIGHT, solve
from env_server.task.prompts import by_start_time, valued_event_lines, valued_line
from shared_schema import Event, ProblemSpec
from shared_schema.answer import format_schedule
from shared_schema.models import TRACE_STYLES, TraceStyle

__all__ = [
    "TRACE_STYLES",
    "TraceStyle",
    "checked_scan_lines",
    "duration_sum",
    "hour_scan_lines",
    "overlap_groups",
    "traced_completion",
]


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


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def duration_sum(event: Event) -> str:
    """`14 + 46 = 60` for 09:46-10:46: the minutes left in the start hour, 60 for each full hour between
    (`5 + 60 + 40 = 105`), the minutes into the end hour; `19 - 4 = 15` within one hour."""
    (h1, m1), (h2, m2) = divmod(event.start_min, 60), divmod(event.end_min, 60)
    if h1 == h2:
        return f"{m2} - {m1} = {event.duration}"
    between = [str(60 * (h2 - h1 - 1))] if h2 - h1 > 1 else []
    return " + ".join([str(60 - m1), *between, str(m2)]) + f" = {event.duration}"


def _checked_line(event: Event, priority: bool, latest_end: int | None) -> str:
    value = f", priority x {PRIORITY_WEIGHT} = {PRIORITY_WEIGHT * event.duration}" if priority else ""
    if latest_end is None:
        check = "first"
    elif event.start_min < latest_end:
        check = f"{event.start} < {_hhmm(latest_end)} overlap"
    else:
        check = f"{event.start} >= {_hhmm(latest_end)} clear"
    return f"- {event.name} {event.start}-{event.end}: {duration_sum(event)}{value}; {check}"


def _scan(spec: ProblemSpec, line: Callable[[Event, bool, int | None], str]) -> list[str]:
    prio = set(spec.priorities)
    lines = []
    ordered = by_start_time(list(spec.events))
    last = max([23, *(e.start_min // 60 for e in ordered)])  # past midnight only when an event starts there
    latest_end: int | None = None
    for hour in range(last + 1):
        starting = [e for e in ordered if e.start_min // 60 == hour]
        lines.append(f"{hour:02d}h:" if starting else f"{hour:02d}h -")
        for e in starting:
            lines.append(line(e, e.name in prio, latest_end))
            latest_end = e.end_min if latest_end is None else max(latest_end, e.end_min)
    return lines


def hour_scan_lines(spec: ProblemSpec) -> list[str]:
    """The `by_hour` trace's first step: `HHh:` for every hour of the day (00-23, or to the latest
    start when one is past midnight), each followed by the
    valued lines of the events starting in it (by start time), or `HHh -` when none does."""
    return _scan(spec, lambda e, priority, _: valued_line(e, priority))


def checked_scan_lines(spec: ProblemSpec) -> list[str]:
    """The `checked` trace's first step: the `by_hour` scan with each event's duration written as a sum
    and its start set beside the latest end before it (`overlap` or `clear`; see the module docstring)."""
    return _scan(spec, _checked_line)


def traced_completion(
    spec: ProblemSpec, solution: tuple[int, list[Event]] | None = None, style: TraceStyle = "sorted"
) -> str:
    """The optimal answer with a step-by-step `<think>` block (see the module docstring).

    Pass `solution` (the result of `solve(spec)`) when it is already at hand, to solve only once.
    `style`: `sorted` lists the events by start time, `by_hour` scans the hours of the day, `checked`
    scans them with each event's arithmetic and overlap check written out.
    """
    if style not in TRACE_STYLES:
        raise ValueError(f"unknown trace style {style!r}; choose from {TRACE_STYLES}")
    total, schedule = solution if solution is not None else solve(spec)
    prio = set(spec.priorities)
    value = {e.name: (PRIORITY_WEIGHT if e.name in prio else 1) * e.duration for e in spec.events}
    kept = {e.name for e in schedule}

    if style == "by_hour":
        lines = ["By start hour:", *hour_scan_lines(spec)]
    elif style == "checked":
        lines = ["By start hour:", *checked_scan_lines(spec)]
    else:
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
