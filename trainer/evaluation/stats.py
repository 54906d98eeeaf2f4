"""Paired comparisons of two runs on the same problems: the mean difference and its bootstrap interval.

Two checkpoints evaluated on the same problems give paired observations: per problem, the score of
one minus the score of the other. Resampling *problems* with replacement (a paired bootstrap) gives a
confidence interval for the mean difference that accounts for how much problems differ in difficulty,
which an unpaired comparison of two means would count as noise. Percentile interval, fixed seed, so a
report is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PairedDifference:
    """`mean(after - before)` over the shared problems, with a percentile bootstrap interval."""

    metric: str
    n: int
    before: float
    after: float
    mean_diff: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    p_not_better: float  # share of resamples whose mean difference is <= 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown_row(self, label: str) -> str:
        """`| label | metric | before | after | difference | CI | P(≤ 0) | n |`, a row of `TABLE_HEAD`."""
        return (
            f"| {label} | {self.metric} | {self.before:.3f} | {self.after:.3f} | {self.mean_diff:+.3f} | "
            f"{self.ci_low:+.3f} to {self.ci_high:+.3f} | {self.p_not_better:.4f} | {self.n} |"
        )

    def text(self) -> str:
        level = round(100 * self.confidence)
        return (
            f"{self.metric}: {self.before:.3f} → {self.after:.3f}, difference {self.mean_diff:+.3f} "
            f"({level}% CI {self.ci_low:+.3f} to {self.ci_high:+.3f}, n = {self.n})"
        )


def paired_bootstrap(
    before: Mapping[str, float],
    after: Mapping[str, float],
    metric: str,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Compare two runs problem by problem (keys: problem ids; only ids in both count)."""
    ids = sorted(set(before) & set(after))
    if not ids:
        raise ValueError("the two runs share no problem")
    diffs = [after[i] - before[i] for i in ids]
    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    lo = means[int(tail * resamples)]
    hi = means[min(resamples - 1, int((1.0 - tail) * resamples))]
    return PairedDifference(
        metric=metric,
        n=n,
        before=sum(before[i] for i in ids) / n,
        after=sum(after[i] for i in ids) / n,
        mean_diff=sum(diffs) / n,
        ci_low=lo,
        ci_high=hi,
        confidence=confidence,
        resamples=resamples,
        p_not_better=sum(1 for m in means if m <= 0) / resamples,
    )


TABLE_HEAD = (
    "| comparison | metric | before | after | difference | 95% CI | P(≤ 0) | problems |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
)


def compare_rows(before: Sequence[Any], after: Sequence[Any]) -> dict[str, PairedDifference]:
    """Reward and score ratio of two runs' result rows, problem by problem (`paired_bootstrap`)."""
    return {
        field: paired_bootstrap(per_problem(before, field), per_problem(after, field), field)
        for field in ("reward", "score_ratio")
    }


def per_problem(rows: Sequence[Any], field: str) -> dict[str, float]:
    """`problem_id → value` of a run's result rows (`reward` or `score_ratio`; a missing value is 0)."""
    return {r.problem_id: float(getattr(r, field) or 0.0) for r in rows}
