"""GRPO training against the environment service: prompts from `/v1/problems`, rewards from `/v1/score`.

    sched-env serve &                                     # the service, http://127.0.0.1:8000
    sched-train train --config trainer/configs/smollm2-135m-cpu.yaml --env_url http://127.0.0.1:8000 \\
        --max_steps 2 --output_dir runs/smollm2
    sched-train train --config trainer/configs/qwen2.5-coder-7b-lora.yaml --env_url http://env:8000
    sched-train train --config ... --output_dir runs/x --resume_from_checkpoint last

Every flag of `EnvScriptArguments`, `GRPOConfig` and `ModelConfig` works on the command line or in the
YAML file (TRL's `TrlParser`). `run()` reads top to bottom: connect, build the rewards and the dataset,
build `GRPOTrainer`, train, save. Rewards are computed only by the service; if it stays
unreachable after the retries, training stops with `EnvUnavailableError` and the checkpoints already
written stay as they were.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.client.env_card import trained_prompt_style, write_card
from trainer.client.env_client import EnvClient, EnvUnavailableError
from trainer.training.distributed import exit_if_distributed
from trainer.training.model_prep import resolve_model
from trainer.training.reward_funcs import EnvScorer
from trainer.training.trl_cpu import cpu_ready
from trainer.training.vllm_cpu import generation_engine, set_weights_dir, vllm_distribution
from trainer.training.vllm_cpu import install as install_vllm_cpu_sync

log = logging.getLogger("trainer.training.grpo")


@dataclass
class EnvScriptArguments:
    """Where the environment is and what to train on (the script arguments of `TrlParser`)."""

    env_url: str = field(default="http://127.0.0.1:8000", metadata={"help": "Base URL of the service."})
    split: str = field(default="train", metadata={"help": "Problem split to train on."})
    profile: str = field(default="default", metadata={"help": "Reward profile (see `/v1/info`)."})
    dataset_size: int | None = field(default=None, metadata={"help": "First N problems (default: all)."})
    dataset_offset: int = field(
        default=0, metadata={"help": "First problem index (e.g. past the problems SFT used)."}
    )
    difficulty: str | None = field(
        default=None, metadata={"help": "Difficulty preset (default: the split's)."}
    )
    prompt_style: str | None = field(
        default=None,
        metadata={
            "help": "Prompt style the service writes (default, compact, guided); default: the style the "
            "model was fine-tuned with (its sched_env.json), else `default`."
        },
    )
    max_prompt_tokens: int | None = field(
        default=None, metadata={"help": "Drop problems whose chat prompt is longer than this many tokens."}
    )
    env_timeout: float = field(default=60.0, metadata={"help": "Seconds per HTTP call."})
    env_retry_timeout: float = field(
        default=120.0,
        metadata={
            "help": "Seconds a call is retried on connection errors/5xx (a service restart) before stopping."
        },
    )
    env_max_attempts: int | None = field(
        default=None, metadata={"help": "Optional cap on attempts per call within env_retry_timeout."}
    )
    env_backoff: float = field(
        default=0.5, metadata={"help": "First retry wait, seconds (doubles up to 8, with jitter)."}
    )
    env_api_key: str | None = field(
        default=None,
        metadata={"help": "API key of a service run with SCHED_API_KEYS (default: $SCHED_API_KEY)."},
    )
    env_health_timeout: float = field(
        default=60.0, metadata={"help": "Seconds to wait for /health at start."}
    )
    model_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Cache of converted models (default $SCHED_MODEL_CACHE or ~/.cache/sched-rl)."},
    )
    curriculum: bool = field(
        default=False,
        metadata={
            "help": "Train on a curriculum session of the service (docs/contract.md section 7): problems "
            "served at the difficulty that keeps the group success rate near its target, the prompt "
            "scaffold fading as the learner masters it. Replaces split/dataset_size/difficulty/prompt_style."
        },
    )
    curriculum_config: str | None = field(
        default=None,
        metadata={"help": 'JSON of CurriculumConfig fields, e.g. \'{"target": 0.5, "window": 4}\'.'},
    )
    tool_checks: int | None = field(
        default=None,
        metadata={
            "help": "Train on tool episodes (docs/training.md): each rollout may call check_schedule (this "
            "many checks) and submit; its answer is the submitted one, else its last message, scored as "
            "single-turn answers are. Default: single-turn, no tools."
        },
    )
    max_sampled_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Stop once the run has sampled this many completion tokens (the model's own, not tool "
            "results; TRL's completions/mean_length × generation batch per step): equal-compute comparisons "
            "of runs whose completions differ in length. Training still stops at max_steps."
        },
    )
    vllm_weights_dir: str | None = field(
        default=None,
        metadata={
            "help": "vllm_mode=server on a CPU: folder the merged weights are written to after each step, "
            "read by the vLLM server at the same path (default OUTPUT_DIR/vllm-weights)."
        },
    )


def build_dataset(
    client: EnvClient,
    split: str,
    size: int | None,
    difficulty: str | None,
    prompt_style: str = "default",
    offset: int = 0,
) -> Any:
    """Columns `prompt` (the service's chat messages) and `problem_id` (passed to the reward)."""
    from datasets import Dataset

    problems = client.all_problems(
        split, limit=size, difficulty=difficulty, prompt_style=prompt_style, offset=offset
    )
    if not problems:
        raise ValueError(f"the service has no problems in split {split!r}")
    rows = [{"prompt": [m.model_dump() for m in p.prompt], "problem_id": p.id} for p in problems]
    return Dataset.from_list(rows)


def drop_long_prompts(dataset: Any, tokenizer: Any, max_tokens: int | None) -> Any:
    """Keep the problems whose templated prompt fits in `max_tokens` (a cut prompt would lose events)."""
    if max_tokens is None:
        return dataset

    def fits(row: dict[str, Any]) -> bool:
        encoded = tokenizer.apply_chat_template(
            row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return len(encoded["input_ids"]) <= max_tokens

    kept = dataset.filter(fits)
    if len(kept) < len(dataset):
        log.warning(
            "dropped %d of %d prompts over %d tokens", len(dataset) - len(kept), len(dataset), max_tokens
        )
    if len(kept) == 0:
        raise ValueError(f"every prompt is longer than max_prompt_tokens={max_tokens}")
    return kept


def resume_path(value: str | None, output_dir: str) -> str | None:
    """`--resume_from_checkpoint last` (or `true`) → the newest checkpoint in `output_dir`."""
    if value is None or value.lower() in ("", "false", "none"):
        return None
    if value.lower() in ("last", "true"):
        from transformers.trainer_utils import get_last_checkpoint

        found: str | None = (
            get_last_checkpoint(output_dir)  # type: ignore[no-untyped-call]  # transformers leaves it untyped
            if Path(output_dir).is_dir()
            else None
        )
        if found is None:
            raise FileNotFoundError(f"no checkpoint-* folder in {output_dir} to resume from")
        return str(found)
    return value


def run(
    script_args: EnvScriptArguments,
    training_args: Any,
    model_args: Any,
    callbacks: Sequence[Any] = (),
    remove_callbacks: Sequence[Any] = (),
    **trainer_kwargs: Any,
) -> Any:
    """Train with GRPO against the service and save the model; returns the `GRPOTrainer`.

    `model_name_or_path` may be an SFT output (a LoRA adapter: merged into its base first, then a fresh
    adapter is trained on top). `remove_callbacks` are transformers callback classes to take off (e.g.
    the default printer, when the caller prints its own progress). `trainer_kwargs` go to
    `GRPOTrainer` as they are (e.g. TRL's `rollout_func` for custom generation).
    """
    import torch
    from trl.trainer.grpo_trainer import GRPOTrainer, RewardFunc
    from trl.trainer.utils import get_peft_config

    client = EnvClient.from_url(
        script_args.env_url,
        timeout=script_args.env_timeout,
        api_key=script_args.env_api_key,
        retry_timeout=script_args.env_retry_timeout,
        max_attempts=script_args.env_max_attempts,
        backoff_initial=script_args.env_backoff,
    )
    health = client.wait_until_healthy(timeout=script_args.env_health_timeout)
    log.info("environment %s healthy, reward_version %s", script_args.env_url, health.reward_version)

    feed = None
    if script_args.curriculum:
        from trainer.training.curriculum import CurriculumFeed, parse_config

        batch_prompts = training_args.generation_batch_size // training_args.num_generations
        feed = CurriculumFeed(client, parse_config(script_args.curriculum_config), batch_prompts)
        training_args.shuffle_dataset = False  # a shuffle buffer would read 1000 problems ahead
    scorer = EnvScorer(client, script_args.profile, on_results=feed.observe_results if feed else None)
    if training_args.reward_weights is not None and list(training_args.reward_weights) != scorer.weights:
        raise ValueError(
            f"reward weights come from the service's profile {script_args.profile!r} ({scorer.weights}); "
            "remove reward_weights from the config or pick another --profile"
        )
    training_args.reward_weights = scorer.weights

    engine = generation_engine(training_args.use_vllm, torch.cuda.is_available(), vllm_distribution())
    log.info("generation: %s", engine.reason)
    training_args.use_vllm = engine.use_vllm
    if engine.use_vllm:
        install_vllm_cpu_sync()  # TRL's own sync on CUDA; vLLM's in-place reload on a CPU

    cache = Path(script_args.model_cache_dir) if script_args.model_cache_dir else None
    model_path = resolve_model(model_args.model_name_or_path, cache)
    model_init_kwargs = {
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }
    training_args.model_init_kwargs = model_init_kwargs

    style = script_args.prompt_style or trained_prompt_style(model_path)
    if feed is not None:
        dataset = feed.dataset()
        style = "default"  # where the curriculum ends: the published prompt
    else:
        dataset = build_dataset(
            client,
            script_args.split,
            script_args.dataset_size,
            script_args.difficulty,
            style,
            script_args.dataset_offset,
        )
    if script_args.max_prompt_tokens is not None and feed is None:
        from transformers import AutoTokenizer

        dataset = drop_long_prompts(
            dataset, AutoTokenizer.from_pretrained(model_path), script_args.max_prompt_tokens
        )

    if script_args.tool_checks is not None:
        if feed is not None:
            raise ValueError("--tool_checks and --curriculum do not combine yet")
        from transformers import AutoTokenizer

        from trainer.client.tool_env import tool_calling_tokenizer, training_environment

        trainer_kwargs.setdefault(
            "processing_class", tool_calling_tokenizer(AutoTokenizer.from_pretrained(model_path))
        )
        trainer_kwargs["environment_factory"] = training_environment(
            script_args.env_url,
            script_args.tool_checks,
            style,
            script_args.profile,
            script_args.env_api_key,
        )

    callbacks = list(callbacks)
    if script_args.max_sampled_tokens is not None:
        from trainer.training.progress import SampledTokenBudget

        callbacks.append(
            SampledTokenBudget(script_args.max_sampled_tokens, training_args.generation_batch_size)
        )

    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=list[RewardFunc](scorer.reward_funcs()),
        args=training_args,
        train_dataset=dataset,
        peft_config=get_peft_config(model_args),
        callbacks=cpu_ready(callbacks),
        **trainer_kwargs,
    )
    for callback in remove_callbacks:
        trainer.remove_callback(callback)
    if engine.use_vllm:
        set_weights_dir(
            trainer.vllm_generation,
            script_args.vllm_weights_dir or Path(training_args.output_dir) / "vllm-weights",
        )
    trainer.train(
        resume_from_checkpoint=resume_path(training_args.resume_from_checkpoint, training_args.output_dir)
    )
    trainer.save_model(training_args.output_dir)  # writes on the main process only
    client.close()
    if trainer.accelerator.is_main_process:
        write_card(
            training_args.output_dir,
            prompt_style=style,
            phase="grpo",
            base_model=model_path,
            profile=script_args.profile,
            reward_version=health.reward_version,
        )
        if feed is not None:  # where the session ended, and how it moved (docs/contract.md section 7)
            path = Path(training_args.output_dir) / "curriculum.json"
            path.write_text(feed.status.model_dump_json(indent=2) + "\n", encoding="utf-8")
        what = "LoRA adapter" if model_args.use_peft else "model"
        log.info("%s saved to %s (%d score requests)", what, training_args.output_dir, scorer.requests)
    return trainer


def parse(argv: Sequence[str] | None = None) -> tuple[Any, Any, Any]:
    """`--config FILE.yaml` plus overrides → (EnvScriptArguments, GRPOConfig, ModelConfig)."""
    from trl.scripts._hf_argparser import DataClassType
    from trl.scripts.utils import TrlParser
    from trl.trainer.grpo_config import GRPOConfig
    from trl.trainer.model_config import ModelConfig

    types = [DataClassType(t) for t in (EnvScriptArguments, GRPOConfig, ModelConfig)]  # TRL's own annotation
    parser = TrlParser(types, prog="sched-train train")
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    return script_args, training_args, model_args


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, train, save; exit code 3 with a clear message when the service is unreachable."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    script_args, training_args, model_args = parse(argv)
    try:
        trainer = run(script_args, training_args, model_args)
    except EnvUnavailableError as e:
        print(
            f"\nTraining stopped: the environment service is unreachable.\n  {e}\n"
            f"  {_checkpoint_advice(training_args.output_dir)}",
            file=sys.stderr,
        )
        exit_if_distributed(3)
        return 3
    trainer.end()
    if trainer.accelerator.is_main_process:
        what = "LoRA adapter" if model_args.use_peft else "model"
        print(f"{what} saved to {training_args.output_dir}")
    exit_if_distributed(0)  # before `trainer` is freed: see trainer/training/distributed.py
    return 0


def _checkpoint_advice(output_dir: str) -> str:
    """Where the last intact checkpoint is and how to resume from it."""
    folder = Path(output_dir)
    if not folder.is_dir() or not any(folder.glob("checkpoint-*")):
        return "No checkpoint was written before the failure; start the service and run again."
    return (
        f"Checkpoints are intact; the last is {resume_path('last', output_dir)}. Start the service, then "
        f"resume with the same command plus `--resume_from_checkpoint last`."
    )


if __name__ == "__main__":
    raise SystemExit(main())
