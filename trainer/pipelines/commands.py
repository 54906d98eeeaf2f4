"""`sched-train learn`: the learning pipeline's command on the trainer CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def learn(
    output_dir: Annotated[Path, typer.Option("--output_dir", help="Where everything goes.")] = Path(
        "runs/learn"
    ),
    env_url: Annotated[
        str | None, typer.Option("--env_url", help="Service URL; default: start one locally for the run.")
    ] = None,
    base_model: Annotated[str, typer.Option("--base_model", help="Model to start from.")] = (
        "smollm2-135m-instruct"
    ),
    sft_config: Annotated[Path | None, typer.Option("--sft_config", help="SFT phase YAML.")] = None,
    grpo_config: Annotated[Path | None, typer.Option("--grpo_config", help="GRPO phase YAML.")] = None,
    prompt_style: Annotated[
        str, typer.Option("--prompt_style", help="default, compact or guided.")
    ] = "default",
    trace_style: Annotated[
        str,
        typer.Option(
            "--trace_style",
            help="How SFT's traced answers list the events before choosing: sorted (by start time) or "
            "by_hour (a scan of the day's hours; docs/sft-style-study.md).",
        ),
    ] = "by_hour",
    eval_split: Annotated[str, typer.Option("--eval_split", help="Held-out split.")] = "test",
    eval_size: Annotated[int, typer.Option("--eval_size", help="Held-out problems.")] = 100,
    eval_max_new_tokens: Annotated[int, typer.Option("--eval_max_new_tokens")] = 640,
    eval_batch_size: Annotated[int, typer.Option("--eval_batch_size", help="Prompts per generate.")] = 50,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="Weights in every phase: float32, bfloat16, or auto (bfloat16 where the CPU or GPU "
            "computes it natively, else float32).",
        ),
    ] = "auto",
    eval_dtype: Annotated[
        str | None,
        typer.Option(
            "--eval_dtype",
            help="The evaluations' weights when not --dtype's: float32 makes greedy vLLM answers the same "
            "from call to call on a CPU (bfloat16's are not), at about 3 times an evaluation's time "
            "(docs/learning.md).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="What generates in the evaluations and GRPO: hf (transformers), vllm, or auto (vLLM where a "
            "build of it runs here).",
        ),
    ] = "auto",
    eval_enforce_eager: Annotated[
        bool,
        typer.Option(
            "--eval_enforce_eager",
            help="With --engine vllm: the evaluations' engines skip vLLM's compilation. On a CPU they start "
            "about twice as fast and decode about a quarter slower; worth it for short evaluations "
            "(docs/vllm-cpu.md). GRPO's engine is TRL's and compiles.",
        ),
    ] = False,
    joint_eval: Annotated[
        bool,
        typer.Option(
            "--joint_eval",
            help="With --engine hf: evaluate base, SFT and GRPO after training in one generation whose "
            "batches mix the three models' rows (PEFT mixed-adapter batches; not faster on a CPU), "
            "instead of one generation after each phase. --eval_batch_size is then the rows of all three.",
        ),
    ] = False,
    secondary_eval: Annotated[
        bool,
        typer.Option(
            "--secondary_eval/--no_secondary_eval",
            help="Also evaluate each phase in the training prompt style (the headline is always the "
            "published `default` prompt); --no_secondary_eval skips it.",
        ),
    ] = True,
    curriculum: Annotated[
        bool,
        typer.Option(
            "--curriculum",
            help="GRPO on a curriculum session of the service (difficulty and prompt scaffold follow the "
            "learner) instead of a fixed slice of the train split.",
        ),
    ] = False,
    curriculum_config: Annotated[
        str | None,
        typer.Option("--curriculum_config", help='JSON of CurriculumConfig fields, e.g. {"target": 0.5}.'),
    ] = None,
    sft_args: Annotated[
        str, typer.Option("--sft_args", help='Extra SFT flags, e.g. "--dataset_size 64".')
    ] = "",
    grpo_args: Annotated[
        str, typer.Option("--grpo_args", help='Extra GRPO flags, e.g. "--max_steps 4".')
    ] = "",
) -> None:
    """Base eval → SFT → eval → GRPO → eval on held-out problems; learning.json and report.md.

    Resumable: run it again after an interruption and the finished phases are skipped.
    """
    import shlex

    from trainer.pipelines.learn import LearnSettings
    from trainer.pipelines.learn import learn as run_learn

    defaults = LearnSettings()
    run_learn(
        LearnSettings(
            output_dir=output_dir,
            env_url=env_url,
            base_model=base_model,
            sft_config=sft_config or defaults.sft_config,
            grpo_config=grpo_config or defaults.grpo_config,
            prompt_style=prompt_style,
            trace_style=trace_style,
            eval_split=eval_split,
            eval_size=eval_size,
            eval_max_new_tokens=eval_max_new_tokens,
            eval_batch_size=eval_batch_size,
            dtype=dtype,
            eval_dtype=eval_dtype,
            engine=engine,
            eval_enforce_eager=eval_enforce_eager,
            joint_eval=joint_eval,
            secondary_eval=secondary_eval,
            curriculum=curriculum,
            curriculum_config=curriculum_config,
            sft_args=tuple(shlex.split(sft_args)),
            grpo_args=tuple(shlex.split(grpo_args)),
        )
    )


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to `sched-train`."""
    app.command("learn")(learn)
