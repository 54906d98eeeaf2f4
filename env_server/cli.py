"""`sched-env`: serve the environment, generate splits, solve problems and rescore completions offline."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from env_server.runtime.serving import uvicorn_options
from env_server.scoring.index import index_problem
from env_server.scoring.profiles import DEFAULT_PROFILE, PROFILES, get_profile, score_completion
from env_server.service.settings import Settings
from env_server.task.files import row_to_problem, save_problems, save_sft
from env_server.task.generator import PRESETS, generate_split
from env_server.task.problems import solve
from shared_schema import PROMPT_STYLES, Problem, ProblemSpec, PromptStyle
from shared_schema.answer import format_schedule
from shared_schema.models import TRACE_STYLES, TraceStyle

app = typer.Typer(help="Scheduling reward environment: service and offline tools.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [env SCHED_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env SCHED_PORT]")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [env SCHED_WORKERS]")] = None,
) -> None:
    """Run the HTTP service with uvicorn. Every other setting comes from SCHED_* variables."""
    import uvicorn

    for key, value in (("SCHED_HOST", host), ("SCHED_PORT", port), ("SCHED_WORKERS", workers)):
        if value is not None:
            os.environ[key] = str(value)  # workers re-read Settings from the environment
    s = Settings()
    if s.workers > 1:
        if s.episode_db is None:
            _episode_db()
        _multiprocess_metrics_dir()
        if s.balance_connections:
            _connection_table(s.workers)
    from env_server.scoring.native import describe

    console.print(
        f"serving on http://{s.host}:{s.port} with {s.workers} worker(s); playground at /playground, "
        f"API docs at /docs, metrics at /metrics; scoring core {describe()}"
    )
    uvicorn.run(
        "env_server.service.app:app_factory",
        factory=True,
        host=s.host,
        port=s.port,
        workers=s.workers,
        **uvicorn_options(s),
    )


def _multiprocess_metrics_dir() -> None:
    """Several workers: prometheus_client's multiprocess mode, so `/metrics` sums every worker.

    The library reads `PROMETHEUS_MULTIPROC_DIR` when it is imported, so it is set here, before uvicorn
    starts the workers. A directory the operator gave is emptied (stale files from an earlier run would
    be summed too); otherwise a fresh temporary one is made.
    """
    import shutil
    import tempfile

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        if path.is_dir():
            for child in path.glob("*.db"):
                child.unlink()
        path.mkdir(parents=True, exist_ok=True)
        return
    path = Path(tempfile.mkdtemp(prefix="sched-env-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    import atexit

    atexit.register(shutil.rmtree, path, ignore_errors=True)


def _episode_db() -> None:
    """The tool episodes' SQLite file, fresh, in the temporary directory, named for the workers by
    `SCHED_EPISODE_DB` so that they share it (env_server/service/episodes.py); removed at exit."""
    import atexit

    from env_server.service.episodes import default_episode_db

    path = default_episode_db()
    os.environ["SCHED_EPISODE_DB"] = str(path)

    def remove() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    atexit.register(remove)


def _connection_table(workers: int) -> None:
    """Several workers, balanced: the table of open connections they share
    (`env_server.runtime.balance`), in a fresh temporary file that its variable names for the workers.
    Twice as many slots as workers, so a worker restarted while its predecessor's slot still looks taken
    finds a free one. Where no temporary file can be made, the workers accept as uvicorn does (said on
    stderr)."""
    import atexit
    import tempfile

    from env_server.runtime.balance import TABLE_ENV, ConnectionTable

    try:
        fd, path = tempfile.mkstemp(prefix="sched-env-connections-")
        os.close(fd)
        ConnectionTable.create(path, slots=2 * workers).close()
    except OSError as e:
        console.print(f"connection balancing off: no table of connections ({e})")
        return
    os.environ[TABLE_ENV] = path
    atexit.register(Path(path).unlink, missing_ok=True)


def _generate(split: str, size: int, seed: int, difficulty: str) -> list[Problem]:
    if difficulty not in PRESETS:
        raise typer.BadParameter(f"unknown preset {difficulty!r}; choose from {sorted(PRESETS)}")
    return generate_split(
        seed, split, size, PRESETS[difficulty], None if difficulty == "default" else difficulty
    )


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="Output file: .jsonl or .parquet")],
    split: Annotated[str, typer.Option(help="train or test")] = "train",
    size: Annotated[int, typer.Option(help="Number of problems")] = 500,
    seed: Annotated[int, typer.Option(help="Generator seed")] = 0,
    difficulty: Annotated[str, typer.Option(help=f"Preset: {', '.join(PRESETS)}")] = "default",
) -> None:
    """Write a generated split in the published column layout."""
    problems = _generate(split, size, seed, difficulty)
    save_problems(problems, out)
    console.print(f"wrote {len(problems)} {split} problems to {out}")


@app.command("sft-data")
def sft_data(
    out: Annotated[Path, typer.Argument(help="Output file: .jsonl or .parquet")],
    split: Annotated[str, typer.Option(help="train or test")] = "train",
    size: Annotated[int, typer.Option(help="Number of problems")] = 500,
    seed: Annotated[int, typer.Option(help="Generator seed")] = 0,
    difficulty: Annotated[str, typer.Option(help=f"Preset: {', '.join(PRESETS)}")] = "default",
    prompt_style: Annotated[
        str, typer.Option("--prompt-style", help=f"Prompt style: {', '.join(PROMPT_STYLES)}")
    ] = "default",
    trace_style: Annotated[
        str, typer.Option("--trace-style", help=f"Trace style: {', '.join(TRACE_STYLES)}")
    ] = "sorted",
) -> None:
    """Write traced optimal answers for cold-start SFT (TRL conversational `prompt` + `completion`)."""
    if prompt_style not in PROMPT_STYLES:
        raise typer.BadParameter(f"unknown prompt style {prompt_style!r}; choose from {PROMPT_STYLES}")
    if trace_style not in TRACE_STYLES:
        raise typer.BadParameter(f"unknown trace style {trace_style!r}; choose from {TRACE_STYLES}")
    style = cast(PromptStyle, prompt_style)
    problems = _generate(split, size, seed, difficulty)
    save_sft(problems, out, style, cast(TraceStyle, trace_style))
    console.print(f"wrote {len(problems)} traced {split} answers ({prompt_style} prompts) to {out}")


@app.command("solve")
def solve_cmd(
    problem: Annotated[Path, typer.Argument(help="JSON file with {events, priorities}, or - for stdin")],
) -> None:
    """Print the optimal score and schedule of one problem."""
    raw = sys.stdin.read() if str(problem) == "-" else problem.read_text()
    spec = ProblemSpec.model_validate_json(raw)
    value, schedule = solve(spec)
    typer.echo(json.dumps({"optimal_score": value, "schedule": [e.model_dump() for e in schedule]}, indent=2))
    console.print(format_schedule(schedule))


@app.command()
def score(
    rows: Annotated[
        Path,
        typer.Argument(
            help="JSONL: each row a problem (published layout or "
            "{events, priorities}) plus a `completion` field"
        ),
    ],
    out: Annotated[Path | None, typer.Option(help="Write one result per row as JSONL here")] = None,
    profile: Annotated[str, typer.Option(help=f"Reward profile: {', '.join(PROFILES)}")] = DEFAULT_PROFILE,
) -> None:
    """Rescore stored completions offline, through the same core as /v1/score, with a summary table."""
    prof = get_profile(profile)
    raw_rows = [json.loads(line) for line in rows.read_text().splitlines() if line.strip()]
    problems = [row_to_problem(r.get("problem", r), f"row-{i:06d}")[0] for i, r in enumerate(raw_rows)]
    max_chars = Settings().max_completion_chars
    results = [
        score_completion(str(r.get("completion", "")), index_problem(p, p.optimal_score), prof, max_chars)
        for p, r in track(list(zip(problems, raw_rows, strict=True)), description="scoring", console=console)
    ]
    if out is not None:
        with out.open("w") as f:
            for p, r in zip(problems, results, strict=True):
                f.write(json.dumps({"id": p.id, **r.model_dump(mode="json")}) + "\n")
    verdicts = Counter(r.verdict.value if r.verdict else "error" for r in results)
    n = len(results) or 1
    table = Table(title=f"{len(results)} completions, profile {prof.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for v, c in sorted(verdicts.items()):
        table.add_row(f"verdict {v}", f"{c} ({100 * c / n:.1f}%)")
    table.add_row("mean score_ratio", f"{sum(r.score_ratio or 0 for r in results) / n:.4f}")
    table.add_row("mean reward", f"{sum(r.reward or 0 for r in results) / n:.2f}")
    for comp in prof.components:
        table.add_row(f"mean {comp.name}", f"{sum(r.components.get(comp.name, 0) for r in results) / n:.2f}")
    Console().print(table)


if __name__ == "__main__":
    app()
