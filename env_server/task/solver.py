"""Exact optimum: weighted interval scheduling in O(n log n).

Sort by end, binary-search the last event that ends no later than each start (touching events are
compatible: docs/contract.md section 1), dynamic programming over prefixes, then walk back to recover
the schedule.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Interval:
    """An event reduced to what the solver needs: minutes and weight × duration value."""

    key: int
    start: int
    end: int
    value: int


def solve_intervals(intervals: Sequence[Interval]) -> tuple[int, list[int]]:
    """Return (optimal value, keys of an optimal schedule in chronological order).

    Ties are broken deterministically (the first optimum found in end order, skipping an event
    when skipping is as good), so the same input always yields the same schedule.
    """
    order = sorted(intervals, key=lambda iv: (iv.end, iv.start, iv.key))
    ends = [iv.end for iv in order]
    n = len(order)
    best = [0] * (n + 1)
    prev = [0] * n
    for i, iv in enumerate(order):
        prev[i] = bisect_right(ends, iv.start, 0, i)  # events order[:prev[i]] end <= iv.start
        take = best[prev[i]] + iv.value
        best[i + 1] = take if take > best[i] else best[i]
    chosen: list[int] = []
    i = n
    while i > 0:
        iv = order[i - 1]
        if best[prev[i - 1]] + iv.value > best[i - 1]:
            chosen.append(iv.key)
            i = prev[i - 1]
        else:
            i -= 1
    chosen.reverse()
    return best[n], chosen
