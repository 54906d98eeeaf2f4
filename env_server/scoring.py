"""Batch scoring: the single path behind `/v1/score`, the `score` CLI and every integration."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from env_server.problems import ProblemIndex, index_problem
from env_server.rewards import Profile, score_completion
from shared_schema import ScoreItem, ScoreResult
from shared_schema.text import clip

Lookup = Callable[[str], ProblemIndex | None]


def score_items(
    items: Sequence[ScoreItem], profile: Profile, lookup: Lookup, max_chars: int | None = None
) -> list[ScoreResult]:
    """One result per item, in order. An item that cannot be scored gets `error` and a null reward;
    the rest of the batch is still scored."""
    results = []
    for item in items:
        if item.problem is not None:
            index: ProblemIndex | None = index_problem(item.problem)
        else:
            index = lookup(item.problem_id or "")
        if index is None:
            results.append(ScoreResult(reward=None, error=f"unknown problem_id {clip(item.problem_id)}"))
            continue
        results.append(score_completion(item.completion, index, profile, max_chars))
    return results
