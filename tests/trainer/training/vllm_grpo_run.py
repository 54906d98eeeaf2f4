"""A GRPO run with vLLM generating, in its own process (a test helper run by `test_grpo_vllm.py`).

vLLM's colocated engine initialises `torch.distributed` and rebinds `torch.set_num_threads` in the
process that starts it, so each run gets a fresh interpreter instead of the test session's. The run
trains a tiny model against a live service and writes `result.json` to `--output_dir`: the logged
metrics of every step, the completions scored, and the service's score request count.

`--perturb`: after each optimizer step, a callback writes new random LoRA weights (as an optimizer
step would, but large: the tiny model's rewards are all zero, so its real gradients are too). The
next step's generations then come from vLLM only if the weights reached it: TRL logs, per step, how
far vLLM's log-probabilities of the sampled tokens are from the trainer's
(`sampling/sampling_logp_difference/*`). `--skip_sync_from N` turns the sync into a no-op from step N
on, the control that shows a missed sync is seen.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from trainer.training.grpo import parse, run


class Perturb(TrainerCallback):  # type: ignore[misc]  # transformers' callback base is untyped
    """New random LoRA weights after every optimizer step (seeded per step)."""

    def __init__(self, skip_sync_from: int | None) -> None:
        self.skip_sync_from = skip_sync_from

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        generator = torch.Generator().manual_seed(state.global_step)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
        if self.skip_sync_from is not None and state.global_step + 1 >= self.skip_sync_from:
            SKIP["on"] = True  # the next step's sync is skipped


SKIP = {"on": False}


def main() -> None:
    cli = argparse.ArgumentParser()
    cli.add_argument("--env_url", required=True)
    cli.add_argument("--model", required=True)
    cli.add_argument("--output_dir", type=Path, required=True)
    cli.add_argument("--mode", choices=["colocate", "server"], default="colocate")
    cli.add_argument("--vllm_url", default=None)
    cli.add_argument("--steps", type=int, default=2)
    cli.add_argument("--perturb", action="store_true")
    cli.add_argument("--skip_sync_from", type=int, default=None)
    opts = cli.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )  # as `sched-train train`

    argv = [
        "--env_url", opts.env_url, "--model_name_or_path", opts.model, "--output_dir", str(opts.output_dir),
        "--max_steps", str(opts.steps), "--dataset_size", "16", "--per_device_train_batch_size", "2",
        "--num_generations", "2", "--max_completion_length", "16", "--bf16", "false",
        "--gradient_checkpointing", "false", "--use_peft", "--lora_r", "4", "--lora_alpha", "8",
        "--lora_target_modules", "q_proj", "v_proj", "--lora_dropout", "0", "--learning_rate", "1e-3", "--logging_steps", "1",
        "--save_strategy", "no", "--report_to", "none", "--log_completions", "--num_completions_to_print", "0",
        "--seed", "0", "--env_max_attempts", "2", "--env_backoff", "0.01", "--env_health_timeout", "10",
        "--use_vllm", "true", "--vllm_mode", opts.mode,
    ]  # fmt: skip
    if opts.vllm_url:
        argv += ["--vllm_server_base_url", opts.vllm_url]
    callbacks = [Perturb(opts.skip_sync_from)] if opts.perturb else []

    from trl.generation.vllm_generation import VLLMGeneration

    from trainer.training import vllm_cpu

    vllm_cpu.install()  # what `run` installs (idempotent), so that the control below wraps it
    patched = VLLMGeneration.sync_weights

    def sync_unless_skipped(self: Any) -> None:
        if not SKIP["on"]:
            patched(self)

    if opts.skip_sync_from is not None:
        VLLMGeneration.sync_weights = sync_unless_skipped  # type: ignore[method-assign]
    trainer = run(*parse(argv), callbacks=callbacks)
    if opts.skip_sync_from is not None:
        VLLMGeneration.sync_weights = patched  # type: ignore[method-assign]
    scorer = trainer.reward_funcs[0].scorer
    (opts.output_dir / "result.json").write_text(
        json.dumps({
            "use_vllm": bool(trainer.use_vllm),
            "vllm_mode": trainer.args.vllm_mode,
            "steps": [h for h in trainer.state.log_history if "reward" in h],
            "requests": scorer.requests,
            "components": scorer.component_names,
            "weights": scorer.weights,
        })
    )  # fmt: skip


if __name__ == "__main__":
    main()
