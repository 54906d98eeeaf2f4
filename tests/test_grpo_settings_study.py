"""bench/grpo_settings_study.py's arguments, speed figures and rule (the rule decides whether a faster GRPO
setting replaces `make learn`'s: docs/learning.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "grpo_settings_study", Path(__file__).parents[1] / "bench" / "grpo_settings_study.py"
)
assert SPEC is not None and SPEC.loader is not None
study = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(study)


def test_named_items_keep_their_order_and_refuse_bad_ones() -> None:
    assert study.named(["spg16=--steps_per_generation 16", "plain="], "arm") == {
        "spg16": "--steps_per_generation 16",
        "plain": "",
    }
    for bad in (["noequals"], ["=x"], ["a=1", "a=2"], ["sft=x"]):
        with pytest.raises(SystemExit):
            study.named(bad, "arm")


def test_reused_seconds_come_from_learns_timings(tmp_path: Path) -> None:
    (tmp_path / "grpo").mkdir()
    assert study.reused_seconds(tmp_path / "grpo") is None
    (tmp_path / "timings.json").write_text(json.dumps({"sft": 1120.0, "grpo": 2253.5}))
    assert study.reused_seconds(tmp_path / "grpo") == 2253.5


def test_step_seconds_summarise_trls_step_time_over_every_step(tmp_path: Path) -> None:
    assert study.step_seconds(tmp_path) is None
    # steps_per_generation 16: the reward is logged at generation steps only; every step has a step_time
    log = [
        {"step": 1, "reward": 30.0, "step_time": 130.0},
        {"step": 2, "loss": 0.1, "step_time": 27.5},
        {"step": 3, "loss": 0.2},
        {"step": 4, "loss": 0.0, "step_time": 29.0},
        {"train_runtime": 200.0},
    ]
    (tmp_path / "log_history.json").write_text(json.dumps(log))
    assert study.step_seconds(tmp_path) == {"min": 27.5, "max": 130.0, "total": 186.5}


BASE = {"score_ratio": 0.30, "valid": 0.40, "overlap": 0.05}


@pytest.mark.parametrize(
    ("candidate", "base_s", "cand_s", "adopted"),
    [
        ({"score_ratio": 0.30, "valid": 0.40}, 2250.0, 1850.0, True),
        ({"score_ratio": 0.281, "valid": 0.371}, 2250.0, 1850.0, True),  # within both margins
        ({"score_ratio": 0.35, "valid": 0.50}, 2250.0, 2250.0, False),  # better, but not faster
        ({"score_ratio": 0.27, "valid": 0.40}, 2250.0, 1850.0, False),  # score ratio 0.03 lower
        ({"score_ratio": 0.30, "valid": 0.36}, 2250.0, 1850.0, False),  # valid 4 points lower
        ({"score_ratio": 0.30, "valid": 0.40}, None, 1850.0, False),  # no time for the baseline
    ],
)
def test_the_rule_adopts_only_a_faster_setting_that_loses_nothing_visible(
    candidate: dict[str, float], base_s: float | None, cand_s: float, adopted: bool
) -> None:
    ok, why = study.adopt(BASE, candidate, base_s, cand_s)
    assert ok is adopted, why
