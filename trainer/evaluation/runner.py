"""A run: generate with a backend, score every completion through the service, summarise, write.

Scoring always goes through `EnvClient.score` (`/v1/score`), in chunks that stay well inside the
service's batch and body limits. Served problems are scored by id; problems from files (and stored
completions being rescored) are sent inline, so the service recomputes their optimum, and any optimum the
input stated is checked against it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared_schema import ScoreItem, ScoreResult
from trainer.client.env_client import EnvClient
from trainer.evaluation.dataset import EvalProblem, read_rows, spec_from_row, spec_to_json
from trainer.evaluation.generation import Backend, Generation, Progress
from trainer.evaluation.records import ResultRow, RunSummary, summarize

MAX_ITEMS_PER_REQUEST = 256
MAX_CHARS_PER_REQUEST = 2_000_000  # far below the service's default 8 MiB body limit


@dataclass
class Run:
    """The rows and summary of one run, as written to its output directory."""

    rows: list[ResultRow]
    summary: RunSummary


def _chunks(items: Sequence[ScoreItem]) -> Iterator[Sequence[ScoreItem]]:
    start, size = 0, 0
    for i, item in enumerate(items):
        size += len(item.completion)
        if i > start and (i - start >= MAX_ITEMS_PER_REQUEST or size > MAX_CHARS_PER_REQUEST):
            yield items[start:i]
            start, size = i, len(item.completion)
    if start < len(items):
        yield items[start:]


def score_all(
    client: EnvClient, items: Sequence[ScoreItem], profile: str, progress: Progress | None = None
) -> tuple[str, list[ScoreResult]]:
    """Score every item in order; returns the service's reward version and one result per item, each with
    the events the service read (`return_events`: what timelines draw)."""
    version, results = "", []
    for chunk in _chunks(items):
        response = client.score(chunk, profile, return_events=True)
        version = response.reward_version
        results.extend(response.results)
        if progress is not None:
            progress(len(chunk))
    return version, results


def judged(row: ResultRow, result: ScoreResult) -> ResultRow:
    """`row` with the service's verdict, reward, components and violations filled in."""
    return row.model_copy(
        update={
            "verdict": result.verdict.value if result.verdict is not None else None,
            "score_ratio": float(result.score_ratio or 0.0),
            "reward": result.reward,
            "components": dict(result.components),
            "violations": list(result.violations),
            "events": None if result.events is None else list(result.events),
            "optimal_score": result.optimal_score,
            "error": result.error,
        }
    )


def _item(row: ResultRow, by_id: bool) -> ScoreItem:
    if by_id or not row.problem:
        return ScoreItem(problem_id=row.problem_id, completion=row.completion)
    return ScoreItem(problem=spec_from_row({"problem": row.problem}), completion=row.completion)


def _finish(
    client: EnvClient,
    rows: list[ResultRow],
    by_id: list[bool],
    profile: str,
    started: float,
    progress: Progress | None,
    meta: dict[str, Any],
) -> Run:
    version, results = score_all(
        client, [_item(r, b) for r, b in zip(rows, by_id, strict=True)], profile, progress
    )
    scored = [judged(r, s) for r, s in zip(rows, results, strict=True)]
    summary = summarize(
        scored,
        profile=profile,
        reward_version=version,
        elapsed_s=round(time.monotonic() - started, 2),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **meta,
    )
    return Run(scored, summary)


def generate(
    backend: Backend, problems: Sequence[EvalProblem], progress: Progress | None = None
) -> list[Generation]:
    """One completion per problem from `backend`, in order; a RuntimeError when it returns another count."""
    generations: list[Generation] = backend.generate(problems, progress)
    if len(generations) != len(problems):
        raise RuntimeError(
            f"backend {backend.kind} returned {len(generations)} completions for {len(problems)}"
        )
    return generations


def run_eval(
    client: EnvClient,
    backend: Backend,
    problems: Sequence[EvalProblem],
    *,
    profile: str = "default",
    generate_progress: Progress | None = None,
    score_progress: Progress | None = None,
    **meta: Any,
) -> Run:
    """Generate one completion per problem, score them all, summarise. `meta` goes into the summary
    (label, model, source, sampling, reference)."""
    started = time.monotonic()
    generations = generate(backend, problems, generate_progress)
    return score_generations(
        client,
        backend,
        problems,
        generations,
        started,
        profile=profile,
        score_progress=score_progress,
        **meta,
    )


def score_generations(
    client: EnvClient,
    backend: Backend,
    problems: Sequence[EvalProblem],
    generations: Sequence[Generation],
    started: float,
    *,
    profile: str = "default",
    score_progress: Progress | None = None,
    **meta: Any,
) -> Run:
    """`run_eval` after its generation: score `backend`'s completions of `problems` (one each, in order),
    summarise; `elapsed_s` counts from `started` (`time.monotonic()`), so a generation shared by several
    runs (`learn` generates every prompt style of a phase in one call) is counted in each."""
    rows = [
        ResultRow(
            problem_id=p.id,
            problem=spec_to_json(p.spec),
            completion=g.text,
            expected_optimal_score=p.expected_optimal,
            finish_reason=g.finish_reason,
            generation_error=g.error,
        )
        for p, g in zip(problems, generations, strict=True)
    ]
    meta.setdefault("backend", backend.kind)
    dtype = getattr(backend, "dtype", None)  # model backends that load weights say in which dtype
    if dtype and "sampling" in meta:
        meta["sampling"] = {**meta["sampling"], "dtype": dtype}
    return _finish(client, rows, [p.served for p in problems], profile, started, score_progress, meta)


def load_completions(path: str | Path) -> list[ResultRow]:
    """Stored completions: a run's `results.jsonl` (or its directory), or any JSONL / Parquet of a
    problem (nested `problem`, published-layout columns, or a served `problem_id`) plus `completion`."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.jsonl"
    rows = []
    for i, raw in enumerate(read_rows(path)):
        if "completion" not in raw:
            raise ValueError(f"{path}: row {i} has no `completion`")
        has_problem = isinstance(raw.get("problem"), dict) or "events" in raw
        if not has_problem and not raw.get("problem_id"):
            raise ValueError(f"{path}: row {i} has neither a problem nor a `problem_id`")
        expected = raw.get("expected_optimal_score", raw.get("optimal_score"))
        rows.append(
            ResultRow(
                problem_id=str(raw.get("problem_id") or raw.get("id") or f"row-{i:06d}"),
                problem=spec_to_json(spec_from_row(raw)) if has_problem else {},
                completion=str(raw["completion"] or ""),
                expected_optimal_score=None if expected is None else int(expected),
                finish_reason=raw.get("finish_reason"),
                generation_error=raw.get("generation_error"),
            )
        )
    return rows


def rescore(
    client: EnvClient, rows: list[ResultRow], *, profile: str, progress: Progress | None = None, **meta: Any
) -> Run:
    """Score stored completions again (under `profile`, by the service's current reward version)
    without generating: inline problems are sent inline, rows with only an id are scored by id."""
    meta.setdefault("label", f"rescored [{profile}]")
    meta.setdefault("backend", "stored")
    return _finish(client, rows, [False] * len(rows), profile, time.monotonic(), progress, meta)


def write_run(run: Run, output_dir: str | Path) -> Path:
    """Write `results.jsonl` and `summary.json` into `output_dir` (created if needed)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.jsonl").open("w", encoding="utf-8") as f:
        for row in run.rows:
            f.write(row.model_dump_json() + "\n")
    (out / "summary.json").write_text(run.summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return out


def load_rows(run_dir: str | Path) -> list[ResultRow]:
    """A run's scored rows, as `write_run` wrote them (`results.jsonl` in the directory)."""
    path = Path(run_dir)
    path = path / "results.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no results.jsonl in {run_dir}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ResultRow.model_validate_json(line) for line in lines if line.strip()]


def load_summary(run_dir: str | Path) -> RunSummary:
    """A run's `summary.json` (the directory or the file itself)."""
    path = Path(run_dir)
    path = path / "summary.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no summary.json in {run_dir}: is it the --output_dir of an eval run?")
    return RunSummary.model_validate(json.loads(path.read_text(encoding="utf-8")))
