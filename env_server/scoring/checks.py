"""Checks of a parsed schedule against a problem: matching, repeats, order, overlaps, verdict.

All checks are O(n log n) in the number of parsed events (overlaps by a sweep over start times), so a
completion listing thousands of events is still scored in bounded time.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import le, lt
from typing import Any, NamedTuple

from env_server.scoring.index import ProblemIndex
from env_server.scoring.parsing import Key, Parsed
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
    n_events: int  # number of parsed events
    all_known: bool  # every parsed event is an input event
    sorted: bool  # start times strictly increasing
    # In the order written, every event ends after it starts and starts no earlier than the previous one
    # ends: no two events overlap (exclusive test), whatever else is wrong.
    disjoint: bool
    value: int  # Σ weight × duration of the events when all are known and none repeated, else 0


_new = tuple.__new__  # NamedTuple construction without the Python-level `__new__`: this runs per completion


def analyse_reference(parsed: Parsed, problem: ProblemIndex) -> Analysis:
    """The facts scoring needs about a parsed completion.

    The specification of `analyse`, which is this function written in C (`_core.c`) when
    `python -m env_server.scoring.native` built it, and this function otherwise; the two agree on every
    `Parsed` the parsers produce (tests/env_server/scoring/test_core_c.py)."""
    starts, ends = parsed.starts, parsed.ends
    matches = tuple(map(problem.exact.get, parsed.keys))
    n, known = len(matches), None not in matches
    repeated: tuple[int, ...] = ()
    value = 0
    if len(set(matches)) == n:  # no event (nor None) occurs twice
        if known:
            value = sum(map(problem.values.__getitem__, matches))  # type: ignore[arg-type]  # no None
    else:  # find the repeats
        seen: set[int] = set()
        rep = []
        for pos, m in enumerate(matches):
            if m is not None:
                if m in seen:
                    rep.append(pos)
                seen.add(m)
        repeated = tuple(rep)
    later = starts[1:]
    breaks: tuple[int, ...] = ()
    disjoint = all(map(lt, starts, ends)) and all(map(le, ends, later))  # then starts increase
    if not disjoint and not all(map(lt, starts, later)):
        breaks = tuple([i for i in range(1, n) if starts[i] <= starts[i - 1]])
    return _new(
        Analysis,
        (parsed, matches, repeated, breaks, n, known, not breaks, disjoint, value),
    )


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


def _as_wire(key: Key) -> dict[str, str]:
    return {"name": key[0], "start": key[1], "end": key[2]}


def _violation(kind: str, indices: list[int], events: list[dict[str, str]], message: str) -> WireViolation:
    return {"type": kind, "indices": indices, "events": events, "message": message}


def violations_reference(a: Analysis) -> list[WireViolation]:
    """Every rule the schedule breaks, typed, with the positions and events involved (wire dicts).

    The specification of `violations`, which is this function written in C (`_core.c`) when
    `python -m env_server.scoring.native` built it, and this function otherwise; the two give equal lists for
    every `Analysis` that `analyse` produces (tests/env_server/scoring/test_core_c.py)."""
    ev = a.parsed.keys  # (name, start, end) of each event
    out: list[WireViolation] = []
    if not a.parsed.has_schedule:
        out.append(_violation("format", [], [], "no <schedule> block with a well-formed event"))
    if a.n_events < 2:
        out.append(_violation("too_few_events", [], [], f"{a.n_events} event(s); at least 2 are required"))
    if not a.all_known:
        for pos, m in enumerate(a.matches):
            if m is None:
                name, start, end = ev[pos]
                out.append(
                    _violation(
                        "unknown_event",
                        [pos],
                        [_as_wire(ev[pos])],
                        f"{name!r} {start}-{end} is not an input event",
                    )
                )
    for pos in a.repeated:
        out.append(
            _violation(
                "repeated_event", [pos], [_as_wire(ev[pos])], f"{ev[pos][0]!r} is listed more than once"
            )
        )
    for pos in a.order_breaks:
        out.append(
            _violation(
                "unsorted",
                [pos - 1, pos],
                [_as_wire(ev[pos - 1]), _as_wire(ev[pos])],
                f"{ev[pos][0]!r} starts at {ev[pos][1]}, not after {ev[pos - 1][1]}",
            )
        )
    if a.disjoint:  # no two events overlap, so no two input events do
        return out
    repeats = set(a.repeated)
    known = [pos for pos, m in enumerate(a.matches) if m is not None and pos not in repeats]
    if len(known) < 2:
        return out
    starts, ends = a.parsed.starts, a.parsed.ends
    for i, j in overlapping_pairs([(starts[p], ends[p]) for p in known]):
        pi, pj = known[i], known[j]
        (ni, si, ei), (nj, sj, ej) = ev[pi], ev[pj]
        out.append(
            _violation(
                "overlap",
                [pi, pj],
                [_as_wire(ev[pi]), _as_wire(ev[pj])],
                f"{ni!r} ({si}-{ei}) overlaps {nj!r} ({sj}-{ej})",
            )
        )
    return out


try:
    from env_server.scoring import _core
except ImportError:  # not built (no C compiler): the references run
    analyse: Callable[[Parsed, ProblemIndex], Analysis] = analyse_reference
    violations: Callable[[Analysis], list[WireViolation]] = violations_reference
else:
    _core.setup_analyse(Analysis)
    analyse = _core.analyse
    violations = _core.violations


def verdict(a: Analysis, problem: ProblemIndex) -> tuple[Verdict, float]:
    """The evaluation verdict (docs/contract.md section 3) and the score ratio (0 unless valid)."""
    if not a.parsed.has_schedule:
        return Verdict.format_error, 0.0
    if a.n_events < 2:
        return Verdict.too_few_events, 0.0
    if not a.all_known or a.repeated:
        return Verdict.unknown_event, 0.0
    if not a.sorted:
        return Verdict.unsorted, 0.0
    if not a.disjoint:
        # Starts are strictly increasing here (the order check passed), so an event overlaps an earlier
        # one exactly when it starts before the latest end so far: one linear scan.
        starts, ends = a.parsed.starts, a.parsed.ends
        latest = ends[0]
        for i in range(1, a.n_events):
            if starts[i] < latest:
                return Verdict.overlap, 0.0
            if ends[i] > latest:
                latest = ends[i]
    return Verdict.valid, a.value / problem.optimal_score
