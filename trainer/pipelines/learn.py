"""`sched-train learn`: watch a model learn the task. Base eval → SFT → eval → GRPO → eval, one command.

    make learn                                   # SmolLM2-135M on this CPU, service started locally
    sched-train learn --env_url http://127.0.0.1:8000 --output_dir runs/learn

Every phase talks to the environment service over HTTP: prompts from `/v1/problems`, the cold-start
answers from `/v1/solve {"trace": true}`, GRPO rewards and every evaluation score from `/v1/score`.
The three evaluations use the **same** held-out test problems (never trained on: SFT and GRPO draw from
the train split, which shares no problem with the test split) and greedy decoding, so the phases differ
only by their weights. The headline is always the **published prompt** (`default` style), whatever
style the model trains with: a model trained with a scaffold is judged without it, on the prompt the
published figures were measured on; by default the model also trains on it (SFT on `by_hour` traced
answers, docs/sft-style-study.md). When training uses another style (`--prompt_style guided`), each phase
is also evaluated in that style, a secondary row (`--no_secondary_eval` skips it). What it writes to
`--output_dir`:

    learning.json            final_model, phases.{base,sft,grpo} (the headline evaluations: summaries
                             with the keys of summary.json), phases_by_style (every style evaluated),
                             references, paired comparisons, GRPO steps, timings
    report.md, *.png         per-step GRPO rewards, before/after table, verdict mix per phase
    eval-{base,sft,grpo}/    each headline evaluation's results.jsonl and summary.json
    eval-{phase}-{style}/    the secondary evaluations (the training style)
    sft/  grpo/              the adapters (each with its sched_env.json card)

A phase whose output is complete is skipped when the command runs again, and an interrupted GRPO phase
resumes from its last checkpoint, so the command can simply be repeated after an interruption.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainer.client.env_card import CARD
from trainer.client.env_client import EnvClient
from trainer.client.local_service import local_service
from trainer.evaluation.backends import make_reference
from trainer.evaluation.dataset import EvalProblem, from_split
from trainer.evaluation.generation import SamplingConfig
from trainer.evaluation.records import ResultRow, RunSummary
from trainer.evaluation.runner import (
    Run,
    generate,
    load_rows,
    load_summary,
    run_eval,
    score_generations,
    write_run,
)
from trainer.evaluation.stats import compare_rows
from trainer.training.model_prep import resolve_dtype
from trainer.training.progress import QUIET, StepPrinter
from trainer.training.trl_cpu import release_freed_memory
from trainer.training.vllm_cpu import release_engine

CONFIGS = Path(__file__).parents[1] / "configs"
PHASES = ("base", "sft", "grpo")
HEADLINE_STYLE = "default"  # the published prompt: every evaluation's headline
REFERENCES = ("solver", "greedy_weight", "earliest_finish")
console = Console()


@dataclass
class LearnSettings:
    """What `learn` runs; the phase configs hold the training settings (TrlParser YAML files)."""

    output_dir: Path = Path("runs/learn")
    env_url: str | None = None  # None: start a local service for the run
    base_model: str = "smollm2-135m-instruct"
    sft_config: Path = CONFIGS / "smollm2-135m-sft-cpu.yaml"
    grpo_config: Path = CONFIGS / "smollm2-135m-grpo-cpu.yaml"
    prompt_style: str = "default"  # the published prompt, chosen with by_hour in docs/sft-style-study.md
    trace_style: str = "by_hour"  # SFT's traced answers: by_hour (a scan of the hours) or sorted
    eval_split: str = "test"
    eval_size: int = 100
    eval_max_new_tokens: int = 640
    eval_batch_size: int = 50
    dtype: str = "auto"  # weights for every phase; auto: bfloat16 where the CPU computes it natively
    # The evaluations' weights, when not `dtype` (None). float32 makes greedy vLLM answers deterministic on
    # this CPU, at 3.2x an evaluation's time; bfloat16's differ from call to call (docs/learning.md).
    eval_dtype: str | None = None
    sft_args: tuple[str, ...] = ()  # extra flags for the SFT phase, e.g. ("--dataset_size", "32")
    grpo_args: tuple[str, ...] = ()
    profile: str = "default"
    service_train_size: int = 2000  # problems the local service generates (SFT and GRPO draw from these)
    engine: str = "auto"  # what generates in the evaluations and GRPO: auto, hf, vllm (see `choose_engine`)
    eval_enforce_eager: bool = False  # the evaluations' vLLM engines skip compilation (`VLLMBackend`)
    secondary_eval: bool = True  # also evaluate in the training style when it is not the published one
    secondary_eval_phases: tuple[str, ...] = PHASES  # the phases that secondary evaluation covers
    curriculum: bool = False  # GRPO on a curriculum session (docs/contract.md section 7) instead of a split
    curriculum_config: str | None = None  # JSON of CurriculumConfig fields
    # Evaluate base, SFT and GRPO after training, in one transformers generation whose batches mix the
    # three models' rows (`HFAdapterMix`; engine hf only), instead of one generation per phase: each
    # decoding step then reads the base weights once for all three. Not faster on this CPU (docs/learning.md).
    joint_eval: bool = False

    def eval_styles(self, phase: str | None = None) -> tuple[str, ...]:
        """The styles a phase (by default: any phase) is evaluated in: the published prompt first (the
        headline), then the training style where secondary evaluation covers the phase."""
        if self.prompt_style == HEADLINE_STYLE or not self.secondary_eval:
            return (HEADLINE_STYLE,)
        if phase is not None and phase not in self.secondary_eval_phases:
            return (HEADLINE_STYLE,)
        return (HEADLINE_STYLE, self.prompt_style)

    def eval_dir(self, phase: str, style: str) -> Path:
        suffix = "" if style == HEADLINE_STYLE else f"-{style}"
        return self.output_dir / f"eval-{phase}{suffix}"


@contextmanager
def bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar; yields its advance callback."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        yield partial(progress.advance, progress.add_task(description, total=total))


def _found(out: Path, style: str) -> bool:
    """An evaluation already written to `out` in `style` (one in another style is redone)."""
    return (out / "summary.json").is_file() and load_summary(out).prompt_style == style


def problems_source(problems: list[EvalProblem], fallback: str) -> str:
    """Where evaluation problems come from, read from their ids: `split:test[:100]` for `test-000000` to
    `test-000099`, `split:train[1900:2000]` for validation problems; `fallback` for anything else (a file,
    a gap). A study's validation run is then never labelled with `learn`'s test split."""
    parts = [p.id.rpartition("-") for p in problems]
    if not parts or any(not sep or not index.isdigit() for _, sep, index in parts):
        return fallback
    split, first = parts[0][0], int(parts[0][2])
    if any(name != split or int(index) != first + i for i, (name, _, index) in enumerate(parts)):
        return fallback
    return f"split:{split}[{first or ''}:{first + len(parts)}]"


def evaluate(
    client: EnvClient,
    name: str,
    model: str,
    problems: dict[str, list[EvalProblem]],
    s: LearnSettings,
) -> dict[str, tuple[RunSummary, list[ResultRow]]]:
    """Greedy evaluation of `model` on the same problems in each prompt style of `problems`, written to
    `s.eval_dir(name, style)`; one engine and one generation call for all styles (each summary's
    `elapsed_s` includes the whole shared generation); an evaluation already there is reused."""
    results: dict[str, tuple[RunSummary, list[ResultRow]]] = {}
    todo = []
    for style in problems:
        out = s.eval_dir(name, style)
        if _found(out, style):
            console.print(f"[dim]{name} ({style} prompts): evaluation found in {out}, skipped[/dim]")
            results[style] = load_summary(out), load_rows(out)
        else:
            todo.append(style)
    if not todo:
        return results
    sampling = SamplingConfig(max_new_tokens=s.eval_max_new_tokens, temperature=0.0, seed=0)
    backend: Any
    if s.engine == "vllm":
        from trainer.evaluation.vllm_backend import VLLMBackend

        backend = VLLMBackend(
            model, sampling, dtype=s.eval_dtype or s.dtype, enforce_eager=s.eval_enforce_eager
        )
    else:
        from trainer.evaluation.hf_backend import HFBackend

        backend = HFBackend(model, sampling, batch_size=s.eval_batch_size, dtype=s.eval_dtype or s.dtype)
    # Every style's prompts in one generation call, so that a batch can hold both styles (the demo's
    # 8 + 8 prompts are one transformers batch of 16; vLLM schedules them all at once).
    prompts = [p for style in todo for p in problems[style]]
    started = time.monotonic()
    with bar(f"eval {name} ({' + '.join(todo)} prompts): generating", len(prompts)) as tick:
        generations = generate(backend, prompts, tick)
    first = 0
    for style in todo:
        count = len(problems[style])
        run: Run = score_generations(
            client,
            backend,
            problems[style],
            generations[first : first + count],
            started,
            profile=s.profile,
            label=name if style == HEADLINE_STYLE else f"{name} ({style})",
            model=model,
            source=problems_source(problems[style], f"split:{s.eval_split}[:{count}]"),
            sampling=sampling.as_dict(),
            prompt_style=style,
        )
        first += count
        write_run(run, s.eval_dir(name, style))
        results[style] = run.summary, run.rows
    if hasattr(backend, "close"):
        backend.close()
    del backend
    release_freed_memory()
    return {style: results[style] for style in problems}


def evaluate_joint(
    client: EnvClient,
    models: dict[str, tuple[str, list[str]]],
    problems: dict[str, dict[str, list[EvalProblem]]],
    base: str,
    s: LearnSettings,
) -> dict[str, dict[str, tuple[RunSummary, list[ResultRow]]]]:
    """`evaluate` for several phases at once: `models` maps a phase to (what its summary names, the
    adapter stack `HFAdapterMix` builds it from), `problems` a phase to its styles' problems. Every
    prompt of every phase goes through one generation call (each summary's `elapsed_s` is the whole of
    it); evaluations already written are reused. Phase -> style -> (summary, rows)."""
    from trainer.evaluation.hf_backend import HFAdapterMix

    results: dict[str, dict[str, tuple[RunSummary, list[ResultRow]]]] = {name: {} for name in models}
    todo: list[tuple[str, str]] = []
    for name, styles in problems.items():
        for style in styles:
            out = s.eval_dir(name, style)
            if _found(out, style):
                console.print(f"[dim]{name} ({style} prompts): evaluation found in {out}, skipped[/dim]")
                results[name][style] = load_summary(out), load_rows(out)
            else:
                todo.append((name, style))
    if todo:
        sampling = SamplingConfig(max_new_tokens=s.eval_max_new_tokens, temperature=0.0, seed=0)
        stacks = {name: models[name][1] for name in dict.fromkeys(n for n, _ in todo)}
        backend = HFAdapterMix(
            base, stacks, sampling, batch_size=s.eval_batch_size, dtype=s.eval_dtype or s.dtype
        )
        items = [(name, p) for name, style in todo for p in problems[name][style]]
        started = time.monotonic()
        label = ", ".join(f"{n} ({st})" for n, st in todo)
        with bar(f"eval {label}: generating together", len(items)) as tick:
            generations = backend.generate_rows(items, tick)
        first = 0
        for name, style in todo:
            batch = problems[name][style]
            run: Run = score_generations(
                client,
                backend.view(name),
                batch,
                generations[first : first + len(batch)],
                started,
                profile=s.profile,
                label=name if style == HEADLINE_STYLE else f"{name} ({style})",
                model=models[name][0],
                source=problems_source(batch, f"split:{s.eval_split}[:{len(batch)}]"),
                sampling=sampling.as_dict(),
                prompt_style=style,
            )
            first += len(batch)
            write_run(run, s.eval_dir(name, style))
            results[name][style] = run.summary, run.rows
        del backend
        release_freed_memory()
    return {name: {style: results[name][style] for style in problems[name]} for name in problems}


def _done(folder: Path) -> bool:
    return (folder / CARD).is_file()


def sft_phase(url: str, s: LearnSettings) -> Path:
    out = s.output_dir / "sft"
    if _done(out):
        console.print(f"[dim]SFT: adapter found in {out}, skipped[/dim]")
        return out
    from trainer.training.sft import parse, run_sft

    args = ["--config", str(s.sft_config), "--env_url", url, "--output_dir", str(out)]
    args += [
        "--model_name_or_path",
        s.base_model,
        "--prompt_style",
        s.prompt_style,
        "--trace_style",
        s.trace_style,
    ]
    args += ["--dtype", s.dtype, *s.sft_args]
    script, training, model = parse(args)
    printer = StepPrinter("SFT", console=console)
    trainer = run_sft(script, training, model, callbacks=[printer], remove_callbacks=QUIET)
    _write_json(out / "log_history.json", trainer.state.log_history)
    del trainer
    release_freed_memory()
    return out


def grpo_phase(url: str, weights: dict[str, float], s: LearnSettings, start: Path) -> Path:
    out = s.output_dir / "grpo"
    if _done(out):
        console.print(f"[dim]GRPO: adapter found in {out}, skipped[/dim]")
        return out
    from trainer.training.grpo import parse, run

    args = ["--config", str(s.grpo_config), "--env_url", url, "--output_dir", str(out)]
    args += ["--model_name_or_path", str(start), "--prompt_style", s.prompt_style]
    args += ["--profile", s.profile, "--dtype", s.dtype, "--use_vllm", str(s.engine == "vllm").lower()]
    if s.curriculum:
        args += ["--curriculum", "true"]
        if s.curriculum_config:
            args += ["--curriculum_config", s.curriculum_config]
    args += list(s.grpo_args)
    if any(out.glob("checkpoint-*")):
        args += ["--resume_from_checkpoint", "last"]
        console.print(f"GRPO: resuming from the last checkpoint in {out}")
    script, training, model = parse(args)
    printer = StepPrinter("GRPO", list(weights), list(weights.values()), console=console)
    trainer = run(script, training, model, callbacks=[printer], remove_callbacks=QUIET)
    _write_json(out / "log_history.json", trainer.state.log_history)
    release_engine(trainer)  # the next phase's engine needs the memory (trainer/training/vllm_cpu.py)
    del trainer
    release_freed_memory()
    return out


def references(client: EnvClient, problems: list[EvalProblem], s: LearnSettings) -> list[RunSummary]:
    """The solver and the baseline policies on the same problems (instant; rows of the table)."""
    summaries = []
    for name in REFERENCES:
        out = s.output_dir / "references" / name
        if not (out / "summary.json").is_file():
            run = run_eval(
                client,
                make_reference(name, client),
                problems,
                profile=s.profile,
                label=name,
                source=f"split:{s.eval_split}[:{len(problems)}]",
                reference=True,
            )
            write_run(run, out)
        summaries.append(load_summary(out))
    return summaries


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


T = TypeVar("T")


def _timed(timings: dict[str, float], key: str, fn: Callable[[], T]) -> T:
    started = time.monotonic()
    result = fn()
    timings[key] = round(timings.get(key, 0.0) + time.monotonic() - started, 1)
    return result


def learn(s: LearnSettings) -> dict[str, Any]:
    """Run every phase not yet done, then write `learning.json` and the report; returns the former."""
    s.output_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if _cuda() else "cpu"
    s = replace(s, dtype=resolve_dtype(s.dtype, device))
    s = replace(s, eval_dtype=resolve_dtype(s.eval_dtype, device) if s.eval_dtype else s.dtype)
    engine, why = choose_engine(s.engine, _cuda())
    s = replace(s, engine=engine)
    console.print(f"generation: {engine} ({why})")
    timings_path = s.output_dir / "timings.json"
    timings: dict[str, float] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    started = time.monotonic()
    service = (
        nullcontext(s.env_url)
        if s.env_url
        else local_service(train_size=s.service_train_size, test_size=max(s.eval_size, 16))
    )
    with service as url, EnvClient.from_url(url) as client:
        health = client.wait_until_healthy(timeout=120)
        console.print(f"environment service at {url} (reward_version {health.reward_version})")
        split, size = s.eval_split, s.eval_size
        problems = {style: from_split(client, split, size, prompt_style=style) for style in s.eval_styles()}
        profile = next(p for p in client.info().profiles if p.name == s.profile)
        weights = {c.name: c.weight for c in profile.components}
        base = _resolve_base(s.base_model)

        by_style: dict[str, dict[str, tuple[RunSummary, list[ResultRow]]]] = {}

        def phase_eval(name: str, model: str) -> tuple[RunSummary, list[ResultRow]]:
            styles = {style: problems[style] for style in s.eval_styles(name)}
            found = _timed(timings, f"eval_{name}", lambda: evaluate(client, name, model, styles, s))
            for style, result in found.items():
                by_style.setdefault(style, {})[name] = result
            return found[HEADLINE_STYLE]

        def save_timings() -> None:
            _write_json(timings_path, timings)

        n, styles = len(problems[HEADLINE_STYLE]), " and ".join(s.eval_styles("base"))
        if s.joint_eval:
            if s.engine != "hf":
                raise ValueError("joint_eval evaluates with transformers: it needs engine hf")
            console.rule("1/3 SFT on the solver's traced answers")
            sft_dir = _timed(timings, "sft", lambda: sft_phase(url, s))
            save_timings()
            console.rule("2/3 GRPO against the service")
            grpo_dir = _timed(timings, "grpo", lambda: grpo_phase(url, weights, s, sft_dir))
            save_timings()
            console.rule(f"3/3 evaluate base, SFT and GRPO together on {n} {s.eval_split} problems")
            models = {"base": (base, []), "sft": (str(sft_dir), [str(sft_dir)])}
            models["grpo"] = (str(grpo_dir), [str(sft_dir), str(grpo_dir)])
            wanted = {name: {st: problems[st] for st in s.eval_styles(name)} for name in PHASES}
            found = _timed(timings, "eval", lambda: evaluate_joint(client, models, wanted, base, s))
            for name, by in found.items():
                for style, result in by.items():
                    by_style.setdefault(style, {})[name] = result
            results = {name: found[name][HEADLINE_STYLE] for name in PHASES}
        else:
            console.rule(f"1/5 evaluate the base model on {n} {s.eval_split} problems ({styles} prompts)")
            results = {"base": phase_eval("base", base)}
            save_timings()
            console.rule("2/5 SFT on the solver's traced answers")
            sft_dir = _timed(timings, "sft", lambda: sft_phase(url, s))
            save_timings()
            console.rule("3/5 evaluate the SFT checkpoint")
            results["sft"] = phase_eval("sft", str(sft_dir))
            save_timings()
            console.rule("4/5 GRPO against the service")
            grpo_dir = _timed(timings, "grpo", lambda: grpo_phase(url, weights, s, sft_dir))
            save_timings()
            console.rule("5/5 evaluate the GRPO checkpoint")
            results["grpo"] = phase_eval("grpo", str(grpo_dir))
        refs = references(client, problems[HEADLINE_STYLE], s)
    timings["this_invocation"] = round(time.monotonic() - started, 1)
    save_timings()

    comparisons = {
        "sft_vs_base": compare_rows(results["base"][1], results["sft"][1]),
        "grpo_vs_sft": compare_rows(results["sft"][1], results["grpo"][1]),
        "grpo_vs_base": compare_rows(results["base"][1], results["grpo"][1]),
    }
    grpo_log = json.loads((grpo_dir / "log_history.json").read_text())
    learning = {
        "final_model": str(grpo_dir),
        "base_model": base,
        "prompt_style": s.prompt_style,
        "trace_style": s.trace_style,
        "reward_version": health.reward_version,
        "profile": s.profile,
        "component_weights": weights,
        "eval": {
            "split": s.eval_split,
            "n": n,
            "decoding": "greedy",
            "max_new_tokens": s.eval_max_new_tokens,
            "prompt_style": HEADLINE_STYLE,
            "styles": list(problems),
        },
        "dtype": s.dtype,
        "eval_dtype": s.eval_dtype,  # resolved above: `dtype` unless asked otherwise
        "engine": s.engine,
        "eval_enforce_eager": s.eval_enforce_eager,
        "joint_eval": s.joint_eval,
        "phases": {name: results[name][0].model_dump(mode="json") for name in PHASES},
        "phases_by_style": {
            style: {name: found[name][0].model_dump(mode="json") for name in PHASES if name in found}
            for style, found in by_style.items()
        },
        "curriculum": s.curriculum,
        "references": {r.label: r.model_dump(mode="json") for r in refs},
        "comparisons": {k: {m: d.as_dict() for m, d in v.items()} for k, v in comparisons.items()},
        "grpo_steps": [h for h in grpo_log if "reward" in h],
        "timings_s": timings,
    }
    _write_json(s.output_dir / "learning.json", learning)
    from trainer.pipelines.learn_report import write_learning_report

    report = write_learning_report(learning, s.output_dir)
    console.print(phase_table(learning))
    for key, label in (("grpo_vs_sft", "GRPO vs SFT"), ("sft_vs_base", "SFT vs base")):
        for d in comparisons[key].values():
            console.print(f"{label}: {d.text()}")
    console.print(f"report: {report}")
    return learning


def choose_engine(requested: str, cuda: bool) -> tuple[str, str]:
    """`hf` or `vllm` for the evaluations and GRPO, and why. `auto` takes vLLM where a build of it runs
    here (its CPU build, or any build with CUDA), transformers elsewhere."""
    from trainer.training.vllm_cpu import generation_engine, vllm_distribution

    if requested not in ("auto", "hf", "vllm"):
        raise ValueError(f"engine must be auto, hf or vllm, not {requested!r}")
    installed = vllm_distribution()
    runs_here = generation_engine(True, cuda, installed).use_vllm  # the rule GRPO's `use_vllm` follows
    if requested == "hf":
        return "hf", "asked for"
    if requested == "vllm" and not runs_here:
        raise ValueError("engine vllm: no vLLM build that runs here (`make install` adds its CPU build)")
    if runs_here:
        return "vllm", "asked for" if requested == "vllm" else f"auto: {installed} runs here"
    return "hf", "auto: no vLLM build that runs here"


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _resolve_base(name: str) -> str:
    from trainer.training.model_prep import resolve_model

    return resolve_model(name)


def phase_table(learning: dict[str, Any]) -> Table:
    """Before/after per phase, with the reference policies, as the console shows it."""
    n, headline = learning["eval"]["n"], learning["eval"].get("prompt_style", learning["prompt_style"])
    table = Table(title=f"{n} held-out test problems, greedy decoding ({headline} prompts: the headline)")
    for col in ("phase", "valid %", "mean score ratio", "exact optimal %", "mean reward"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    rows = [(name, learning["phases"][name], "") for name in PHASES]
    for style, phases in learning.get("phases_by_style", {}).items():
        if style != headline:
            rows += [
                (f"{name} ({style} prompts)", phases[name], "italic") for name in PHASES if name in phases
            ]
    rows += [(f"{name} (reference)", summary, "dim") for name, summary in learning["references"].items()]
    for name, summary, style in rows:
        table.add_row(
            name,
            f"{summary['valid_pct']:.1f}",
            f"{summary['mean_score_ratio']:.3f}",
            f"{summary['exact_optimal_pct']:.1f}",
            f"{summary['mean_reward']:.1f}",
            style=style,
        )
    return table
