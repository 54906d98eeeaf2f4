"""`make demo` pieces: its settings and the per-component table (the pipeline itself is test_learn's)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from trainer.pipelines.demo import component_table, demo_settings
from trainer.training.grpo import parse as parse_grpo
from trainer.training.sft import parse as parse_sft


def test_demo_is_the_learning_pipeline_shrunk() -> None:
    s = demo_settings(Path("runs/demo"))
    assert s.env_url is None  # starts its own service
    assert (s.eval_size, s.eval_split, s.prompt_style, s.trace_style) == (8, "test", "guided", "sorted")
    assert s.secondary_eval_phases == ("sft", "grpo")  # the base model on the published prompt only
    # each phase evaluated after it, both styles in one batch (`joint_eval` measured slower in v17)
    assert not s.joint_eval and s.eval_batch_size == 16
    sft_script, sft_args, _ = parse_sft(["--config", str(s.sft_config), *s.sft_args])
    assert sft_script.dataset_size == 80 and sft_args.completion_only_loss
    grpo_script, grpo_args, _ = parse_grpo(["--config", str(s.grpo_config), *s.grpo_args])
    assert (grpo_args.max_steps, grpo_args.num_generations, grpo_args.per_device_train_batch_size) == (
        2,
        4,
        4,
    )
    assert grpo_args.generation_batch_size == 4  # one problem per step, one pass (not the CPU config's 4 x 2)
    assert grpo_args.temperature == 0.7  # sampled, so a group's answers differ, but not rambling
    # GRPO draws problems SFT never saw
    assert grpo_script.dataset_offset >= sft_script.dataset_offset + sft_script.dataset_size


def test_component_table_shows_points_at_first_and_last_step() -> None:
    history = [
        {
            "step": 1,
            "reward": 12.0,
            "rewards/format/mean": 0.5,
            "rewards/order/mean": 0.35,
            "rewards/score/mean": 0.0,
        },
        {"step": 1, "loss": 0.1},
        {
            "step": 4,
            "reward": 44.0,
            "rewards/format/mean": 1.0,
            "rewards/order/mean": 0.5,
            "rewards/score/mean": 0.4,
        },
    ]
    console = Console(record=True, width=100)
    console.print(component_table(history, {"format": 10.0, "order": 20.0, "score": 70.0}))
    text = console.export_text()
    assert "step 1" in text and "step 4" in text
    assert "5.00" in text and "10.00" in text and "28.00" in text and "44.00" in text


def test_quick_demo_is_smaller_still_and_uses_the_given_service() -> None:
    s = demo_settings(Path("runs/demo"), env_url="http://env:8000", quick=True)
    assert s.env_url == "http://env:8000" and s.eval_styles() == ("default",)
    assert (s.eval_size, s.eval_max_new_tokens) == (2, 128)
    sft_script, sft_args, _ = parse_sft(["--config", str(s.sft_config), *s.sft_args])
    assert sft_script.dataset_size == 8 and sft_args.max_steps == 2
    grpo_script, grpo_args, _ = parse_grpo(["--config", str(s.grpo_config), *s.grpo_args])
    assert (grpo_args.max_steps, grpo_args.num_generations, grpo_args.max_completion_length) == (2, 2, 128)
    assert grpo_args.generation_batch_size % grpo_args.num_generations == 0
    assert grpo_script.dataset_offset >= sft_script.dataset_offset + sft_script.dataset_size
