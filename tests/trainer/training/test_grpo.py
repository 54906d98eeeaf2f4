"""Training script pieces that need no training: vLLM fallback, configs, dataset, resume, import boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainer.client.env_client import EnvClient
from trainer.training.grpo import build_dataset, drop_long_prompts, parse, resume_path
from trainer.training.model_prep import SMOLLM2_SENTINEL, resolve_model

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "trainer" / "configs"


def test_cpu_config_parses_with_overrides(tmp_path: Path) -> None:
    argv = [
        "--config",
        str(CONFIGS / "smollm2-135m-cpu.yaml"),
        "--env_url",
        "http://env:1",
        "--max_steps",
        "2",
    ]
    script, training, model = parse([*argv, "--output_dir", str(tmp_path)])
    assert (
        script.env_url == "http://env:1" and training.max_steps == 2 and training.output_dir == str(tmp_path)
    )
    assert model.model_name_or_path == SMOLLM2_SENTINEL and model.use_peft
    assert not training.bf16 and not training.use_vllm


def test_published_recipe_config() -> None:
    """The 7B config is the published recipe; it parses only where bf16 runs, so check the YAML itself."""
    import yaml

    cfg = yaml.safe_load((CONFIGS / "qwen2.5-coder-7b-lora.yaml").read_text())
    assert cfg["model_name_or_path"] == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert (cfg["lora_r"], cfg["lora_alpha"]) == (32, 32)
    assert set(cfg["lora_target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    expected = {
        "learning_rate": 8e-6, "lr_scheduler_type": "cosine", "warmup_steps": 0.01, "weight_decay": 0.1,
        "adam_beta1": 0.9, "adam_beta2": 0.99, "num_generations": 8, "per_device_train_batch_size": 8,
        "max_prompt_tokens": 448, "max_completion_length": 1600, "max_grad_norm": 0.1, "beta": 0.04,
        "temperature": 0.9, "num_train_epochs": 3, "use_vllm": True,
    }  # fmt: skip
    assert {k: cfg[k] for k in expected} == expected
    assert cfg["dataset_size"] == 500


def test_published_recipe_parses_with_only_bf16_overridden() -> None:
    """Every key of the recipe is a real TrlParser field (a typo would fail here, not on the GPU box)."""
    script, training, model = parse(
        ["--config", str(CONFIGS / "qwen2.5-coder-7b-lora.yaml"), "--bf16", "false"]
    )
    assert script.dataset_size == 500 and script.max_prompt_tokens == 448
    assert training.use_vllm and training.vllm_mode == "colocate" and training.num_generations == 8
    assert model.lora_r == 32 and model.model_name_or_path == "Qwen/Qwen2.5-Coder-7B-Instruct"


def test_dataset_has_chat_prompts_and_problem_ids(client: TestClient, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    data = build_dataset(EnvClient(client), "train", 10, None)
    assert data.column_names == ["prompt", "problem_id"] and len(data) == 10
    assert [m["role"] for m in data[0]["prompt"]] == ["system", "user"]
    assert data[0]["problem_id"] == "train-000000"
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    assert len(drop_long_prompts(data, tokenizer, 10_000)) == 10
    with pytest.raises(ValueError, match="every prompt"):
        drop_long_prompts(data, tokenizer, 5)


def test_resume_path(tmp_path: Path) -> None:
    assert resume_path(None, str(tmp_path)) is None
    assert resume_path("runs/x/checkpoint-7", str(tmp_path)) == "runs/x/checkpoint-7"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resume_path("last", str(tmp_path))
    for step in (2, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
    assert resume_path("last", str(tmp_path)) == str(tmp_path / "checkpoint-10")


def test_resolve_model_leaves_other_names_alone() -> None:
    assert resolve_model("Qwen/Qwen2.5-Coder-7B-Instruct") == "Qwen/Qwen2.5-Coder-7B-Instruct"


def test_trainer_never_imports_env_server() -> None:
    """The boundary of the architecture: the trainer reaches the environment over HTTP only."""
    offenders = []
    for path in (ROOT / "trainer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "env_server"]
    assert offenders == []


@pytest.mark.slow
def test_prepare_smollm2_converts_once(tmp_path: Path) -> None:
    """The full GGUF conversion (~20 s, 540 MB); the tokenizer fixture covers reading the GGUF quickly."""
    from trainer.training.model_prep import prepare_smollm2

    path = prepare_smollm2(tmp_path)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert resolve_model(SMOLLM2_SENTINEL, tmp_path) == str(path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_cpu_grpo_config_is_two_groups_per_step_in_passes_of_two() -> None:
    """8 completions per optimizer step, 2 problems × 4 (chosen on validation problems), generated
    together, but put through the forward and backward passes 2 at a time: 8 sequences of ~925 tokens at
    once peaked at 16 GB on a CPU (the process was killed at 24 GB), 2 at a time at 4.5 GB."""
    _, args, _ = parse(["--config", str(CONFIGS / "smollm2-135m-grpo-cpu.yaml"), "--bf16", "false"])
    assert args.generation_batch_size == 8 and args.num_generations == 4  # 2 problems per step
    assert (
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        args.steps_per_generation,
    ) == (
        2,
        4,
        4,
    )
    assert args.loss_type == "dapo"  # normalised over the whole generation batch: the 8-completion gradient
