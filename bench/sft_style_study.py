"""The SFT prompt-style study (issue 26; the method and the rule are in docs/sft-style-study.md): does
the cold start learn the published prompt better from traced answers to published prompts than from
`guided` ones?

Each arm is `make learn`'s SFT phase (trainer/configs/smollm2-135m-sft-cpu.yaml: traced answers of
`train[0:640]` since run 12, 320 before and in the studies so far, hence `--sft_args "--dataset_size
320"` to repeat them; one epoch, batch 4, LoRA, the same seed and learning rate) with only the prompt
style and the trace style changed (`--arms NAME=PROMPT_STYLE:TRACE_STYLE`). Each trained arm's SFT
seconds are kept in its folder's `timings.json`, as `learn` keeps them, so that a rerun that finds the
arm trained reports the time it took and not the moment it took to find it. An arm already trained elsewhere
is reused with `--reuse NAME=DIR` (e.g. `guided=runs/learn/sft`, which `make learn` trained with
`guided` prompts and `sorted` traces); reused arms come first. Every arm is then evaluated greedily on
`train[1900:2000]` (no phase saw them; never the test split) with the published prompt (`default` style,
the headline) and with `guided` prompts, and every pair is compared per problem, the earlier arm first
(95 % paired bootstrap): the mean score ratio (invalid answers count 0), the valid share and the
`overlap` share.
Nothing is asserted: it prints the figures and writes `study.json`.

    .venv/bin/python bench/sft_style_study.py --reuse guided=runs/learn/sft --sft_args "--dataset_size 320" \\
        --arms by_hour=default:by_hour sorted=default:sorted --output_dir runs/sft-style-study
    .venv/bin/python bench/sft_style_study.py --arms a=default:by_hour b=guided:sorted --output_dir /tmp/ss \\
        --engine hf --val_size 2 --sft_args "--dataset_size 4"                        # smoke
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reward_study import compare, evaluate_arms, means  # noqa: E402
from trainer.client.env_card import CARD  # noqa: E402  (what a finished training phase writes last)

STYLES = ("default", "guided")


def sft_seconds(arm_dir: Path, elapsed: float, trained_before: bool) -> float | None:
    """The SFT seconds of an arm: measured now and kept in `arm_dir/timings.json` when it trained now; read
    back from there when an earlier invocation trained it (None if that one did not keep them)."""
    record = arm_dir / "timings.json"
    if not trained_before:
        record.write_text(json.dumps({"sft": round(elapsed, 1)}) + "\n")
    return json.loads(record.read_text()).get("sft") if record.is_file() else None


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--arms", nargs="+", default=[], help="NAME=PROMPT_STYLE:TRACE_STYLE arms to train.")
    cli.add_argument("--reuse", nargs="*", default=[], help="NAME=DIR: an arm already trained.")
    cli.add_argument("--output_dir", type=Path, default=Path("runs/sft-style-study"))
    cli.add_argument("--val_offset", type=int, default=1900)
    cli.add_argument("--val_size", type=int, default=100)
    cli.add_argument("--engine", default="auto")
    cli.add_argument(
        "--eval_dtype",
        default=None,
        help="The evaluations' weights (default: the training dtype). float32 gives the same greedy vLLM "
        "answers from call to call on a CPU; bfloat16 does not (docs/learning.md).",
    )
    cli.add_argument("--sft_args", default="", help="Extra SFT flags for every trained arm.")
    cli.add_argument(
        "--styles",
        nargs="+",
        default=list(STYLES),
        choices=STYLES,
        help="The prompt styles every arm is evaluated with (default: both; the first is the headline).",
    )
    cli.add_argument(
        "--eval_max_new_tokens",
        type=int,
        default=None,
        help="Tokens each evaluation answer may take (default: learn's, 640); raise it for longer traces.",
    )
    opts = cli.parse_args()

    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.dataset import from_split
    from trainer.pipelines.learn import LearnSettings, choose_engine, sft_phase
    from trainer.training.model_prep import resolve_dtype

    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    engine, why = choose_engine(opts.engine, False)
    print(f"generation: {engine} ({why})", flush=True)
    arms: dict[str, Path] = {k: Path(v) for k, v in (item.split("=", 1) for item in opts.reuse)}
    base = LearnSettings(
        output_dir=out,
        engine=engine,
        dtype=resolve_dtype("auto", "cpu"),
        eval_dtype=opts.eval_dtype,
        secondary_eval=False,
    )
    if opts.eval_max_new_tokens is not None:
        base = replace(base, eval_max_new_tokens=opts.eval_max_new_tokens)
    sft_args = tuple(shlex.split(opts.sft_args))
    timings: dict[str, float] = {}
    with local_service(train_size=2000, test_size=16) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        for arm in opts.arms:
            name, _, spec = arm.partition("=")
            style, _, trace = spec.partition(":")
            settings = replace(
                base,
                output_dir=out / name,
                prompt_style=style,
                sft_args=("--trace_style", trace or "sorted", *sft_args),
            )
            trained_before = (out / name / "sft" / CARD).is_file()
            started = time.monotonic()
            arms[name] = sft_phase(url, settings)
            timings[f"sft_{name}"] = sft_seconds(out / name, time.monotonic() - started, trained_before)
        problems = {
            style: from_split(client, "train", opts.val_size, prompt_style=style, offset=opts.val_offset)
            for style in opts.styles
        }
        found = evaluate_arms(client, arms, problems, replace(base, output_dir=out / "eval"), timings)
        rows = {style: {name: result[1] for name, result in by.items()} for style, by in found.items()}
    table = {style: {n: means(r) for n, r in by.items()} for style, by in rows.items()}
    comparisons: dict[str, Any] = {}
    for style in opts.styles:
        comparisons |= compare(rows[style], list(itertools.combinations(arms, 2)), style)  # earlier arm first
    for style in opts.styles:
        for name, figures in table[style].items():
            print(f"[{style} prompts] {name}: " + ", ".join(f"{m} {v:.3f}" for m, v in figures.items()))
    verdicts = {
        style: {name: result[0].verdicts for name, result in by.items()} for style, by in found.items()
    }
    study = {
        "arms": {k: str(v) for k, v in arms.items()},
        "arm_specs": opts.arms,
        "validation": f"train[{opts.val_offset}:{opts.val_offset + opts.val_size}]",
        "engine": engine,
        "eval_dtype": base.eval_dtype or base.dtype,
        "eval_max_new_tokens": base.eval_max_new_tokens,
        "table": table,
        "verdicts": verdicts,
        "comparisons": comparisons,
        "timings_s": timings,
    }
    (out / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    print(f"wrote {out / 'study.json'}", flush=True)


if __name__ == "__main__":
    main()
