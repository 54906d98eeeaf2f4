"""Does the check tool help a small model learn the task? GRPO with and without it, from one SFT start, at
equal sampled tokens, judged on validation problems (issue 27 item 4b; the method is in docs/tools.md).

Phases, each skipped when its output is complete (run the same command again to resume):

1. `sft`: one SFT start for both arms: `learn`'s SFT phase (the CPU config: `train[0:320]`, `guided`
   prompts) with `--tool_share 0.5 --tool_checks CHECKS`: half of the traced answers written as tool
   episodes (trainer/training/tool_sft.py), half as single answers.
2. `single`: GRPO exactly as `learn` runs it (trainer/configs/smollm2-135m-grpo-cpu.yaml: 30 steps of
   2 problems × 4 completions from `train[1000:1256]`; 8 steps since run 12, so add
   `--grpo_args "--max_steps 30"` to repeat the study as it ran), single-turn.
3. `tools`: the same GRPO with `--tool_checks CHECKS` (the check tool and `submit`), completions of up
   to `--tool_completion_length` tokens (tool results included), and `--max_sampled_tokens` set to
   what `single` sampled, so both arms sample the same number of tokens (at most `--tool_max_steps`).
4. Evaluation on `train[VAL:VAL+N]` (neither phase saw them; never the test split), greedy, `guided`
   prompts, by `trainer/evaluation/tool_episodes.py` (TRL's loop, token for token): the SFT start
   single-turn and with tools, `single` single-turn, `tools` with tools and single-turn.
5. `study.json` (every figure, every step), `tool_study_steps.png`, `tool_study_validation.png`, and
   the paired differences (95 % bootstrap over problems) printed.

    .venv/bin/python bench/tool_study.py --output_dir runs/tool-study
    .venv/bin/python bench/tool_study.py --output_dir /tmp/ts --base_model DIR --engine hf --val_size 4 \\
        --sft_args "--dataset_size 8 --max_steps 2" --grpo_args "--max_steps 2" --tool_max_steps 3   # smoke
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T = TypeVar("T")
METRICS = ("valid", "overlap", "score_ratio")
ARMS = ("sft", "single", "tools")


def per_problem(rows: list[dict[str, Any]], metric: str) -> dict[str, float]:
    if metric == "score_ratio":
        return {r["problem_id"]: float(r["score_ratio"] or 0.0) for r in rows}
    return {r["problem_id"]: float(r["verdict"] == metric) for r in rows}


def generation_batch(settings: Any) -> int:
    """Completions per GRPO step of the arms (the GRPO config with the extra flags)."""
    from trainer.training.grpo import parse

    _, training, _ = parse(["--config", str(settings.grpo_config), *settings.grpo_args])
    return int(training.generation_batch_size)


def evaluate(
    model: Path,
    client: Any,
    url: str,
    problems: list[Any],
    tools: bool,
    opts: argparse.Namespace,
    engine: str,
    dtype: str,
) -> list[dict[str, Any]]:
    from transformers import AutoTokenizer

    from trainer.client.tool_env import tool_calling_tokenizer, training_environment
    from trainer.evaluation.generation import SamplingConfig
    from trainer.evaluation.tool_episodes import HFTokenEngine, VLLMTokenEngine, as_rows, run_episodes

    sampling = SamplingConfig(max_new_tokens=opts.tool_completion_length if tools else opts.completion_length)
    tokenizer = tool_calling_tokenizer(AutoTokenizer.from_pretrained(model))
    backend: Any
    if engine == "vllm":
        from trainer.evaluation.vllm_backend import VLLMBackend

        backend = VLLMBackend(str(model), sampling, enforce_eager=True, dtype=dtype)
        token_engine: Any = VLLMTokenEngine(backend)
    else:
        from trainer.evaluation.hf_backend import HFBackend

        backend = HFBackend(str(model), sampling, batch_size=opts.eval_batch_size, dtype=dtype)
        token_engine = HFTokenEngine(backend)
    try:
        records = run_episodes(
            token_engine,
            tokenizer,
            client,
            problems,
            training_environment(url, opts.checks, "guided") if tools else None,
            tools=tools,
            max_completion_length=opts.tool_completion_length if tools else opts.completion_length,
            max_tool_calling_iterations=opts.max_tool_calling_iterations,
        )
    finally:
        if hasattr(backend, "close"):
            backend.close()
    return as_rows(records)


def charts(steps: dict[str, list[dict[str, Any]]], table: dict[str, dict[str, float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = (
        ("reward", "mean reward"),
        ("env/overlap_frac", "overlap share"),
        ("env/score_ratio", "score ratio"),
        ("tools/checks_per_episode", "checks per episode"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.3))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for arm, rows in steps.items():
            points = [(r["sampled_tokens"], r[key]) for r in rows if key in r]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", ms=3, label=arm)
        ax.set_title(f"{title} (the step's completions)")
        ax.set_xlabel("sampled completion tokens")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out / "tool_study_steps.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    names = list(table)
    for ax, (metric, title) in zip(
        axes,
        (("valid", "valid share"), ("overlap", "overlap share"), ("score_ratio", "mean score ratio"),
         ("mean_checks", "checks per episode")),
        strict=True,
    ):  # fmt: skip
        ax.bar(names, [table[n][metric] for n in names], color="#1565c0")
        ax.set_title(f"{title} (validation)")
        ax.tick_params(axis="x", labelrotation=30)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out / "tool_study_validation.png", dpi=110)
    plt.close(fig)


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--output_dir", type=Path, default=Path("runs/tool-study"))
    cli.add_argument("--base_model", default="smollm2-135m-instruct")
    cli.add_argument(
        "--checks", type=int, default=2, help="Check budget per episode (training and evaluation)."
    )
    cli.add_argument(
        "--tool_share", type=float, default=0.5, help="Share of SFT answers written as episodes."
    )
    cli.add_argument("--completion_length", type=int, default=640, help="Single-turn completion budget.")
    cli.add_argument(
        "--tool_completion_length", type=int, default=1024, help="Tool episodes' completion budget."
    )
    cli.add_argument("--max_tool_calling_iterations", type=int, default=3)
    cli.add_argument("--tool_max_steps", type=int, default=90, help="Bound on the tools arm's steps.")
    cli.add_argument("--val_offset", type=int, default=1900)
    cli.add_argument("--val_size", type=int, default=100)
    cli.add_argument("--engine", default="auto", help="auto, hf or vllm: generation in GRPO and evaluation.")
    cli.add_argument("--eval_batch_size", type=int, default=25)
    cli.add_argument("--sft_args", default="", help="Extra SFT flags (e.g. a smoke run's size).")
    cli.add_argument("--grpo_args", default="", help="Extra GRPO flags for both arms.")
    opts = cli.parse_args()

    from trainer.client.env_card import CARD
    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.stats import paired_bootstrap
    from trainer.evaluation.tool_episodes import EpisodeRecord, summarize
    from trainer.pipelines.learn import LearnSettings, choose_engine, grpo_phase, sft_phase
    from trainer.training.model_prep import resolve_dtype
    from trainer.training.progress import sampled_token_curve

    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    engine, why = choose_engine(opts.engine, False)
    dtype = resolve_dtype("auto", "cpu")
    print(f"generation: {engine} ({why}); dtype {dtype}; prompts: guided", flush=True)
    base = LearnSettings(
        output_dir=out,
        base_model=opts.base_model,
        prompt_style="guided",
        engine=engine,
        dtype=dtype,
        secondary_eval=False,
        sft_args=(
            "--tool_share", str(opts.tool_share), "--tool_checks", str(opts.checks),
            "--max_length", "2048",  # a tool transcript is up to ~1,840 tokens (tool schemas ~500 of them)
            *shlex.split(opts.sft_args),
        ),
        grpo_args=tuple(shlex.split(opts.grpo_args)),
    )  # fmt: skip
    timings_file = out / "timings.json"  # phases timed when they ran: a resumed run keeps earlier ones
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.is_file() else {}

    def timed(key: str, done: Path, fn: Callable[[], T]) -> T:
        """`fn()`, timed into `timings.json` unless `done` (its output) was already there."""
        ran, started = not done.is_file(), time.monotonic()
        result = fn()
        if ran:
            timings[key] = round(time.monotonic() - started, 1)
            timings_file.write_text(json.dumps(timings, indent=2) + "\n")
        return result

    with local_service(train_size=2000, test_size=16) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        weights = {c.name: c.weight for c in client.info().profiles[0].components}
        sft = timed("sft", out / "sft" / CARD, lambda: sft_phase(url, base))
        single_settings = replace(base, output_dir=out / "single")
        single = timed(
            "grpo_single",
            out / "single" / "grpo" / CARD,
            lambda: grpo_phase(url, weights, single_settings, sft),
        )
        single_log = json.loads((single / "log_history.json").read_text())
        batch = generation_batch(base)
        budget = sampled_token_curve(single_log, batch)[-1][1]
        print(f"single-turn arm sampled {budget:.0f} completion tokens: the tools arm's budget", flush=True)

        tool_flags = (
            "--tool_checks", str(opts.checks),
            "--max_tool_calling_iterations", str(opts.max_tool_calling_iterations),
            "--max_completion_length", str(opts.tool_completion_length),
            "--max_sampled_tokens", str(int(budget)),
            "--max_steps", str(opts.tool_max_steps),
        )  # fmt: skip
        tools_settings = replace(base, output_dir=out / "tools", grpo_args=(*base.grpo_args, *tool_flags))
        tools_arm = timed(
            "grpo_tools", out / "tools" / "grpo" / CARD, lambda: grpo_phase(url, weights, tools_settings, sft)
        )

        problems = client.all_problems(
            "train", limit=opts.val_size, prompt_style="guided", offset=opts.val_offset
        )
        runs = {
            "sft/single-turn": (sft, False),
            "sft/tools": (sft, True),
            "single/single-turn": (single, False),
            "tools/tools": (tools_arm, True),
            "tools/single-turn": (tools_arm, False),
        }
        rows: dict[str, list[dict[str, Any]]] = {}
        for name, (model, tools) in runs.items():
            path = out / "eval" / f"{name.replace('/', '--')}.jsonl"
            if not path.is_file():
                found = timed(
                    f"eval_{name}",
                    path,
                    partial(evaluate, model, client, url, problems, tools, opts, engine, dtype),
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(json.dumps(r) + "\n" for r in found))
            rows[name] = [json.loads(line) for line in path.read_text().splitlines()]

    table = {}
    for name, found in rows.items():
        summary = summarize([EpisodeRecord(**r) for r in found])
        table[name] = {
            "valid": summary["valid_pct"] / 100,
            "overlap": summary["overlap_pct"] / 100,
            "score_ratio": summary["mean_score_ratio"],
            **summary,
        }
        print(
            f"{name:20s} valid {summary['valid_pct']:5.1f} %  overlap {summary['overlap_pct']:5.1f} %  "
            f"score ratio {summary['mean_score_ratio']:.3f}  checks/episode {summary['mean_checks']:.2f}  "
            f"checking {summary['share_checking']:.0%}  sampled tokens {summary['mean_sampled_tokens']:.0f}",
            flush=True,
        )
    comparisons = {}
    pairs = [("single/single-turn", "tools/tools"), ("sft/single-turn", "single/single-turn"),
             ("sft/tools", "tools/tools"), ("sft/single-turn", "sft/tools")]  # fmt: skip
    for before, after in pairs:
        for m in METRICS:
            d = paired_bootstrap(per_problem(rows[before], m), per_problem(rows[after], m), m)
            comparisons[f"{after} vs {before}/{m}"] = d.as_dict()
            print(f"{after} vs {before}: {d.text()}", flush=True)

    steps: dict[str, list[dict[str, Any]]] = {}
    for arm, folder in (("single", single), ("tools", tools_arm)):
        history = json.loads((folder / "log_history.json").read_text())
        tokens = dict(sampled_token_curve(history, batch))
        steps[arm] = [
            {**h, "sampled_tokens": tokens[int(h["step"])]}
            for h in history
            if "reward" in h and int(h.get("step", 0)) in tokens
        ]
    charts(steps, table, out)
    study = {
        "sft": str(sft),
        "arms": {"single": str(single), "tools": str(tools_arm)},
        "validation": f"train[{opts.val_offset}:{opts.val_offset + opts.val_size}]",
        "engine": engine,
        "dtype": dtype,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "sampled_token_budget": budget,
        "table": table,
        "comparisons": comparisons,
        "steps": steps,
        "timings_s": timings,
    }
    (out / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    print(f"wrote {out / 'study.json'}", flush=True)


if __name__ == "__main__":
    main()
