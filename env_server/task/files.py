"""Import and export problems in the published dataset's column layout.

Columns: `id`, `events` (list of `[name, start, end]`), `priority_events` (list of names),
`optimal_score` (int) and `prompt` (the chat messages). Files are JSONL (`.jsonl`/`.json`) or Parquet
(`.parquet`), read and written with `datasets`. On import the optimum is always recomputed by the solver;
rows whose stored `optimal_score` disagrees are reported, never trusted. Names and priorities are trimmed
of surrounding white space on import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from env_server.task.problems import with_optimum
from env_server.task.prompts import build_prompt
from env_server.task.traces import traced_completion
from shared_schema import Event, Problem, ProblemSpec, PromptStyle
from shared_schema.models import TraceStyle


@dataclass(frozen=True)
class ScoreMismatch:
    id: str
    stored: int
    computed: int


def problem_to_row(p: Problem) -> dict[str, Any]:
    return {
        "id": p.id,
        "events": [[e.name, e.start, e.end] for e in p.events],
        "priority_events": list(p.priorities),
        "optimal_score": p.optimal_score,
        "prompt": [m.model_dump() for m in build_prompt(p)],
    }


def _event(raw: Any) -> Event:
    if isinstance(raw, dict):
        return Event(name=str(raw["name"]).strip(), start=str(raw["start"]), end=str(raw["end"]))
    name, start, end = raw
    return Event(name=str(name).strip(), start=str(start), end=str(end))


def row_to_problem(row: dict[str, Any], default_id: str) -> tuple[Problem, ScoreMismatch | None]:
    """One published-layout row → a problem with a recomputed optimum, plus a mismatch if any."""
    prios = row.get("priority_events", row.get("priorities")) or []
    spec = ProblemSpec(events=[_event(e) for e in row["events"]], priorities=[str(p).strip() for p in prios])
    problem = with_optimum(spec, str(row.get("id") or default_id))
    stored = row.get("optimal_score")
    if stored is not None and int(stored) != problem.optimal_score:
        return problem, ScoreMismatch(problem.id, int(stored), problem.optimal_score)
    return problem, None


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    import datasets  # heavy import: only when a file is actually read

    datasets.disable_progress_bars()

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file not found: {path}")
    ds = (
        datasets.Dataset.from_parquet(str(path))
        if _is_parquet(path)
        else datasets.Dataset.from_json(str(path))
    )
    return [dict(row) for row in ds]


def load_problems(path: str | Path, split: str) -> tuple[list[Problem], list[ScoreMismatch]]:
    """Read a published-layout file; ids default to `{split}-{row:06d}`."""
    problems, mismatches = [], []
    for i, row in enumerate(read_rows(path)):
        p, mm = row_to_problem(row, f"{split}-{i:06d}")
        problems.append(p)
        if mm is not None:
            mismatches.append(mm)
    return problems, mismatches


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    import datasets

    datasets.disable_progress_bars()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = datasets.Dataset.from_list(list(rows))
    if _is_parquet(path):
        ds.to_parquet(str(path))
    else:
        ds.to_json(str(path), lines=True, force_ascii=False)
    return path


def save_problems(problems: Iterable[Problem], path: str | Path) -> Path:
    """Write problems in the published layout (format from the file suffix)."""
    return write_rows([problem_to_row(p) for p in problems], path)


def sft_row(p: Problem, style: PromptStyle = "default", trace_style: TraceStyle = "sorted") -> dict[str, Any]:
    """One cold-start example in TRL's conversational prompt-completion format: the prompt exactly as
    `/v1/problems?prompt_style=…` serves it, and the traced optimal answer (in `trace_style`) as the
    assistant's turn."""
    return {
        "id": p.id,
        "prompt": [m.model_dump() for m in build_prompt(p, style)],
        "completion": [{"role": "assistant", "content": traced_completion(p, style=trace_style)}],
    }


def save_sft(
    problems: Iterable[Problem],
    path: str | Path,
    style: PromptStyle = "default",
    trace_style: TraceStyle = "sorted",
) -> Path:
    """Write traced answers as an SFT file (format from the suffix), ready for TRL's `SFTTrainer`."""
    return write_rows([sft_row(p, style, trace_style) for p in problems], path)
