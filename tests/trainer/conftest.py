"""Trainer fixtures: a tiny randomly initialised Llama with the real SmolLM2 tokenizer, built offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trainer.training.model_prep import save_smollm2_tokenizer


def save_tiny_llama(path: Path, **config: Any) -> Path:
    """A 2-layer Llama with random weights (seed 0) and the SmolLM2 tokenizer (chat template included),
    saved to `path`; `config` sets the LlamaConfig fields that differ between the fixtures."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    save_smollm2_tokenizer(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(llama).save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide Llama saved with the SmolLM2 tokenizer (chat template included): trains in seconds."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), hidden_size=32, intermediate_size=64)


@pytest.fixture(scope="session")
def tiny_vllm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide Llama with the SmolLM2 tokenizer, head size 32 (vLLM's CPU attention has no
    kernel for the 16 of `tiny_model_dir`)."""
    return save_tiny_llama(
        tmp_path_factory.mktemp("tiny-vllm-llama"),
        hidden_size=64,
        intermediate_size=128,
        head_dim=32,
        initializer_range=0.05,
    )


def tool_grpo_parts(model_dir: Path, output_dir: Path) -> tuple[Any, Any, Any]:
    """Model, tool-calling tokenizer and a two-step `GRPOConfig` for TRL's `GRPOTrainer` with an
    environment (tests/trainer/integrations: the TRL environment class and OpenReward's spec)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    from trainer.integrations.trl_tools import tool_calling_tokenizer

    tokenizer = tool_calling_tokenizer(AutoTokenizer.from_pretrained(model_dir))
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = GRPOConfig(
        output_dir=str(output_dir), max_steps=2, per_device_train_batch_size=2, num_generations=2,
        max_completion_length=16, max_tool_calling_iterations=2, logging_steps=1, report_to=[],
        use_cpu=True, bf16=False, save_strategy="no", temperature=1.0,
    )  # fmt: skip
    return model, tokenizer, args
