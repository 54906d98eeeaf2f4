"""`sched-train sft`: both configs parse into TRL's SFTConfig, and the dataset is the service's traced answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainer.client.env_client import EnvClient
from trainer.training.sft import build_sft_dataset, parse

CONFIGS = Path(__file__).parents[3] / "trainer" / "configs"


@pytest.mark.parametrize("name", ["smollm2-135m-sft-cpu.yaml", "qwen2.5-coder-7b-sft-lora.yaml"])
def test_sft_configs_parse(name: str) -> None:
    script, args, model = parse(["--config", str(CONFIGS / name), "--bf16", "false"])  # bf16 needs a GPU
    assert args.completion_only_loss and model.use_peft and script.dataset_size
    # SFT and GRPO learn from different problems
    grpo = "smollm2-135m-grpo-cpu.yaml" if "smollm2" in name else "qwen2.5-coder-7b-lora.yaml"
    from trainer.training.grpo import parse as parse_grpo

    g_script, _, _ = parse_grpo(["--config", str(CONFIGS / grpo), "--bf16", "false"])
    sft_range = range(script.dataset_offset, script.dataset_offset + script.dataset_size)
    grpo_range = range(g_script.dataset_offset, g_script.dataset_offset + (g_script.dataset_size or 500))
    assert not set(sft_range) & set(grpo_range)


def test_dataset_is_served_prompts_and_traced_answers(client: TestClient) -> None:
    env = EnvClient(client)
    ds = build_sft_dataset(env, "train", 3, offset=2, prompt_style="guided")
    assert ds["problem_id"] == ["train-000002", "train-000003", "train-000004"]
    served = env.problems("train", 2, 3, prompt_style="guided").items
    for row, problem in zip(ds, served, strict=True):
        assert row["prompt"] == [m.model_dump() for m in problem.prompt]
        assert row["completion"] == [
            {"role": "assistant", "content": env.solve(problem, trace=True).completion}
        ]
        assert row["completion"][0]["content"].startswith("<think>By start time:")


def test_dataset_with_by_hour_traces(client: TestClient) -> None:
    """`--trace_style by_hour`: the same prompts and schedules, the reasoning written as a scan of the hours."""
    env = EnvClient(client)
    ds = build_sft_dataset(env, "train", 2, prompt_style="default", trace_style="by_hour")
    served = env.problems("train", 0, 2).items
    for row, problem in zip(ds, served, strict=True):
        assert row["prompt"] == [m.model_dump() for m in problem.prompt]
        assert row["completion"][0]["content"] == env.solve(problem, True, "by_hour").completion
        assert row["completion"][0]["content"].startswith("<think>By start hour:\n00h")
        assert row["completion"][0]["content"].endswith(
            env.solve(problem, trace=True).completion.split("</think>")[1]
        )


def test_unknown_trace_style_is_refused_before_any_work() -> None:
    from trainer.training.sft import run_sft

    script, training, model = parse(
        ["--config", str(CONFIGS / "smollm2-135m-sft-cpu.yaml"), "--trace_style", "x"]
    )
    with pytest.raises(ValueError, match="trace_style must be one of"):
        run_sft(script, training, model)
