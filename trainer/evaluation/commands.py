"""`sched-train eval | compare | rescore`: the evaluation commands, registered on the trainer's CLI.

    sched-env serve --port 8000 &
    sched-train eval --backend solver --split test --output_dir outputs/eval/solver
    sched-train eval --backend hf --model outputs/grpo-7b --limit 100 --output_dir outputs/eval/grpo
    sched-train eval --backend openai --base_url http://localhost:8001/v1 \\
        --model Qwen/Qwen2.5-Coder-7B-Instruct --limit 100 --output_dir outputs/eval/qwen7b
    sched-train compare outputs/eval/qwen7b outputs/eval/grpo --output_dir outputs/eval/compare
    sched-train rescore outputs/eval/grpo --profile original --output_dir outputs/eval/grpo-original
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared_schema import ScheduledEvent
from trainer.client.env_card import trained_prompt_style
from trainer.client.env_client import EnvClient, EnvRequestError, EnvUnavailableError
from trainer.evaluation.backends import BACKENDS, REFERENCE_BACKENDS, make_backend, make_reference
from trainer.evaluation.dataset import EvalProblem, from_dataset, from_split
from trainer.evaluation.generation import BackendUnavailableError, SamplingConfig
from trainer.evaluation.records import RunSummary
from trainer.evaluation.report import write_report
from trainer.evaluation.runner import (
    Run,
    load_completions,
    load_rows,
    load_summary,
    rescore,
    run_eval,
    write_run,
)
from trainer.evaluation.stats import PairedDifference, compare_rows
from trainer.evaluation.timeline import (
    TimelineLink,
    optima_from_service,
    optima_from_solver,
    sample,
    write_samples,
    write_side_by_side,
)

console = Console(stderr=True)
EnvUrl = Annotated[str, typer.Option("--env_url", "--env-url", help="URL of the environment service.")]
Profile = Annotated[str, typer.Option("--profile", help="Reward profile (see `/v1/info`).")]


@contextmanager
def _bars(*tasks: tuple[str, int]) -> Iterator[list[Callable[[int], None]]]:
    """One rich progress display with a bar per (description, total); yields their advance callbacks."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        ids = [progress.add_task(description, total=total) for description, total in tasks]
        yield [partial(progress.advance, task_id) for task_id in ids]


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _connect(env_url: str, profile: str | None) -> EnvClient:
    client = EnvClient.from_url(env_url)
    try:
        client.wait_until_healthy(timeout=30)
        known = [p.name for p in client.info().profiles]
    except EnvUnavailableError as e:
        raise _fail(str(e)) from None
    if profile is not None and profile not in known:
        raise _fail(f"unknown profile {profile!r}; the service offers {', '.join(known)}")
    return client


def _print(summaries: list[RunSummary], report: Path) -> None:
    table = Table(title=f"{summaries[0].n} problems, profile {summaries[0].profile}")
    table.add_column("model", no_wrap=True)
    for col in ("valid %", "mean score ratio", "exact optimal %", "mean reward"):
        table.add_column(col, justify="right")
    for s in summaries:
        name = f"{s.label} (ref)" if s.reference else s.label
        row = [
            f"{s.valid_pct:.1f}",
            f"{s.mean_score_ratio:.3f}",
            f"{s.exact_optimal_pct:.1f}",
            f"{s.mean_reward:.1f}",
        ]
        table.add_row(name, *row)
    Console().print(table)
    console.print(f"report: {report}")


def _draw_samples(client: EnvClient, run: Run, out: Path, per_verdict: int) -> list[TimelineLink]:
    """Timelines of `per_verdict` answers per verdict, with optima from the service's solver."""
    if per_verdict <= 0:
        return []
    shown = [r for rows in sample(run.rows, per_verdict).values() for r in rows]
    try:
        optima = optima_from_service(client, shown)
    except (EnvRequestError, EnvUnavailableError) as e:
        console.print(f"[yellow]warning:[/yellow] timelines drawn without the optimum: {e}")
        optima = {}
    return write_samples(run.summary.label, run.rows, optima, out, per_verdict)


Timelines = Annotated[
    int, typer.Option("--timelines", help="Answers drawn as timelines per verdict (0 = none).")
]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.rstrip("/").split("/")[-1]) or "run"


def eval_cmd(
    backend: Annotated[str, typer.Option("--backend", help=f"One of: {', '.join(BACKENDS)}.")] = "solver",
    model: Annotated[
        str | None, typer.Option("--model", help="Model dir / hub id / served model name.")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Row name in reports.")] = None,
    split: Annotated[str, typer.Option("--split", help="Served split, when no --dataset.")] = "test",
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="JSONL/Parquet, published layout.")
    ] = None,
    difficulty: Annotated[str | None, typer.Option("--difficulty", help="Served preset of --split.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="First N problems only.")] = None,
    prompt_style: Annotated[
        str | None,
        typer.Option(
            "--prompt_style",
            help="Prompt style (default, compact, guided); default: the one --model was trained with "
            "(its sched_env.json), else default.",
        ),
    ] = None,
    profile: Profile = "default",
    max_new_tokens: Annotated[int, typer.Option("--max_new_tokens", help="Token limit per answer.")] = 1024,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top_p")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    batch_size: Annotated[int, typer.Option("--batch_size", help="hf: prompts per generate call.")] = 8,
    device: Annotated[str | None, typer.Option("--device", help="hf: cuda, cpu, …; default auto.")] = None,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="hf, vllm: float32, bfloat16, or auto (hf: bfloat16 on a GPU or a CPU with native bf16, "
            "else float32; vllm: its own choice).",
        ),
    ] = "auto",
    base_url: Annotated[
        str | None, typer.Option("--base_url", help="openai: e.g. http://host:8001/v1")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api_key", envvar="OPENAI_API_KEY", help="openai: bearer token.")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="openai: requests in flight.")] = 8,
    timeout: Annotated[float, typer.Option("--timeout", help="openai: seconds per request.")] = 300.0,
    max_retries: Annotated[int, typer.Option("--max_retries", help="openai: attempts per request.")] = 4,
    tensor_parallel_size: Annotated[int, typer.Option("--tensor_parallel_size", help="vllm: GPUs.")] = 1,
    enforce_eager: Annotated[
        bool, typer.Option("--enforce_eager", help="vllm: no compilation (starts faster, decodes slower).")
    ] = False,
    references: Annotated[
        bool, typer.Option("--references/--no-references", help="Also run solver and baselines.")
    ] = True,
    env_url: EnvUrl = "http://localhost:8000",
    output_dir: Annotated[
        Path | None, typer.Option("--output_dir", help="Default outputs/eval/LABEL.")
    ] = None,
    timelines: Timelines = 2,
) -> None:
    """Evaluate a model (hf, vllm, openai) or a reference policy on a split or dataset file."""
    label = label or (_slug(model) if model and backend not in REFERENCE_BACKENDS else backend)
    out = output_dir or Path("outputs/eval") / _slug(label)
    sampling = SamplingConfig(max_new_tokens, temperature, top_p, seed)
    style = prompt_style or trained_prompt_style(model)
    client = _connect(env_url, profile)
    problems: list[EvalProblem]
    try:
        if dataset is not None:
            with console.status("reading the dataset and fetching its prompts from the service"):
                problems, source = from_dataset(client, dataset, limit, style), f"dataset:{dataset}"
        else:
            problems = from_split(client, split, limit, difficulty, style)
            preset, first = f"@{difficulty}" if difficulty else "", f"[:{limit}]" if limit else ""
            source = f"split:{split}{preset}{first}"
    except (FileNotFoundError, ValueError, KeyError, EnvRequestError) as e:
        raise _fail(f"cannot load problems: {e}") from None
    if not problems:
        raise _fail("no problems to evaluate (empty split or file)")
    try:
        runner = make_backend(
            backend,
            client,
            model=model,
            sampling=sampling,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            base_url=base_url,
            api_key=api_key,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            tensor_parallel_size=tensor_parallel_size,
            enforce_eager=enforce_eager,
        )
    except (BackendUnavailableError, ValueError, OSError) as e:  # OSError: a model path or hub id not found
        raise _fail(str(e)) from None
    settings = sampling.as_dict() if backend not in REFERENCE_BACKENDS else {}
    n = len(problems)
    with _bars((f"{label}: generating", n), ("scoring", n)) as (gen, sc):
        run = run_eval(
            client,
            runner,
            problems,
            profile=profile,
            generate_progress=gen,
            score_progress=sc,
            label=label,
            model=model,
            source=source,
            sampling=settings,
            prompt_style=style,
        )
    write_run(run, out)
    summaries = [run.summary]
    names = [r for r in REFERENCE_BACKENDS if r != backend] if references else []
    with _bars(*((f"reference {name}", n) for name in names)) as ticks:
        for name, tick in zip(names, ticks, strict=True):
            ref = run_eval(
                client,
                make_reference(name, client),
                problems,
                profile=profile,
                generate_progress=tick,
                label=name,
                source=source,
                reference=True,
            )
            write_run(ref, out / "references" / name)
            summaries.append(ref.summary)
    drawn = _draw_samples(client, run, out, timelines)
    _print(summaries, write_report(summaries, out, f"Evaluation: {label}", drawn))


def compare_cmd(
    run_dirs: Annotated[list[Path], typer.Argument(help="Output dirs of earlier eval/rescore runs.")],
    output_dir: Annotated[Path, typer.Option("--output_dir", help="Where report.md and charts go.")] = Path(
        "outputs/eval/compare"
    ),
    title: Annotated[str, typer.Option("--title")] = "Model comparison",
    references: Annotated[
        bool, typer.Option("--references/--no-references", help="Include the runs' reference rows.")
    ] = True,
    problems: Annotated[
        int, typer.Option("--problems", help="Problems drawn side by side for every run (0 = none).")
    ] = 3,
    env_url: Annotated[
        str | None,
        typer.Option(
            "--env_url", "--env-url", help="Service for optimal schedules, if no run has a solver reference."
        ),
    ] = None,
    paired_bootstrap_ci: Annotated[
        bool,
        typer.Option(
            "--paired/--no-paired",
            help="Each run against the first: mean reward and score ratio differences on the shared "
            "problems, with a 95 % paired bootstrap interval.",
        ),
    ] = True,
) -> None:
    """Render several runs side by side (table, charts, the same problems drawn for every run), and each
    run's paired difference from the first."""
    try:
        summaries = [load_summary(d) for d in run_dirs]
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    drawn = _draw_compare(run_dirs, summaries, output_dir, problems, env_url)
    if references:
        seen = {s.label for s in summaries}
        for d in run_dirs:
            ref_dirs = (d / "references").glob("*/")
            order = {name: i for i, name in enumerate(REFERENCE_BACKENDS)}  # solver first, as in eval
            for ref_dir in sorted(ref_dirs, key=lambda p: (order.get(p.name, len(order)), p.name)):
                ref = load_summary(ref_dir)
                if ref.label not in seen:
                    seen.add(ref.label)
                    summaries.append(ref)
    sources = {s.source for s in summaries}
    if len(sources) > 1:
        console.print(f"[yellow]warning:[/yellow] runs used different problems: {', '.join(sorted(sources))}")
    paired = paired_against_first(run_dirs, summaries) if paired_bootstrap_ci else []
    _print(summaries, write_report(summaries, output_dir, title, drawn, paired))
    for first, run, diff in paired:
        console.print(f"{run} vs {first}: {diff.text()}")


def paired_against_first(
    run_dirs: list[Path], summaries: list[RunSummary]
) -> list[tuple[str, str, PairedDifference]]:
    """Every run after the first against the first, by reward and score ratio, on the problems both
    answered (a paired bootstrap over problems). Nothing for runs that share no problem with it."""
    first, *rest = [load_rows(d) for d in run_dirs]
    ids = {r.problem_id for r in first}
    return [
        (summaries[0].label, summary.label, d)
        for summary, rows in zip(summaries[1 : len(run_dirs)], rest, strict=True)
        if ids & {r.problem_id for r in rows}
        for d in compare_rows(first, rows).values()
    ]


def _draw_compare(
    run_dirs: list[Path], summaries: list[RunSummary], output_dir: Path, count: int, env_url: str | None
) -> list[TimelineLink]:
    """The same `count` problems drawn once per run; optima from a solver run, else from `env_url`."""
    if count <= 0:
        return []
    try:
        runs = [(s.label, load_rows(d)) for s, d in zip(summaries, run_dirs, strict=True)]
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[yellow]warning:[/yellow] no timelines: {e}")
        return []
    optima: dict[str, list[ScheduledEvent]] = {}
    for d, s in zip(run_dirs, summaries, strict=True):
        solver_dirs = [d] if s.backend == "solver" else [d / "references" / "solver"]
        for sd in solver_dirs:
            if (sd / "results.jsonl").is_file():
                optima.update(optima_from_solver(load_rows(sd)))
    if env_url is not None:
        client = _connect(env_url, None)
        optima.update(
            optima_from_service(
                client, [r for _, rows in runs[:1] for r in rows if r.problem_id not in optima][: count * 4]
            )
        )
    return write_side_by_side(runs, optima, output_dir, count)


def rescore_cmd(
    completions: Annotated[
        Path, typer.Argument(help="A run dir, its results.jsonl, or JSONL of problem + completion.")
    ],
    profile: Profile = "default",
    label: Annotated[str | None, typer.Option("--label", help="Row name in reports.")] = None,
    env_url: EnvUrl = "http://localhost:8000",
    output_dir: Annotated[Path, typer.Option("--output_dir", help="Where the rescored run goes.")] = Path(
        "outputs/eval/rescored"
    ),
    timelines: Timelines = 2,
) -> None:
    """Score stored completions again under another profile or reward version, without generating."""
    try:
        rows = load_completions(completions)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise _fail(f"cannot read completions: {e}") from None
    previous_dir = completions if completions.is_dir() else completions.parent
    previous = load_summary(previous_dir) if (previous_dir / "summary.json").is_file() else None
    name = label or (
        f"{previous.label} [{profile}]" if previous else f"{_slug(str(completions))} [{profile}]"
    )
    client = _connect(env_url, profile)
    with _bars(("rescoring", len(rows))) as (tick,):
        run = rescore(
            client,
            rows,
            profile=profile,
            progress=tick,
            label=name,
            source=f"rescore:{completions}",
            backend=previous.backend if previous else "stored",
            model=previous.model if previous else None,
        )
    write_run(run, output_dir)
    drawn = _draw_samples(client, run, output_dir, timelines)
    _print([run.summary], write_report([run.summary], output_dir, f"Rescored: {name}", drawn))


def register(app: typer.Typer) -> None:
    """Add `eval`, `compare` and `rescore` to the `sched-train` app."""
    app.command("eval")(eval_cmd)
    app.command("compare")(compare_cmd)
    app.command("rescore")(rescore_cmd)
