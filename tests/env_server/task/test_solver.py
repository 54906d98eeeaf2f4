"""The exact solver against brute force on thousands of random small problems."""

from __future__ import annotations

from itertools import combinations, pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.scoring.checks import in_overlap, overlapping_pairs
from env_server.task.problems import gold_completion, solve
from env_server.task.solver import Interval, solve_intervals
from shared_schema import ProblemSpec

spans = st.lists(
    st.tuples(st.integers(0, 120), st.integers(1, 60)).map(lambda t: (t[0], t[0] + t[1])),
    min_size=0,
    max_size=9,
)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def brute_force(items: list[tuple[int, int, int]]) -> int:
    best = 0
    for r in range(len(items) + 1):
        for combo in combinations(items, r):
            if all(not overlaps(a[:2], b[:2]) for a, b in combinations(combo, 2)):
                best = max(best, sum(c[2] for c in combo))
    return best


@settings(max_examples=3000, deadline=None)
@given(spans, st.lists(st.booleans(), min_size=9, max_size=9))
def test_solver_matches_brute_force(sp: list[tuple[int, int]], prio: list[bool]) -> None:
    items = [(s, e, (2 if p else 1) * (e - s)) for (s, e), p in zip(sp, prio, strict=False)]
    value, keys = solve_intervals([Interval(i, s, e, v) for i, (s, e, v) in enumerate(items)])
    assert value == brute_force(items)
    chosen = [items[k] for k in keys]
    assert sum(c[2] for c in chosen) == value
    assert all(a[0] < b[0] for a, b in pairwise(chosen)), "schedule is chronological"
    assert all(not overlaps(a[:2], b[:2]) for a, b in combinations(chosen, 2))
    assert len(set(keys)) == len(keys)


@settings(max_examples=2000, deadline=None)
@given(spans, st.booleans())
def test_overlap_sweep_matches_pairwise(sp: list[tuple[int, int]], inclusive: bool) -> None:
    def hit(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] <= b[1] and b[0] <= a[1] if inclusive else overlaps(a, b)

    expected = [any(hit(a, b) for j, b in enumerate(sp) if j != i) for i, a in enumerate(sp)]
    assert in_overlap(sp, inclusive=inclusive) == expected
    if not inclusive:
        pairs = [(i, j) for i, j in combinations(range(len(sp)), 2) if overlaps(sp[i], sp[j])]
        assert overlapping_pairs(sp, limit=10_000) == pairs


def test_touching_events_are_compatible_and_solution_is_a_schedule() -> None:
    spec = ProblemSpec(
        events=[
            {"name": "Late", "start": "10:00", "end": "11:00"},
            {"name": "Early", "start": "09:00", "end": "10:00"},
            {"name": "Long", "start": "09:00", "end": "11:00"},
        ],
        priorities=["Late"],
    )
    value, schedule = solve(spec)
    assert value == 60 + 120 and [e.name for e in schedule] == ["Early", "Late"]
    assert gold_completion(spec).endswith("</schedule>")


def test_solver_is_n_log_n_friendly_on_large_input() -> None:
    intervals = [
        Interval(i, (i * 37) % 20_000, (i * 37) % 20_000 + 15 + i % 90, 1 + i % 7) for i in range(50_000)
    ]
    value, keys = solve_intervals(intervals)
    assert value > 0 and keys
