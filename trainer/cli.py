"""`sched-train`: GRPO training, model preparation, evaluation and reports, all against the service."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train and evaluate models against the scheduling environment.", no_args_is_help=True)


def _register() -> None:
    # Each side of the trainer registers its own commands, so the modules stay independent.
    from trainer.evaluation.commands import register as register_eval
    from trainer.pipelines.commands import register as register_pipelines
    from trainer.training.commands import register as register_train

    register_train(app)
    register_pipelines(app)
    register_eval(app)


_register()

if __name__ == "__main__":
    app()
