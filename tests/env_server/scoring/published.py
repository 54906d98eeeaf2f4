"""The published reward code, transcribed literally: the reference the `original` profile must equal.

Nothing here comes from `env_server`: the regexes, the event pattern, the overlap rule and the optimum
are written out as the published code has them (the optimum by brute force over every subset of events,
where the published dataset stored the solver's value), so a mistake in the module under test cannot
also be a mistake in its reference.
"""

from __future__ import annotations

import re
from itertools import combinations, pairwise

from shared_schema import Problem

FORMAT_REGEX = (
    r"<think>.+</think>.*<schedule>.*(<event>.*<name>.+</name>.*<start>\d{2}:\d{2}</start>.*"
    r"<end>\d{2}:\d{2}</end>.*</event>)+.*</schedule>"
)
LENIENT_REGEX = (
    r".*<schedule>.*<event>.*<name>.*</name>.*<start>\d{2}:\d{2}</start>.*<end>\d{2}:\d{2}</end>.*"
    r"</event>.*</schedule>.*"
)
EVENT_RE = (
    r"<event>\s*<name>([^<]+)</name>\s*<start>(\d{2}:\d{2})</start>\s*<end>(\d{2}:\d{2})</end>\s*</event>"
)


def _minutes(t: str) -> int:
    h, m = t.split(":")
    return int(h) * 60 + int(m)


def optimum(problem: Problem) -> int:
    """The best total over every subset of pairwise non-overlapping events (touching is allowed)."""
    events = [
        (_minutes(e.start), _minutes(e.end), 2 if e.name in problem.priorities else 1) for e in problem.events
    ]
    best = 0
    for k in range(1, len(events) + 1):
        for chosen in combinations(sorted(events), k):
            if all(a[1] <= b[0] for a, b in pairwise(chosen)):
                best = max(best, sum(w * (end - start) for start, end, w in chosen))
    return best


def published_rewards(
    completion: str, problem: Problem, optimal_score: int | None = None
) -> tuple[float, float, float]:
    """The published training rewards, written the way the published code reads (regexes, sets, pairs).

    `optimal_score` defaults to the brute-force `optimum`; a caller scoring many completions of one problem
    passes it once computed."""
    fmt = 10.0 if re.match(FORMAT_REGEX, completion, re.DOTALL) else 0.0
    events = re.findall(EVENT_RE, completion)
    order = 0.0
    if len(events) >= 2:
        starts = [_minutes(s) for _, s, _ in events]
        order = 20.0 if all(a < b for a, b in pairwise(starts)) else 0.0
    given_events = {(e.name, e.start, e.end) for e in problem.events}
    scheduled = {e for e in events if e in given_events}
    score = 0.0
    if len(scheduled) >= len(events) and len(scheduled) >= 2:
        overlapping = set()
        for a in scheduled:
            for b in scheduled:
                if a != b and _minutes(a[1]) <= _minutes(b[2]) and _minutes(a[2]) >= _minutes(b[1]):
                    overlapping.update((a, b))
        total = 0
        for name, start, end in scheduled - overlapping:
            weight = 2 if name in problem.priorities else 1
            total += weight * (_minutes(end) - _minutes(start))
        score = 70.0 * total / (optimum(problem) if optimal_score is None else optimal_score)
    return fmt, order, score
