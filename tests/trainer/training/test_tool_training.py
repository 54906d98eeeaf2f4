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
