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
