"""Checks of a parsed schedule against a problem: matching, repeats, order, overlaps, verdict.

All checks are O(n log n) in the number of parsed events (overlaps by a sweep over start times), so a
completion listing thousands of events is still scored in bounded time.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from env_server.parsing import Parsed, ParsedEvent
from env_server.problems import ProblemIndex
from shared_schema import Verdict

# A violation in its wire shape (`shared_schema.Violation` as JSON): built as plain dicts because the hot
# path writes them straight into the response; `ScoreResult.model_validate` turns them into models.
WireViolation = dict[str, Any]

MAX_REPORTED_PAIRS = 50


class Analysis(NamedTuple):
    """Facts about one parsed completion, shared by the reward components and the verdict."""

    parsed: Parsed
    matches: tuple[int | None, ...]  # input event index of each parsed event, None if unknown
    repeated: tuple[int, ...]  # positions that repeat an earlier position's input event
    order_breaks: tuple[int, ...]  # positions i whose start is not after position i-1's start
    events: tuple[ParsedEvent, ...]  # = parsed.events
    all_known: bool  # every parsed event is an input event
    sorted: bool  # start times strictly increasing


_new = tuple.__new__  # NamedTuple construction without the Python-level `__new__`: this runs per completion


def analyse(parsed: Parsed, problem: ProblemIndex) -> Analysis:
    ev = parsed.events
    get = problem.exact.get
    matches = tuple([get(e[:3]) for e in ev])
    repeated: tuple[int, ...] = ()
    if len(set(matches)) < len(matches):  # some event (or None) occurs twice: find the repeats
        seen: set[int] = set()
        rep = []
        for pos, m in enumerate(matches):
            if m is not None:
                if m in seen:
                    rep.append(pos)
                seen.add(m)
        repeated = tuple(rep)
    breaks = tuple([i for i in range(1, len(ev)) if ev[i].start_min <= ev[i - 1].start_min])
    return _new(Analysis, (parsed, matches, repeated, breaks, ev, None not in matches, not breaks))


def in_overlap(spans: list[tuple[int, int]], inclusive: bool = False) -> list[bool]:
    """For each (start, end), whether it overlaps any other span.

    Exclusive test (docs/contract.md section 1): `s1 < e2 and s2 < e1`. Inclusive (the `original` quirk):
    `s1 <= e2 and s2 <= e1`. Sorted by start, a span overlaps a later one iff the next start is before
    (or at) its end, and an earlier one iff its start is before (or at) the largest earlier end.
    """
    prev_end: int | None = None
    for s, e in spans:  # common case: in start order and disjoint, so nothing overlaps
        if e <= s or (prev_end is not None and (s <= prev_end if inclusive else s < prev_end)):
            break
        prev_end = e
    else:
        return [False] * len(spans)
    order = sorted(range(len(spans)), key=[s for s, _ in spans].__getitem__)
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
    order = sorted(range(len(spans)), key=spans.__getitem__)
    pairs: list[tuple[int, int]] = []
    for a, i in enumerate(order):
        for j in order[a + 1 :]:
            if spans[j][0] >= spans[i][1]:
                break
            pairs.append((min(i, j), max(i, j)))
            if len(pairs) >= limit:
                return sorted(pairs)
    return sorted(pairs)


def _as_wire(e: ParsedEvent) -> dict[str, str]:
    return {"name": e.name, "start": e.start, "end": e.end}


def _violation(kind: str, indices: list[int], events: list[dict[str, str]], message: str) -> WireViolation:
    return {"type": kind, "indices": indices, "events": events, "message": message}


def violations(a: Analysis) -> list[WireViolation]:
    """Every rule the schedule breaks, typed, with the positions and events involved (wire dicts)."""
    ev = a.events
    out: list[WireViolation] = []
    if not a.parsed.has_schedule:
        out.append(_violation("format", [], [], "no <schedule> block with a well-formed event"))
    if len(ev) < 2:
        out.append(_violation("too_few_events", [], [], f"{len(ev)} event(s); at least 2 are required"))
    if None in a.matches:
        for pos, m in enumerate(a.matches):
            if m is None:
                e = ev[pos]
                out.append(
                    _violation(
                        "unknown_event",
                        [pos],
                        [_as_wire(e)],
                        f"{e.name!r} {e.start}-{e.end} is not an input event",
                    )
                )
    for pos in a.repeated:
        out.append(
            _violation(
                "repeated_event", [pos], [_as_wire(ev[pos])], f"{ev[pos].name!r} is listed more than once"
            )
        )
    for pos in a.order_breaks:
        out.append(
            _violation(
                "unsorted",
                [pos - 1, pos],
                [_as_wire(ev[pos - 1]), _as_wire(ev[pos])],
                f"{ev[pos].name!r} starts at {ev[pos].start}, not after {ev[pos - 1].start}",
            )
        )
    repeats = set(a.repeated)
    known = [pos for pos, m in enumerate(a.matches) if m is not None and pos not in repeats]
    if len(known) < 2:
        return out
    for i, j in overlapping_pairs([(ev[p].start_min, ev[p].end_min) for p in known]):
        pi, pj = known[i], known[j]
        out.append(
            _violation(
                "overlap",
                [pi, pj],
                [_as_wire(ev[pi]), _as_wire(ev[pj])],
                f"{ev[pi].name!r} ({ev[pi].start}-{ev[pi].end}) overlaps "
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
    # Starts are strictly increasing here (the order check passed), so an event overlaps an earlier one
    # exactly when it starts before the latest end so far: one linear scan.
    latest = ev[0].end_min
    for e in ev[1:]:
        if e.start_min < latest:
            return Verdict.overlap, 0.0
        if e.end_min > latest:
            latest = e.end_min
    values = problem.values
    total = sum([values[m] for m in a.matches if m is not None])
    return Verdict.valid, total / problem.optimal_score
