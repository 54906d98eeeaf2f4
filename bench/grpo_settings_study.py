"""GRPO settings compared by learning (issue 26): arms that differ only in GRPO flags, from one SFT adapter,
judged greedily on validation problems with the published prompt.

Each arm is `make learn`'s GRPO phase (trainer/configs/smollm2-135m-grpo-cpu.yaml through
`learn.grpo_phase`: the same problems `train[1000:1256]`, seed, steps, LoRA, temperature and completion
budget; 30 steps until run 12, 8 since: add `--max_steps 30` to an arm's flags to repeat the study as it
ran) with the arm's flags added, e.g. `spg16="--steps_per_generation 16"`. An arm trained elsewhere is
reused with `--reuse NAME=DIR` (e.g. `spg4=runs/learn/grpo`, which `make learn` trained); its GRPO seconds
are read from the `timings.json` beside it where there is one. The SFT start and every arm are evaluated
greedily on `train[1900:2000]` (no phase saw them; never the test split) with the published prompt, and
compared per problem with each other arm (95 % paired bootstrap): the mean score ratio (invalid answers
count 0), the valid share and the `overlap` share. It also reports each arm's GRPO wall time and TRL's
seconds per step, and applies the rule for a faster setting (`adopt`, written before any arm ran) to each
arm against the baseline arm (`--baseline`, default the first reused or trained). Nothing is asserted: it
prints the figures and writes `study.json` and two charts.

    .venv/bin/python bench/grpo_settings_study.py --sft runs/learn/sft --reuse spg4=runs/learn/grpo \\
        --arm spg16="--steps_per_generation 16" --output_dir runs/grpo-settings
    .venv/bin/python bench/grpo_settings_study.py --sft SFT_DIR --engine hf --val_size 2 \\
        --arm one="--max_steps 1" --output_dir /tmp/gs                                    # smoke
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reward_study import compare, end_chart, evaluate_arms, grpo_steps, means, step_chart  # noqa: E402


def named(items: list[str], what: str) -> dict[str, str]:
    """NAME=VALUE items as a dict, in order; a malformed item or a repeated name is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or name in out or name == "sft":
            raise SystemExit(f"--{what} takes NAME=VALUE with a new name other than 'sft', not {item!r}")
        out[name] = value
    return out


def reused_seconds(folder: Path) -> float | None:
    """The GRPO seconds `learn` recorded for an adapter it trained (`timings.json` beside it)."""
    timings = folder.parent / "timings.json"
    return json.loads(timings.read_text()).get("grpo") if timings.is_file() else None


def step_seconds(folder: Path) -> dict[str, float] | None:
    """TRL's `step_time` over every logged step of an arm (seconds): the fastest, the slowest and the sum.
    From the whole log: with `steps_per_generation` above the accumulation steps, the reward is logged at
    generation steps only, and those are the slow ones."""
    history = folder / "log_history.json"
    log = json.loads(history.read_text()) if history.is_file() else []
    times = [float(h["step_time"]) for h in log if "step_time" in h]
    return {"min": min(times), "max": max(times), "total": round(sum(times), 1)} if times else None


# The rule for a setting that buys GRPO samples faster (docs/learning.md, "One generation for four GRPO
# steps"), fixed before the comparison ran: the candidate replaces the baseline if its GRPO phase took less
# wall time and its validation figures are not visibly worse: mean score ratio at most 0.02 below and valid
# share at most 3 points below the baseline's. 100 problems cannot establish that two settings are equal
# (a paired interval is about +-0.07 wide), so this only refuses a loss that shows.
MARGIN_SCORE_RATIO = 0.02
MARGIN_VALID = 0.03


def adopt(
    baseline: dict[str, float],
    candidate: dict[str, float],
    baseline_s: float | None,
    candidate_s: float | None,
) -> tuple[bool, str]:
    """The rule above: (adopted, why), from each arm's validation means and GRPO seconds."""
    if baseline_s is None or candidate_s is None:
        return False, "no GRPO wall time for both arms"
    if candidate_s >= baseline_s:
        return False, f"not faster ({candidate_s:.0f} s against {baseline_s:.0f} s)"
    ratio = candidate["score_ratio"] - baseline["score_ratio"]
    valid = candidate["valid"] - baseline["valid"]
    if ratio < -MARGIN_SCORE_RATIO:
        return False, f"score ratio {ratio:+.3f}, below the margin of {-MARGIN_SCORE_RATIO}"
    if valid < -MARGIN_VALID:
        return False, f"valid share {valid:+.2f}, below the margin of {-MARGIN_VALID}"
    return (
        True,
        f"{candidate_s:.0f} s against {baseline_s:.0f} s; score ratio {ratio:+.3f}, valid {valid:+.2f}",
    )


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--sft", type=Path, required=True, help="The SFT adapter every arm starts from.")
    cli.add_argument("--arm", nargs="*", default=[], help='NAME="GRPO FLAGS": an arm to train here.')
    cli.add_argument("--reuse", nargs="*", default=[], help="NAME=DIR: an arm already trained.")
    cli.add_argument("--output_dir", type=Path, default=Path("runs/grpo-settings"))
    cli.add_argument("--val_offset", type=int, default=1900)
    cli.add_argument("--val_size", type=int, default=100)
    cli.add_argument("--engine", default="auto")
    cli.add_argument(
        "--eval_dtype",
        default=None,
        help="The evaluations' weights (default: the training dtype). float32 gives the same greedy vLLM "
        "answers from call to call on a CPU; bfloat16 does not (docs/learning.md).",
    )
    cli.add_argument("--baseline", default=None, help="The arm the rule compares the others with.")
    opts = cli.parse_args()
    to_train = {name: tuple(shlex.split(flags)) for name, flags in named(opts.arm, "arm").items()}
    reuse = {name: Path(folder) for name, folder in named(opts.reuse, "reuse").items()}
    if set(to_train) & set(reuse) or not to_train | reuse:
        raise SystemExit("give at least one arm, each name once across --arm and --reuse")
    baseline = opts.baseline or [*reuse, *to_train][0]
    if baseline not in [*reuse, *to_train]:
        raise SystemExit(f"--baseline {baseline!r} is not one of the arms")

    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.dataset import from_split
    from trainer.pipelines.learn import LearnSettings, choose_engine, grpo_phase
    from trainer.training.model_prep import resolve_dtype

    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    engine, why = choose_engine(opts.engine, False)
    print(f"generation: {engine} ({why})", flush=True)
    base = LearnSettings(
        output_dir=out,
        engine=engine,
        dtype=resolve_dtype("auto", "cpu"),
        eval_dtype=opts.eval_dtype,
        secondary_eval=False,
    )
    grpo_seconds = {name: reused_seconds(folder) for name, folder in reuse.items()}
    timings: dict[str, float] = {}
    with local_service(train_size=2000, test_size=16) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        weights = {c.name: c.weight for c in client.info().profiles[0].components}
        arms: dict[str, Path] = {"sft": opts.sft, **reuse}
        for name, flags in to_train.items():
            # an arm trained by an earlier invocation is skipped; its seconds are the ones it recorded
            trained_before = reused_seconds(out / name / "grpo")
            started = time.monotonic()
            arms[name] = grpo_phase(
                url, weights, replace(base, output_dir=out / name, grpo_args=flags), opts.sft
            )
            seconds = trained_before or round(time.monotonic() - started, 1)
            (out / name / "timings.json").write_text(json.dumps({"grpo": seconds}) + "\n")  # as `learn` does
            grpo_seconds[name] = timings[f"grpo_{name}"] = seconds
        problems = {"default": from_split(client, "train", opts.val_size, offset=opts.val_offset)}
        found = evaluate_arms(client, arms, problems, replace(base, output_dir=out / "eval"), timings)
    rows = {name: result[1] for name, result in found["default"].items()}
    table = {name: means(r) for name, r in rows.items()}
    names = [n for n in arms if n != "sft"]
    pairs = [("sft", n) for n in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    comparisons = compare(rows, pairs)
    logs = {name: grpo_steps(arms[name]) for name in names}
    speed = {
        name: {
            "grpo_seconds": grpo_seconds.get(name),
            "step_seconds": step_seconds(arms[name]),
        }
        for name in names
    }
    for name, figures in table.items():
        pace = speed.get(name, {})
        print(
            f"{name}: "
            + ", ".join(f"{m} {v:.3f}" for m, v in figures.items())
            + (f"; GRPO {pace}" if pace else ""),
            flush=True,
        )
    rule = {}
    for name in names:
        if name != baseline:
            ok, why = adopt(table[baseline], table[name], grpo_seconds.get(baseline), grpo_seconds.get(name))
            rule[name] = {"adopted": ok, "why": why}
            print(f"rule: {name} {'replaces' if ok else 'does not replace'} {baseline}: {why}", flush=True)
    step_chart(logs, out / "grpo_settings_steps.png")
    end_chart(table, out / "grpo_settings_validation.png")
    study = {
        "sft": str(opts.sft),
        "arms": {k: str(v) for k, v in arms.items()},
        "flags": {k: list(v) for k, v in to_train.items()},
        "validation": f"train[{opts.val_offset}:{opts.val_offset + opts.val_size}]",
        "prompt_style": "default",
        "engine": engine,
        "eval_dtype": base.eval_dtype or base.dtype,
        "table": table,
        "comparisons": comparisons,
        "speed": speed,
        "baseline": baseline,
        "rule": rule,
        "steps": logs,
        "timings_s": timings,
    }
    (out / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    print(f"wrote {out / 'study.json'}", flush=True)


if __name__ == "__main__":
    main()
