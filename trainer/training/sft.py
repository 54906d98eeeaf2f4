"""Cold-start SFT: teach a model the answer format and the method from the solver's traced answers.

    sched-env serve &
    sched-train sft --config trainer/configs/smollm2-135m-sft-cpu.yaml --env_url http://127.0.0.1:8000
    sched-train train --config trainer/configs/smollm2-135m-grpo-cpu.yaml --env_url http://127.0.0.1:8000 \\
        --model_name_or_path runs/sft-smollm2-135m-cpu                            # GRPO continues it

The dataset comes from the service, like GRPO's: prompts from `/v1/problems` (in the configured
`prompt_style`) and, for each problem, the optimal answer with its step-by-step `<think>` trace from
`POST /v1/solve {"trace": true}`, in TRL's conversational prompt-completion format, so the loss is on
the completion only. Every flag of `EnvSFTArguments`, `SFTConfig` and `ModelConfig` works on the command
line or in the YAML file (`TrlParser`). The output directory holds the LoRA adapter (or the model) and
`sched_env.json`, the prompt style it was trained with, which `train` and `eval` pick up.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from shared_schema.models import TRACE_STYLES, TraceStyle
from trainer.client.env_card import write_card
from trainer.client.env_client import EnvClient, EnvUnavailableError
from trainer.training.distributed import exit_if_distributed
from trainer.training.model_prep import resolve_model
from trainer.training.trl_cpu import cpu_ready

log = logging.getLogger("trainer.training.sft")


@dataclass
class EnvSFTArguments:
    """Which problems to learn from (the script arguments of `TrlParser`)."""

    env_url: str = field(default="http://127.0.0.1:8000", metadata={"help": "Base URL of the service."})
    split: str = field(default="train", metadata={"help": "Problem split to learn from."})
    dataset_size: int | None = field(default=500, metadata={"help": "Number of problems (traced answers)."})
    dataset_offset: int = field(
        default=0, metadata={"help": "First problem index (e.g. to keep SFT and GRPO problems apart)."}
    )
    difficulty: str | None = field(
        default=None, metadata={"help": "Difficulty preset (default: the split's)."}
    )
    prompt_style: str = field(
        default="default", metadata={"help": "Prompt style the service writes (default, compact, guided)."}
    )
    trace_style: str = field(
        default="sorted",
        metadata={
            "help": "How the traced answers list the events first: sorted (by start time), by_hour "
            "(a scan of the day's hours, for prompts that list them unsorted) or checked (that scan with "
            "each event's duration sum and overlap check written out)."
        },
    )
    tool_share: float = field(
        default=0.0,
        metadata={
            "help": "Share of the problems written as tool episodes (check_schedule, then submit; "
            "trainer/training/tool_sft.py) instead of single answers, for `train --tool_checks`. Default 0."
        },
    )
    tool_checks: int = field(default=2, metadata={"help": "Check budget of those episodes."})
    env_timeout: float = field(default=60.0, metadata={"help": "Seconds per HTTP call."})
    env_health_timeout: float = field(default=60.0, metadata={"help": "Seconds to wait for /health."})
    model_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Cache of converted models (default $SCHED_MODEL_CACHE or ~/.cache/sched-rl)."},
    )


def build_sft_dataset(
    client: EnvClient,
    split: str,
    size: int | None,
    offset: int = 0,
    difficulty: str | None = None,
    prompt_style: str = "default",
    tool_share: float = 0.0,
    tool_checks: int = 2,
    env_url: str | None = None,
    trace_style: str = "sorted",
) -> Any:
    """Rows `prompt` (the served chat messages), `completion` (the traced optimal answer) and `problem_id`.
    With `tool_share` > 0, that share of the problems are tool episodes against the service at `env_url`
    (trainer/training/tool_sft.py) and every row has `tools` (their JSON schemas, or None)."""
    from datasets import Dataset

    problems = client.all_problems(
        split, limit=size, difficulty=difficulty, prompt_style=prompt_style, offset=offset
    )
    if not problems:
        raise ValueError(f"the service has no problems in split {split!r} from offset {offset}")
    if tool_share > 0:
        from trainer.training.tool_sft import mixed_rows

        if env_url is None:
            raise ValueError("tool episodes need the service's env_url")
        rows = mixed_rows(
            client,
            problems,
            tool_share,
            tool_checks,
            prompt_style,
            env_url,
            trace_style=cast(TraceStyle, trace_style),
        )
        return Dataset.from_list(rows)
    rows = [
        {
            "prompt": [m.model_dump() for m in p.prompt],
            "completion": [
                {
                    "role": "assistant",
                    "content": client.solve(p, True, cast(TraceStyle, trace_style)).completion,
                }
            ],
            "problem_id": p.id,
        }
        for p in problems
    ]
    return Dataset.from_list(rows)


def run_sft(
    script_args: EnvSFTArguments,
    training_args: Any,
    model_args: Any,
    callbacks: Sequence[Any] = (),
    remove_callbacks: Sequence[Any] = (),
) -> Any:
    """Fine-tune on traced answers and save the adapter (or model) with its card; returns the trainer.

    `remove_callbacks` are transformers callback classes to take off (e.g. the default printer, when a
    caller prints its own progress).
    """
    from trl.trainer.sft_trainer import SFTTrainer
    from trl.trainer.utils import get_peft_config

    if script_args.trace_style not in TRACE_STYLES:
        raise ValueError(f"trace_style must be one of {TRACE_STYLES}, got {script_args.trace_style!r}")
    if not 0.0 <= script_args.tool_share <= 1.0:
        raise ValueError(f"tool_share must be between 0 and 1, got {script_args.tool_share}")
    with EnvClient.from_url(script_args.env_url, timeout=script_args.env_timeout) as client:
        health = client.wait_until_healthy(timeout=script_args.env_health_timeout)
        dataset = build_sft_dataset(
            client,
            script_args.split,
            script_args.dataset_size,
            script_args.dataset_offset,
            script_args.difficulty,
            script_args.prompt_style,
            script_args.tool_share,
            script_args.tool_checks,
            script_args.env_url,
            script_args.trace_style,
        )
    log.info(
        "%d traced answers (%s prompts) from %s", len(dataset), script_args.prompt_style, script_args.env_url
    )

    cache = Path(script_args.model_cache_dir) if script_args.model_cache_dir else None
    model_path = resolve_model(model_args.model_name_or_path, cache)
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }
    tokenizer = None
    if script_args.tool_share > 0:  # a template that renders tool calls (SmolLM2's renders none)
        from transformers import AutoTokenizer

        from trainer.client.tool_env import tool_calling_tokenizer

        tokenizer = tool_calling_tokenizer(AutoTokenizer.from_pretrained(model_path))
    trainer = SFTTrainer(
        model=model_path,
        processing_class=tokenizer,
        args=training_args,
        train_dataset=dataset.remove_columns("problem_id"),
        peft_config=get_peft_config(model_args),
        callbacks=cpu_ready(callbacks),
    )
    for callback in remove_callbacks:
        trainer.remove_callback(callback)
    trainer.train(resume_from_checkpoint=_resume(training_args))
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        if trainer.processing_class is not None:  # SFTTrainer loads the model's tokenizer when given none
            trainer.processing_class.save_pretrained(training_args.output_dir)
        write_card(
            training_args.output_dir,
            prompt_style=script_args.prompt_style,
            phase="sft",
            base_model=model_path,
            reward_version=health.reward_version,
            problems=f"{script_args.split}[{script_args.dataset_offset}:"
            f"{script_args.dataset_offset + len(dataset)}]",
            trace_style=script_args.trace_style,
            tool_share=script_args.tool_share,
            tool_checks=script_args.tool_checks if script_args.tool_share > 0 else None,
        )
    return trainer


def _resume(training_args: Any) -> str | None:
    from trainer.training.grpo import resume_path

    return resume_path(training_args.resume_from_checkpoint, training_args.output_dir)


def parse(argv: Sequence[str] | None = None) -> tuple[Any, Any, Any]:
    """`--config FILE.yaml` plus overrides → (EnvSFTArguments, SFTConfig, ModelConfig)."""
    from trl.scripts._hf_argparser import DataClassType
    from trl.scripts.utils import TrlParser
    from trl.trainer.model_config import ModelConfig
    from trl.trainer.sft_config import SFTConfig

    types = [DataClassType(t) for t in (EnvSFTArguments, SFTConfig, ModelConfig)]  # TRL's own annotation
    parser = TrlParser(types, prog="sched-train sft")
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    return script_args, training_args, model_args


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, fine-tune, save; exit code 3 with a clear message when the service is unreachable."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    script_args, training_args, model_args = parse(argv)
    try:
        trainer = run_sft(script_args, training_args, model_args)
    except EnvUnavailableError as e:
        print(f"\nSFT stopped: the environment service is unreachable.\n  {e}", file=sys.stderr)
        exit_if_distributed(3)
        return 3
    trainer.end()
    if trainer.accelerator.is_main_process:
        print(
            f"saved to {training_args.output_dir}; continue with GRPO: sched-train train --config ... "
            f"--model_name_or_path {training_args.output_dir}"
        )
    exit_if_distributed(0)  # before `trainer` is freed: see trainer/training/distributed.py
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
