"""What a run writes: one `ResultRow` per problem (`results.jsonl`) and a `RunSummary` (`summary.json`).

The summary follows docs/contract.md section 3: the count of each verdict, valid %, the mean
`score_ratio` over all rows (invalid rows count 0: the published headline number), exact-optimal %, plus
the mean reward and the mean of each reward component. Rows that could not be generated or scored stay in `n`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared_schema import ReadEvent, Verdict, Violation

VERDICTS = [v.value for v in Verdict]
FAILURES = [v for v in VERDICTS if v != Verdict.valid.value]
ERROR = "error"  # pseudo-verdict of a row the service could not score
EXACT_EPS = 1e-9


class ResultRow(BaseModel):
    """One problem's completion and the service's judgement of it."""

    model_config = ConfigDict(extra="allow")

    problem_id: str = Field(description="Problem id (served id, or the file's id / row number).")
    problem: dict[str, Any] = Field(description="The problem inline: {events, priorities}.")
    completion: str = Field(description="The completion as generated.")
    verdict: str | None = Field(
        default=None, description="Verdict (docs/contract.md section 3); null if not scored."
    )
    score_ratio: float = Field(default=0.0, description="Σ weight × duration / optimum when valid, else 0.")
    reward: float | None = Field(default=None, description="Total reward under the run's profile.")
    components: dict[str, float] = Field(default_factory=dict, description="Reward component → points.")
    violations: list[Violation] = Field(default_factory=list, description="Every rule the answer breaks.")
    events: list[ReadEvent] | None = Field(
        default=None,
        description="The events the service read from the completion (what `violations[].indices` point "
        "at); null in rows scored before this field, or not scored.",
    )
    optimal_score: int | None = Field(default=None, description="Optimum the service computed.")
    expected_optimal_score: int | None = Field(default=None, description="Optimum stated by the input file.")
    finish_reason: str | None = Field(default=None, description="`stop`, or `length` when truncated.")
    generation_error: str | None = Field(default=None, description="Why generation failed, if it did.")
    error: str | None = Field(default=None, description="Why the service could not score this row.")


class Mismatch(BaseModel):
    problem_id: str = Field(description="Problem whose stated optimum is wrong.")
    stored: int = Field(description="optimal_score stated by the input.")
    computed: int = Field(description="optimal_score the service's solver computed.")


class RunSummary(BaseModel):
    """The numbers of one run (`summary.json`); `compare` renders several side by side."""

    model_config = ConfigDict(extra="allow")

    label: str = Field(description="Row name in reports.")
    backend: str = Field(description="Backend kind (hf, vllm, openai, solver, baseline name).")
    model: str | None = Field(default=None, description="Model path, hub id or served name.")
    reference: bool = Field(default=False, description="A reference policy, not a model under test.")
    source: str = Field(default="", description="`split:test`, `dataset:FILE` or `rescore:FILE`.")
    profile: str = Field(default="default", description="Reward profile.")
    prompt_style: str = Field(default="default", description="Prompt style the model was asked with.")
    reward_version: str = Field(default="", description="Service reward version that scored the run.")
    n: int = Field(description="Rows.")
    verdicts: dict[str, int] = Field(description="Verdict → count (every verdict listed, `error` if any).")
    valid_pct: float = Field(description="Valid rows, percent of n.")
    mean_score_ratio: float = Field(description="Mean score_ratio over all rows (invalid = 0).")
    exact_optimal_pct: float = Field(description="Rows with score_ratio 1.0, percent of n.")
    mean_reward: float = Field(description="Mean total reward.")
    mean_components: dict[str, float] = Field(description="Component → mean points.")
    truncated: int = Field(default=0, description="Completions cut by the token limit.")
    generation_errors: int = Field(default=0, description="Rows whose generation failed.")
    optimal_mismatches: list[Mismatch] = Field(default_factory=list, description="Wrong stated optima.")
    examples: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Failure verdict → first problem id and violation message."
    )
    sampling: dict[str, Any] = Field(default_factory=dict, description="Generation settings.")
    elapsed_s: float = Field(default=0.0, description="Wall time of the run.")
    created_at: str = Field(default="", description="UTC time the run finished.")


def _pct(k: int, n: int) -> float:
    return round(100.0 * k / n, 2) if n else 0.0


def summarize(rows: list[ResultRow], **meta: Any) -> RunSummary:
    """Aggregate rows into a summary; `meta` fills label, backend, source, profile and the rest."""
    n = len(rows)
    counts = Counter(r.verdict or ERROR for r in rows)
    verdicts = {v: counts.get(v, 0) for v in VERDICTS}
    if counts.get(ERROR):
        verdicts[ERROR] = counts[ERROR]
    names = list(dict.fromkeys(c for r in rows for c in r.components))
    examples: dict[str, dict[str, str]] = {}
    for r in rows:
        key = r.verdict or ERROR
        if key != Verdict.valid.value and key not in examples:
            message = r.violations[0].message if r.violations else (r.error or r.generation_error or "")
            examples[key] = {"problem_id": r.problem_id, "message": message}
    mismatches = [
        Mismatch(problem_id=r.problem_id, stored=r.expected_optimal_score, computed=r.optimal_score)
        for r in rows
        if r.expected_optimal_score is not None
        and r.optimal_score is not None
        and r.expected_optimal_score != r.optimal_score
    ]
    exact = sum(1 for r in rows if r.verdict == Verdict.valid.value and r.score_ratio >= 1.0 - EXACT_EPS)
    return RunSummary(
        n=n,
        verdicts=verdicts,
        valid_pct=_pct(verdicts[Verdict.valid.value], n),
        mean_score_ratio=round(sum(r.score_ratio for r in rows) / n, 4) if n else 0.0,
        exact_optimal_pct=_pct(exact, n),
        mean_reward=round(sum(r.reward or 0.0 for r in rows) / n, 3) if n else 0.0,
        mean_components={c: round(sum(r.components.get(c, 0.0) for r in rows) / n, 3) for c in names},
        truncated=sum(1 for r in rows if r.finish_reason == "length"),
        generation_errors=sum(1 for r in rows if r.generation_error),
        optimal_mismatches=mismatches,
        examples=examples,
        **meta,
    )
