"""bench/sft_style_study.py keeps each trained arm's SFT seconds, so that a rerun which finds the arm
trained reports the time the training took, not the moment it took to find it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "sft_style_study", Path(__file__).parents[1] / "bench" / "sft_style_study.py"
)
assert SPEC is not None and SPEC.loader is not None
study = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(study)


def test_trained_now_is_measured_and_kept(tmp_path: Path) -> None:
    assert study.sft_seconds(tmp_path, 2491.04, trained_before=False) == 2491.0
    assert json.loads((tmp_path / "timings.json").read_text()) == {"sft": 2491.0}


def test_found_trained_reads_the_kept_time_back(tmp_path: Path) -> None:
    study.sft_seconds(tmp_path, 2491.0, trained_before=False)
    assert study.sft_seconds(tmp_path, 0.2, trained_before=True) == 2491.0
    assert json.loads((tmp_path / "timings.json").read_text()) == {"sft": 2491.0}  # not overwritten


def test_found_trained_without_a_kept_time_is_unknown_not_zero(tmp_path: Path) -> None:
    assert study.sft_seconds(tmp_path, 0.2, trained_before=True) is None
    assert not (tmp_path / "timings.json").exists()
