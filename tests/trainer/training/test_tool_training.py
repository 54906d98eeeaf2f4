"""`sched-train train --tool_checks N`: GRPO on the service's tool episodes, end to end on a tiny model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import LiveServer
from tests.trainer.training.test_grpo_e2e import argv, rescore
from trainer.training.grpo import parse, run

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def test_grpo_on_tool_episodes_scores_each_episodes_answer(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tools"
    args = argv(
        live_server.url, tiny_model_dir, out, 2, "--tool_checks", "2", "--max_tool_calling_iterations", "2"
    )
    trainer = run(*parse(args))
    scorer = trainer.reward_funcs[0].scorer
    assert trainer.reward_func_names == ["format", "order", "score"]  # no second reward from the environment
    assert trainer.tools and {t.__name__ for t in trainer.tools} == {"check_schedule", "submit"}
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logged) == 2 and scorer.requests == 2
    for metrics in logged:
        assert 0 <= metrics["tools/checks_per_episode"] <= 2
        assert 0 <= metrics["tools/submit_called_frac"] <= 1
        table = pd.read_parquet(out / "completions" / f"completions_{metrics['step']:05d}.parquet")
        assert len(table) == 2
        assert metrics["reward"] == pytest.approx(
            sum(r["reward"] for r in rescore_answers(live_server.url, table)) / len(table), abs=1e-4
        )
    assert (out / "adapter_model.safetensors").is_file()


def rescore_answers(url: str, table: pd.DataFrame) -> list[dict[str, object]]:
    """A random model calls no tool, so each episode's answer is its last (only) message's text."""
    from trainer.integrations.trl_tools import last_message_text

    completions = [list(c) if not isinstance(c, str) else c for c in table["completion"]]
    texts = [last_message_text(c) if not isinstance(c, str) else c for c in completions]
    return rescore(url, list(table["problem_id"]), texts)


def test_a_sampled_token_budget_stops_the_run(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """`--max_sampled_tokens`: the run stops after the step that reaches the budget, and a resumed run
    counts the tokens its checkpoint already sampled."""
    from trainer.training.progress import SampledTokenBudget

    out = tmp_path / "budget"
    trainer = run(*parse(argv(live_server.url, tiny_model_dir, out, 6, "--max_sampled_tokens", "40")))
    lengths = [
        h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h
    ]
    sampled = [sum(lengths[: i + 1]) * 2 for i in range(len(lengths))]  # 2 completions per step
    assert trainer.state.global_step == len(lengths) < 6
    assert sampled[-1] >= 40 and (len(sampled) == 1 or sampled[-2] < 40)
    budget = next(c for c in trainer.callback_handler.callbacks if isinstance(c, SampledTokenBudget))
    assert budget.sampled == pytest.approx(sampled[-1])


def test_the_budget_counts_each_logged_step_once() -> None:
    from types import SimpleNamespace

    from trainer.training.progress import SampledTokenBudget

    budget = SampledTokenBudget(1000, generation_batch_size=8)
    state = SimpleNamespace(
        log_history=[{"step": 2, "completions/mean_length": 10.0}, {"step": 2, "train_runtime": 1.0}],
        global_step=2,
    )
    control = SimpleNamespace(should_training_stop=False)
    budget.on_train_begin(None, state, control)  # resumed at step 2: 2 steps of 8 × 10 tokens
    assert budget.sampled == 160
    state.global_step = 5  # logging every 3 steps: the mean over steps 3–5
    budget.on_log(None, state, control, logs={"completions/mean_length": 30.0})
    assert budget.sampled == 160 + 3 * 8 * 30 and not control.should_training_stop
    budget.on_log(None, state, control, logs={"completions/mean_length": 30.0})  # the same step again
    assert budget.sampled == 880
    state.global_step = 6
    budget.on_log(None, state, control, logs={"completions/mean_length": 15.0})
    assert budget.sampled == 1000 and control.should_training_stop
