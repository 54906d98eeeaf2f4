"""The problems an evaluation runs on: a served split, a dataset file, or stored completions.

Dataset files use the published column layout (`events` as `[name, start, end]` lists, `priority_events`,
optionally `id`, `optimal_score`, `prompt`), as JSONL or Parquet. Their prompts come from the service
(`/v1/prompt`), so every model sees exactly the prompt the trainer uses; a stored `optimal_score` is only
an *expectation*, checked against the optimum the service recomputes when it scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_schema import ChatMessage, Event, ProblemSpec
from trainer.client.env_client import EnvClient


@dataclass(frozen=True)
class EvalProblem:
    """One problem to answer: its spec, the prompt to send and how the service should score it."""

    id: str
    spec: ProblemSpec
    prompt: list[ChatMessage]
    expected_optimal: int | None = None
    served: bool = False  # True: score by `problem_id`; False: send the problem inline

    def messages(self) -> list[dict[str, str]]:
        """The prompt as plain chat messages, the shape every chat API and chat template takes."""
        return [{"role": m.role, "content": m.content} for m in self.prompt]


def from_split(
    client: EnvClient,
    split: str,
    limit: int | None = None,
    difficulty: str | None = None,
    prompt_style: str = "default",
    offset: int = 0,
) -> list[EvalProblem]:
    """`limit` problems of a served split from `offset` on, with the prompts the service serves."""
    return [
        EvalProblem(
            id=p.id,
            spec=ProblemSpec(events=p.events, priorities=p.priorities),
            prompt=p.prompt,
            expected_optimal=p.optimal_score,
            served=difficulty is None,
        )
        for p in client.all_problems(
            split, limit=limit, difficulty=difficulty, prompt_style=prompt_style, offset=offset
        )
    ]


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL (`.jsonl`, `.json`) or Parquet (`.parquet`, `.pq`) file, as dicts."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file not found: {path}")
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        return list(pq.read_table(path).to_pylist())
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _event(raw: Any) -> Event:
    if isinstance(raw, dict):
        return Event(name=str(raw["name"]).strip(), start=str(raw["start"]), end=str(raw["end"]))
    name, start, end = raw
    return Event(name=str(name).strip(), start=str(start), end=str(end))


def spec_from_row(row: dict[str, Any]) -> ProblemSpec:
    """A problem from a row: published layout (`events` lists, `priority_events`) or `{events, priorities}`.

    A nested `problem` object (as `results.jsonl` stores it) takes precedence over top-level columns.
    """
    src = row["problem"] if isinstance(row.get("problem"), dict) else row
    prios = src.get("priority_events", src.get("priorities")) or []
    return ProblemSpec(events=[_event(e) for e in src["events"]], priorities=[str(p).strip() for p in prios])


def spec_to_json(spec: ProblemSpec) -> dict[str, Any]:
    """The inline problem as stored in `results.jsonl` (re-readable by `spec_from_row`)."""
    return spec.model_dump(mode="json")


def from_dataset(
    client: EnvClient,
    path: str | Path,
    limit: int | None = None,
    prompt_style: str = "default",
) -> list[EvalProblem]:
    """Problems from a published-layout file; prompts are the service's, never the file's."""
    rows = read_rows(path)[:limit]
    problems = []
    for i, row in enumerate(rows):
        spec = spec_from_row(row)
        stored = row.get("optimal_score")
        problems.append(
            EvalProblem(
                id=str(row.get("id") or f"row-{i:06d}"),
                spec=spec,
                prompt=client.prompt(spec, prompt_style),
                expected_optimal=None if stored is None else int(stored),
            )
        )
    return problems
