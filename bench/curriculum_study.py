"""The curriculum study (issue 26; the method is in docs/curriculum-study.md): does GRPO on a curriculum
session beat GRPO on a fixed split of the same compute, judged on the published prompt?

Every arm starts from the same SFT adapter (`make learn`'s: 320 traced answers, `guided` prompts) and is
`learn`'s GRPO phase (trainer/configs/smollm2-135m-grpo-cpu.yaml: 30 steps of 2 problems x 4 completions
(8 since run 12: add `--grpo_args "--max_steps 30"` to repeat the study as it ran),
the same seed, LoRA, learning rate, temperature and completion budget), with only where the problems
come from changed:

- `published`: the fixed split `train[1000:1256]` with the published prompt (`default` style);
- `curriculum`: a curriculum session (`--curriculum true`, the default ladder: 3-event problems with the
  `guided` scaffold first, fading to the published prompt on the test distribution as the learner's
  group success rate passes 0.5 + 0.15), served from index 1000 of the train side, so its problems of
  the test distribution are the same `train[1000:]` problems as `published`'s;
- `guided` (reference, optional `--reuse guided=DIR`): the fixed split with `guided` prompts, which is
  `make learn`'s GRPO phase.

The SFT start and every arm are then evaluated greedily on `train[1900:2000]` (no phase saw them; never
the test split) with the published prompt (the headline) and with `guided` prompts, and compared per
problem (95 % paired bootstrap): the mean score ratio (invalid answers count 0), the valid share and the
`overlap` share. Nothing is asserted: it prints the figures, writes `study.json` and two charts.

    .venv/bin/python bench/curriculum_study.py --sft runs/learn/sft \\
        --reuse guided=runs/reward-study/default/grpo --output_dir runs/curriculum-study
    .venv/bin/python bench/curriculum_study.py --sft SFT_DIR --output_dir /tmp/cs --engine hf \\
        --val_size 2 --grpo_args "--max_steps 1"                                      # smoke
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reward_study import compare, end_chart, evaluate_arms, grpo_steps, means, step_chart  # noqa: E402

STYLES = ("default", "guided")
# The curriculum session's settings: the service's defaults (target 0.5, band 0.15, window 4 groups, a
# completion succeeds at reward 80, the 8-rung default ladder from rung 0), served from train index 1000.
CURRICULUM_CONFIG = {"offset": 1000}


def rung_chart(history: list[dict[str, Any]], path: Path) -> None:
    """The curriculum session's rung after each decision, and the success rate that moved it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.3))
    xs = list(range(1, len(history) + 1))
    ax.step(xs, [h["rung"] for h in history], where="post", label="rung after the decision")
    ax.set_xlabel("decision (every 4 reported groups)")
    ax.set_ylabel("rung")
    ax.grid(alpha=0.3)
    rate = ax.twinx()
    rate.plot(xs, [h["success_rate"] for h in history], "o", ms=3, color="#e65100", label="success rate")
    rate.set_ylabel("window success rate")
    rate.set_ylim(0, 1)
    fig.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--sft", type=Path, required=True, help="The SFT adapter every arm starts from.")
    cli.add_argument("--reuse", nargs="*", default=[], help="ARM=DIR: an arm already trained (e.g. guided).")
    cli.add_argument("--output_dir", type=Path, default=Path("runs/curriculum-study"))
    cli.add_argument("--val_offset", type=int, default=1900)
    cli.add_argument("--val_size", type=int, default=100)
    cli.add_argument("--engine", default="auto")
    cli.add_argument("--grpo_args", default="", help="Extra GRPO flags for every arm (equal compute).")
    opts = cli.parse_args()

    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.dataset import from_split
    from trainer.pipelines.learn import LearnSettings, choose_engine, grpo_phase
    from trainer.training.model_prep import resolve_dtype

    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    engine, why = choose_engine(opts.engine, False)
    print(f"generation: {engine} ({why})", flush=True)
    reuse = {k: Path(v) for k, v in (item.split("=", 1) for item in opts.reuse)}
    base = LearnSettings(
        output_dir=out, engine=engine, dtype=resolve_dtype("auto", "cpu"), secondary_eval=False
    )
    grpo_args = tuple(shlex.split(opts.grpo_args))
    trained = {
        "published": replace(base, output_dir=out / "published", prompt_style="default", grpo_args=grpo_args),
        "curriculum": replace(
            base,
            output_dir=out / "curriculum",
            curriculum=True,
            curriculum_config=json.dumps(CURRICULUM_CONFIG),
            grpo_args=grpo_args,
        ),
    }
    timings: dict[str, float] = {}
    with local_service(train_size=2000, test_size=16) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        weights = {c.name: c.weight for c in client.info().profiles[0].components}
        arms: dict[str, Path] = {"sft": opts.sft, **reuse}
        for name, s in trained.items():
            started = time.monotonic()
            arms[name] = grpo_phase(url, weights, s, opts.sft)
            timings[f"grpo_{name}"] = round(time.monotonic() - started, 1)
        problems = {
            style: from_split(client, "train", opts.val_size, prompt_style=style, offset=opts.val_offset)
            for style in STYLES
        }
        found = evaluate_arms(client, arms, problems, replace(base, output_dir=out / "eval"), timings)
        rows = {style: {name: result[1] for name, result in by.items()} for style, by in found.items()}
    table = {style: {n: means(r) for n, r in by.items()} for style, by in rows.items()}
    pairs = [("published", "curriculum"), ("sft", "published"), ("sft", "curriculum")]
    pairs += [("guided", "curriculum"), ("guided", "published")] if "guided" in arms else []
    comparisons: dict[str, Any] = {}
    for style in STYLES:
        comparisons |= compare(rows[style], pairs, style)
    logs = {name: grpo_steps(folder) for name, folder in arms.items() if name != "sft"}
    session_file = arms["curriculum"] / "curriculum.json"
    session = json.loads(session_file.read_text()) if session_file.is_file() else {}
    decisions = session.get("state", {}).get("history", [])
    for style in STYLES:
        for name, figures in table[style].items():
            print(f"[{style} prompts] {name}: " + ", ".join(f"{m} {v:.3f}" for m, v in figures.items()))
    print(f"curriculum: {len(decisions)} decisions, ended on rung {session.get('state', {}).get('rung')}")
    step_chart(logs, out / "curriculum_study_steps.png")
    end_chart(table["default"], out / "curriculum_study_validation.png")
    rung_chart(decisions, out / "curriculum_study_rungs.png")
    study = {
        "sft": str(opts.sft),
        "arms": {k: str(v) for k, v in arms.items()},
        "curriculum_config": CURRICULUM_CONFIG,
        "validation": f"train[{opts.val_offset}:{opts.val_offset + opts.val_size}]",
        "engine": engine,
        "table": table,
        "comparisons": comparisons,
        "steps": logs,
        "curriculum_session": session,
        "timings_s": timings,
    }
    (out / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    print(f"wrote {out / 'study.json'}", flush=True)


if __name__ == "__main__":
    main()
