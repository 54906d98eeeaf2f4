"""A CPU GRPO step of SmolLM2-135M, split by where its time goes, with each generation engine.

Runs the `make learn` GRPO config (`trainer/configs/smollm2-135m-grpo-cpu.yaml`: 2 problems × 4
completions per step, up to 640 new tokens at the config's temperature (0.7 since run 11), LoRA on every
linear layer, weights in the dtype `sched-train learn` chooses: bfloat16 where the CPU computes it
natively, else float32)
against a live service, once per engine, each in its own process (a colocated vLLM engine initialises
`torch.distributed` in its process). Engines:

- `hf`: transformers `generate` (TRL's default);
- `vllm`: vLLM's CPU build colocated in the trainer's process (`use_vllm`, `vllm_mode=colocate`),
  weights synced after each optimizer step through vLLM's in-place reload.

Each step's wall time is split with TRL's own profiling hooks (`profiling_context`): generation
(`transformers.generate` or `vLLM.generate`), scoring over HTTP (the reward functions: one `/v1/score`
request per step), weight sync (`sync_weights`); the rest is the forward passes for the old
log-probabilities, forward and backward, and the optimizer, itself split into `logps` (what TRL's
`_prepare_inputs` spends besides generating, scoring and syncing: the no-grad forward pass over the step's
completions for the old log-probabilities, which the vLLM importance-sampling correction needs, and batch
preparation) and `train` (forward and backward, the optimizer). The engine's start-up (trainer
construction: model load, and for vLLM its compilation and warm-up) is printed apart. Figures are
printed and, with `--json`, written; nothing is asserted.

    .venv/bin/python bench/grpo_step.py [--engines hf vllm] [--steps 4] [--model smollm2-135m-instruct]
    .venv/bin/python bench/grpo_step.py --engines vllm --model runs/learn/sft --prompt_style default \
        --grpo_args "--vllm_importance_sampling_correction false"      # any GRPO flag, e.g. a variant

`--model` may be an SFT adapter (e.g. runs/learn/sft), whose answers are the lengths GRPO meets in
`make learn`; the default base model writes longer, rambling answers.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "trainer" / "configs" / "smollm2-135m-grpo-cpu.yaml"
PARTS = ("generation", "scoring (HTTP)", "weight sync", "rest (log-probs, forward+backward, optimizer)")


def worker(opts: argparse.Namespace) -> None:
    """One engine: train `--steps` steps, write per-step splits to `--json`."""
    from transformers import TrainerCallback
    from trl.extras import profiling

    from trainer.training.grpo import parse, run
    from trainer.training.model_prep import resolve_dtype

    spans: dict[str, float] = defaultdict(float)
    original = profiling.ProfilingContext._log_metrics

    def record(self: Any, duration: float) -> None:
        spans[self.name.split(".", 1)[1] if self.name.startswith("GRPOTrainer.") else self.name] += duration
        original(self, duration)

    profiling.ProfilingContext._log_metrics = record  # type: ignore[method-assign]
    steps: list[dict[str, Any]] = []
    started: dict[str, float] = {}

    class Split(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            started["construct_end"] = time.perf_counter()

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            spans.clear()
            started["step"] = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            wall = time.perf_counter() - started["step"]
            generation = sum(v for k, v in spans.items() if "generate" in k)
            scoring = sum(v for k, v in spans.items() if k in ("format", "order", "score"))
            sync = spans.get("sync_weights", 0.0)
            logps = max(spans.get("_prepare_inputs", 0.0) - generation - scoring - sync, 0.0)
            rest = wall - generation - scoring - sync
            # what a generating step generates: `steps_per_generation` micro-batches (the others: nothing)
            generated = args.per_device_train_batch_size * args.steps_per_generation
            steps.append({
                "step": state.global_step, "wall": wall, "generation": generation, "scoring": scoring,
                "sync": sync, "rest": rest, "logps": logps, "train": rest - logps,
                "completions": args.per_device_train_batch_size * args.gradient_accumulation_steps,
                "generated": generated if generation else 0,
            })  # fmt: skip

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "completions/mean_length" in logs and steps:
                steps[-1]["mean_completion_tokens"] = logs["completions/mean_length"]
                steps[-1]["reward"] = logs.get("reward")

    argv = [
        "--config", str(CONFIG), "--env_url", opts.env_url, "--output_dir", opts.output_dir,
        "--model_name_or_path", opts.model, "--max_steps", str(opts.steps), "--save_strategy", "no",
        "--prompt_style", opts.prompt_style, "--use_vllm", "true" if opts.engine == "vllm" else "false",
        "--vllm_mode", "colocate", "--logging_steps", "1", "--disable_tqdm", "true",
        "--dtype", resolve_dtype("auto", "cpu"),  # as `sched-train learn` passes it
        *shlex.split(opts.grpo_args),
    ]  # fmt: skip
    construct = time.perf_counter()
    run(*parse(argv), callbacks=[Split()])
    Path(opts.json).write_text(
        json.dumps({"engine": opts.engine, "startup_s": started["construct_end"] - construct, "steps": steps})
    )


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--engines", nargs="+", choices=["hf", "vllm"], default=["hf", "vllm"])
    cli.add_argument("--steps", type=int, default=4)
    cli.add_argument("--model", default="smollm2-135m-instruct")
    cli.add_argument("--prompt_style", default="guided")
    cli.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    cli.add_argument("--grpo_args", default="", help="Extra GRPO flags, after the config's.")
    cli.add_argument("--engine", help=argparse.SUPPRESS)  # worker mode
    cli.add_argument("--env_url", help=argparse.SUPPRESS)
    cli.add_argument("--output_dir", help=argparse.SUPPRESS)
    opts = cli.parse_args()
    if opts.engine:
        worker(opts)
        return

    from tests.conftest import start_server

    server = start_server(SCHED_TRAIN_SIZE="2000")
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for engine in opts.engines:
                out = Path(tmp) / engine
                cmd = [
                    sys.executable, __file__, "--engine", engine, "--env_url", server.url,
                    "--output_dir", str(out), "--json", str(Path(tmp) / f"{engine}.json"),
                    "--steps", str(opts.steps), "--model", opts.model,
                    "--prompt_style", opts.prompt_style, "--grpo_args", opts.grpo_args,
                ]  # fmt: skip
                print(f"[{engine}] {opts.steps} steps ...", flush=True)
                env = {**os.environ, "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING")}
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stderr[-3000:])
                    raise SystemExit(f"[{engine}] failed")
                results.append(json.loads((Path(tmp) / f"{engine}.json").read_text()))
    finally:
        server.stop()

    print(
        f"\n{'engine':<6} {'step':>4} {'wall s':>7} {'gen s':>7} {'score s':>7} {'sync s':>7} "
        f"{'rest s':>7} {'logps s':>7} {'train s':>7} {'tokens':>7}"
    )
    for r in results:
        for s in r["steps"]:
            print(
                f"{r['engine']:<6} {s['step']:>4} {s['wall']:>7.1f} {s['generation']:>7.1f} "
                f"{s['scoring']:>7.2f} "
                f"{s['sync']:>7.2f} {s['rest']:>7.1f} {s['logps']:>7.1f} {s['train']:>7.1f} "
                f"{s.get('mean_completion_tokens', 0):>7.0f}"
            )
    print()
    medians = {}
    for r in results:
        steps = r["steps"][1:] or r["steps"]  # the first step warms caches up
        med = {
            k: statistics.median(s[k] for s in steps)
            for k in ("wall", "generation", "scoring", "sync", "rest", "logps", "train")
        }
        # over every step: with `steps_per_generation` above the accumulation steps, one step generates
        # for the next ones, whose generation is 0
        every = r["steps"]
        tokens = sum(s.get("mean_completion_tokens", 0) * s.get("generated", 8) for s in every)
        generated = sum(s["generation"] for s in every)
        med["gen_tok_s"] = tokens / generated if generated else 0.0
        med["s_per_completion"] = sum(s["wall"] for s in every) / sum(s.get("completions", 8) for s in every)
        medians[r["engine"]] = med
        print(
            f"{r['engine']}: start-up {r['startup_s']:.1f} s; median over steps 2..{len(r['steps'])}: "
            f"wall {med['wall']:.1f} s = generation {med['generation']:.1f} + scoring {med['scoring']:.2f} "
            f"+ sync {med['sync']:.2f} + rest {med['rest']:.1f} (old log-probs {med['logps']:.1f}, "
            f"train {med['train']:.1f}); generation {med['gen_tok_s']:.1f} tok/s; over all steps "
            f"{med['s_per_completion']:.2f} s of step per completion"
        )
    if "hf" in medians and "vllm" in medians:
        print(
            f"vllm vs hf: step {medians['hf']['wall'] / medians['vllm']['wall']:.2f}x faster, "
            f"generation {medians['vllm']['gen_tok_s'] / medians['hf']['gen_tok_s']:.2f}x "
            "the tokens per second"
        )
    if opts.json:
        opts.json.write_text(json.dumps({"runs": results, "medians": medians}, indent=2))
        print(f"wrote {opts.json}")


if __name__ == "__main__":
    main()
