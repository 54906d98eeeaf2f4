"""bench/sampling_probe.py's figures and rule (the script chose GRPO's temperature: docs/learning.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

SPEC = importlib.util.spec_from_file_location(
    "sampling_probe", Path(__file__).parents[1] / "bench" / "sampling_probe.py"
)
assert SPEC is not None and SPEC.loader is not None
probe = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(probe)


def row(pid: str, verdict: str, reward: float, ratio: float = 0.0, finish: str = "stop") -> SimpleNamespace:
    return SimpleNamespace(
        problem_id=pid, verdict=verdict, reward=reward, score_ratio=ratio, finish_reason=finish
    )


def test_group_figures_counts_signal_groups() -> None:
    rows = [
        # a: a valid answer and a spread: a signal group
        row("a", "valid", 90.0, 0.8), row("a", "overlap", 30.0), row("a", "format_error", 0.0, finish="length"),
        row("a", "valid", 90.0, 0.8),
        # b: every answer valid and equal: a valid answer, but no spread
        row("b", "valid", 100.0, 1.0), row("b", "valid", 100.0, 1.0), row("b", "valid", 100.0, 1.0),
        row("b", "valid", 100.0, 1.0),
        # c: a spread without a valid answer
        row("c", "overlap", 40.0), row("c", "unsorted", 10.0), row("c", "format_error", 0.0),
        row("c", "format_error", 0.0),
    ]  # fmt: skip
    figures = probe.group_figures(rows, [100] * 12, group=4)
    assert figures["valid"] == pytest.approx(6 / 12)
    assert figures["groups_with_valid"] == pytest.approx(2 / 3)
    assert figures["signal_groups"] == pytest.approx(1 / 3)
    assert figures["clipped"] == pytest.approx(1 / 12)
    assert figures["score_ratio"] == pytest.approx((0.8 * 2 + 4.0) / 12)
    assert figures["group_std"] == pytest.approx((1518.75**0.5 + 0.0 + 268.75**0.5) / 3)


def test_group_figures_rejects_a_short_group() -> None:
    with pytest.raises(RuntimeError, match="4 completions per problem"):
        probe.group_figures([row("a", "valid", 1.0)] * 3, [1] * 3, group=4)


def test_rule_takes_the_most_signal_groups_and_breaks_ties_upwards() -> None:
    table = {
        0.5: {"signal_groups": 21 / 64},
        0.7: {"signal_groups": 23 / 64},
        0.85: {"signal_groups": 18 / 64},
        1.0: {"signal_groups": 11 / 64},
    }
    assert probe.choose(table, 64, tie_groups=3) == 0.7  # the probe of 7 December 2026
    assert probe.choose(table, 64, tie_groups=5) == 0.85  # 18 is within 5 of 23: the higher wins
    assert probe.choose(table, 64, tie_groups=0) == 0.7
    assert probe.choose({0.5: {"signal_groups": 0.4}, 1.0: {"signal_groups": 0.1}}, 64, 3) == 0.5
