"""Checks of a parsed schedule against a problem: matching, repeats, order, overlaps, verdict.

All checks are O(n log n) in the number of parsed events (overlaps by a sweep over start times), so a
completion listing thousands of events is still scored in bounded time.
"""

from __future__ import annotations

from dataclasses import dataclass

from env_server.parsing import Parsed, ParsedEvent
from env_server.problems import ProblemIndex
from shared_schema import ScheduledEvent, Verdict, Violation

MAX_REPORTED_PAIRS = 50


@dataclass(frozen=True, slots=True)
class Analysis:
    """Facts about one parsed completion, shared by the reward components and the verdict."""

    parsed: Parsed
    matches: tuple[int | None, ...]  # input event index of each parsed event, None if unknown
    repeated: tuple[int, ...]  # positions that repeat an earlier position's input event
    order_breaks: tuple[int, ...]  # positions i whose start is not after position i-1's start

    @property
    def events(self) -> tuple[ParsedEvent, ...]:
        return self.parsed.events

    @property
    def all_known(self) -> bool:
        return None not in self.matches

    @property
    def sorted(self) -> bool:
        return not self.order_breaks


def analyse(parsed: Parsed, problem: ProblemIndex) -> Analysis:
    matches = tuple(problem.exact.get((e.name, e.start, e.end)) for e in parsed.events)
    seen: set[int] = set()
    repeated = []
    for pos, m in enumerate(matches):
        if m is not None:
            if m in seen:
                repeated.append(pos)
            seen.add(m)
    ev = parsed.events
    breaks = tuple(i for i in range(1, len(ev)) if ev[i].start_min <= ev[i - 1].start_min)
    return Analysis(parsed, matches, tuple(repeated), breaks)


def in_overlap(spans: list[tuple[int, int]], inclusive: bool = False) -> list[bool]:
    """For each (start, end), whether it overlaps any other span.

    Exclusive test (docs/contract.md section 1): `s1 < e2 and s2 < e1`. Inclusive (the `original` quirk):
    `s1 <= e2 and s2 <= e1`. Sorted by start, a span overlaps a later one iff the next start is before
    (or at) its end, and an earlier one iff its start is before (or at) the largest earlier end.
    """
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    flags = [False] * len(spans)
    max_end: int | None = None
    for k, i in enumerate(order):
        s, e = spans[i]
        if max_end is not None and (s <= max_end if inclusive else s < max_end):
            flags[i] = True
        if k + 1 < len(order):
            nxt = spans[order[k + 1]][0]
            if nxt <= e if inclusive else nxt < e:
                flags[i] = True
        max_end = e if max_end is None else max(max_end, e)
    return flags


def overlapping_pairs(spans: list[tuple[int, int]], limit: int = MAX_REPORTED_PAIRS) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of spans that overlap (exclusive test), at most `limit` of them."""
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    pairs: list[tuple[int, int]] = []
    for a, i in enumerate(order):
        for j in order[a + 1 :]:
            if spans[j][0] >= spans[i][1]:
                break
            pairs.append((min(i, j), max(i, j)))
            if len(pairs) >= limit:
                return sorted(pairs)
    return sorted(pairs)


def _as_wire(e: ParsedEvent) -> ScheduledEvent:
    return ScheduledEvent(name=e.name, start=e.start, end=e.end)


def violations(a: Analysis) -> list[Violation]:
    """Every rule the schedule breaks, typed, with the positions and events involved."""
    ev = a.events
    out: list[Violation] = []
    if not a.parsed.has_schedule:
        out.append(Violation(type="format", message="no <schedule> block with a well-formed event"))
    if len(ev) < 2:
        out.append(Violation(type="too_few_events", message=f"{len(ev)} event(s); at least 2 are required"))
    for pos, m in enumerate(a.matches):
        if m is None:
            out.append(
                Violation(
                    type="unknown_event",
                    indices=[pos],
                    events=[_as_wire(ev[pos])],
                    message=f"{ev[pos].name!r} {ev[pos].start}-{ev[pos].end} is not an input event",
                )
            )
    for pos in a.repeated:
        out.append(
            Violation(
                type="repeated_event",
                indices=[pos],
                events=[_as_wire(ev[pos])],
                message=f"{ev[pos].name!r} is listed more than once",
            )
        )
    for pos in a.order_breaks:
        out.append(
            Violation(
                type="unsorted",
                indices=[pos - 1, pos],
                events=[_as_wire(ev[pos - 1]), _as_wire(ev[pos])],
                message=f"{ev[pos].name!r} starts at {ev[pos].start}, not after {ev[pos - 1].start}",
            )
        )
    repeats = set(a.repeated)
    known = [pos for pos, m in enumerate(a.matches) if m is not None and pos not in repeats]
    for i, j in overlapping_pairs([(ev[p].start_min, ev[p].end_min) for p in known]):
        pi, pj = known[i], known[j]
        out.append(
            Violation(
                type="overlap",
                indices=[pi, pj],
                events=[_as_wire(ev[pi]), _as_wire(ev[pj])],
                message=f"{ev[pi].name!r} ({ev[pi].start}-{ev[pi].end}) overlaps "
                f"{ev[pj].name!r} ({ev[pj].start}-{ev[pj].end})",
            )
        )
    return out


def verdict(a: Analysis, problem: ProblemIndex) -> tuple[Verdict, float]:
    """The evaluation verdict (docs/contract.md section 3) and the score ratio (0 unless valid)."""
    ev = a.events
    if not a.parsed.has_schedule:
        return Verdict.format_error, 0.0
    if len(ev) < 2:
        return Verdict.too_few_events, 0.0
    if not a.all_known or a.repeated:
        return Verdict.unknown_event, 0.0
    if not a.sorted:
        return Verdict.unsorted, 0.0
    if any(in_overlap([(e.start_min, e.end_min) for e in ev])):
        return Verdict.overlap, 0.0
    total = sum(problem.events[m].value for m in a.matches if m is not None)
    return Verdict.valid, total / problem.optimal_score
