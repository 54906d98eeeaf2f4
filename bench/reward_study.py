"""The overlap reward study (docs/reward-study.md): GRPO with each reward profile from the same SFT
checkpoint at equal compute, judged on validation problems.

Each arm is the `learn` GRPO phase (trainer/configs/smollm2-135m-grpo-cpu.yaml: the same problems,
seed, steps and completions; 30 steps until run 12, 8 since: add `--grpo_args "--max_steps 30"` to
repeat the study as it ran) with only `--profile` changed. An arm already trained elsewhere is reused
with `--reuse PROFILE=DIR` (e.g. `default=runs/learn/grpo`, which `make learn` trained with `default`).
The SFT checkpoint and every arm are then evaluated greedily on the validation problems
`train[1900:2000]` (neither SFT, `train[0:320]`, nor GRPO, `train[1000:1256]`, saw them; never the test
split), in the prompt style they were trained in, and compared per problem (95 % paired bootstrap):
the share of `overlap` answers, of valid answers, and the mean score ratio. The verdict and the score
ratio do not depend on the profile, so the arms compare on the same scale. Per GRPO step, the training
logs give the same three figures on the step's completions (`env/overlap_frac`, `env/valid_frac`,
`env/score_ratio`). Nothing is asserted: it prints the figures, writes `study.json` and two charts.

    .venv/bin/python bench/reward_study.py --sft runs/learn/sft --reuse default=runs/learn/grpo \\
        --profiles default graded --output_dir runs/reward-study
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRICS = ("overlap", "valid", "score_ratio")


def per_problem(rows: list[Any], metric: str) -> dict[str, float]:
    if metric == "score_ratio":
        return {r.problem_id: float(r.score_ratio or 0.0) for r in rows}
    return {r.problem_id: float(r.verdict == metric) for r in rows}


def means(rows: list[Any]) -> dict[str, float]:
    """Each metric's mean over one evaluation's rows."""
    return {m: sum(per_problem(rows, m).values()) / len(rows) for m in METRICS}


def evaluate_arms(
    client: Any,
    arms: dict[str, Path],
    problems: dict[str, list[Any]],
    settings: Any,
    timings: dict[str, float],
) -> dict[str, dict[str, tuple[Any, list[Any]]]]:
    """Each arm evaluated greedily on `problems` (style -> problems) by `learn.evaluate` with `settings`
    (its `output_dir` holds the evaluations); style -> arm -> (summary, rows). Adds `eval_ARM` timings."""
    from trainer.pipelines.learn import evaluate

    found_by_style: dict[str, dict[str, tuple[Any, list[Any]]]] = {style: {} for style in problems}
    for name, model in arms.items():
        started = time.monotonic()
        found = evaluate(client, name, str(model), problems, settings)
        timings[f"eval_{name}"] = round(time.monotonic() - started, 1)
        for style in problems:
            found_by_style[style][name] = found[style]
    return found_by_style


def compare(
    rows: dict[str, list[Any]], pairs: list[tuple[str, str]], style: str | None = None
) -> dict[str, dict[str, Any]]:
    """Each pair (before, after) per metric: 95 % paired bootstrap, printed; keys
    `[STYLE/]AFTER_vs_BEFORE/METRIC`."""
    from trainer.evaluation.stats import paired_bootstrap

    key, say = (f"{style}/", f"[{style} prompts] ") if style else ("", "")
    comparisons = {}
    for before, after in pairs:
        for m in METRICS:
            d = paired_bootstrap(per_problem(rows[before], m), per_problem(rows[after], m), m)
            comparisons[f"{key}{after}_vs_{before}/{m}"] = d.as_dict()
            print(f"{say}{after} vs {before}: {d.text()}", flush=True)
    return comparisons


def grpo_steps(folder: Path) -> list[dict[str, Any]]:
    """The logged GRPO steps of an arm (`log_history.json`), or none when it has no log."""
    history = folder / "log_history.json"
    return [h for h in json.loads(history.read_text()) if "reward" in h] if history.is_file() else []


def step_chart(logs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = (
        ("env/overlap_frac", "overlap share"),
        ("env/valid_frac", "valid share"),
        ("env/score_ratio", "score ratio"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for profile, log in logs.items():
            steps = [h for h in log if key in h]
            ax.plot([h["step"] for h in steps], [h[key] for h in steps], marker="o", ms=3, label=profile)
        ax.set_title(f"{title} (the completions logged at the step)")
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def end_chart(table: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    names = list(table)
    for ax, metric in zip(axes, METRICS, strict=True):
        ax.bar(
            names,
            [table[n][metric] for n in names],
            color=["#9e9e9e", "#1565c0", "#e65100", "#2e7d32"][: len(names)],
        )
        ax.set_title(f"{metric} (validation, mean)")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--sft", type=Path, required=True, help="The SFT adapter every arm starts from.")
    cli.add_argument("--profiles", nargs="+", default=["default", "graded"])
    cli.add_argument("--reuse", nargs="*", default=[], help="PROFILE=DIR: an arm already trained.")
    cli.add_argument("--output_dir", type=Path, default=Path("runs/reward-study"))
    cli.add_argument("--val_offset", type=int, default=1900)
    cli.add_argument("--val_size", type=int, default=100)
    cli.add_argument("--engine", default="auto")
    cli.add_argument("--eval_max_new_tokens", type=int, default=640)
    cli.add_argument("--grpo_args", default="", help="Extra GRPO flags for every arm (equal compute).")
    opts = cli.parse_args()

    import shlex
    from dataclasses import replace

    from trainer.client.env_card import read_card
    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.dataset import from_split
    from trainer.pipelines.learn import LearnSettings, choose_engine, grpo_phase
    from trainer.training.model_prep import resolve_dtype

    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    style = read_card(opts.sft)["prompt_style"]
    engine, why = choose_engine(opts.engine, False)
    print(f"generation: {engine} ({why}); prompts: {style}", flush=True)
    reuse = dict(item.split("=", 1) for item in opts.reuse)
    base = LearnSettings(
        output_dir=out,
        prompt_style=style,
        engine=engine,
        dtype=resolve_dtype("auto", "cpu"),
        secondary_eval=False,
    )
    timings: dict[str, float] = {}
    with local_service(train_size=2000, test_size=16) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        weights = {c.name: c.weight for c in client.info().profiles[0].components}
        arms: dict[str, Path] = {"sft": opts.sft}
        for profile in opts.profiles:
            if profile in reuse:
                arms[profile] = Path(reuse[profile])
                continue
            s = replace(
                base, output_dir=out / profile, profile=profile, grpo_args=tuple(shlex.split(opts.grpo_args))
            )
            started = time.monotonic()
            arms[profile] = grpo_phase(url, weights, s, opts.sft)
            timings[f"grpo_{profile}"] = round(time.monotonic() - started, 1)
        problems = from_split(client, "train", opts.val_size, prompt_style=style, offset=opts.val_offset)
        found = evaluate_arms(
            client, arms, {style: problems}, replace(base, output_dir=out / "eval"), timings
        )
        rows = {name: result[1] for name, result in found[style].items()}
    table = {name: means(r) for name, r in rows.items()}
    pairs = [("sft", p) for p in opts.profiles]
    pairs += [(opts.profiles[0], p) for p in opts.profiles[1:]]
    comparisons = compare(rows, pairs)
    logs = {profile: grpo_steps(arms[profile]) for profile in opts.profiles}
    for name, figures in table.items():
        print(f"{name}: " + ", ".join(f"{m} {v:.3f}" for m, v in figures.items()), flush=True)
    step_chart(logs, out / "reward_study_steps.png")
    end_chart(table, out / "reward_study_validation.png")
    study = {
        "sft": str(opts.sft),
        "arms": {k: str(v) for k, v in arms.items()},
        "validation": f"train[{opts.val_offset}:{opts.val_offset + opts.val_size}]",
        "prompt_style": style,
        "engine": engine,
        "table": table,
        "comparisons": comparisons,
        "steps": logs,
        "timings_s": timings,
    }
    (out / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    print(f"wrote {out / 'study.json'}", flush=True)


if __name__ == "__main__":
    main()
