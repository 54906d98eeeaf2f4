"""verl's own reward managers (`NaiveRewardManager` with `compute_score`, `BatchRewardManager` with
`compute_score_batch`, verl 0.9.1 from the registry) score a batch through a live service, and every
reward equals `/v1/score`'s. verl runs in a fresh interpreter with .venv/clients/verl on its path
(`make test` installs it there without dependencies: verl pins transformers<5.11 and ray[default], which
would not install beside .venv); tests/trainer/integrations/verl_reward_managers.py is verl's side."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.conftest import CLIENTS, LiveServer, missing_tool, run_client_script

ROOT = Path(__file__).resolve().parents[3]
VERL = CLIENTS / "verl"
SCRIPT = Path(__file__).with_name("verl_reward_managers.py")


def test_verl_reward_managers_score_through_the_service(live_server: LiveServer) -> None:
    from trainer.training.model_prep import resolve_model

    if not (VERL / "verl").is_dir():
        missing_tool("verl is not installed (`make test` installs it into .venv/clients/verl)")
    out = run_client_script(
        sys.executable,
        SCRIPT,
        resolve_model("smollm2-135m-instruct"),
        pythonpath=f"{VERL}{os.pathsep}{ROOT}",
        SCHED_ENV_URL=live_server.url,
    )
    assert out["verl"] == "0.9.1"
    expected = out["expected"]
    assert expected[0] == 100.0 and expected[1] == 0.0 and 0.0 < expected[2] < 100.0  # gold, empty, fewer
    for manager in ("naive", "batch"):
        assert out[manager] == expected  # on each sample's last response token
        assert out[f"{manager}_elsewhere"] == 0.0  # and nowhere else
        assert {"reward_format", "reward_order", "reward_score", "score_ratio", "valid"} <= set(
            out[f"{manager}_extra"]
        )  # the components, for verl to log
