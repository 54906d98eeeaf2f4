"""`auto` weight dtype: bfloat16 where the hardware computes it natively, float32 elsewhere."""

from __future__ import annotations

import pytest
import torch

from trainer.training.model_prep import native_bf16, resolve_dtype


@pytest.mark.parametrize("name", ["float32", "bfloat16", "float16"])
def test_explicit_dtypes_pass_through(name: str) -> None:
    assert resolve_dtype(name) == name
    assert resolve_dtype(name, "cuda") == name


def test_gpus_compute_bf16() -> None:
    assert native_bf16("cuda") and native_bf16("cuda:1")
    assert resolve_dtype("auto", "cuda") == "bfloat16"


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, False, "bfloat16"), (False, True, "bfloat16"), (False, False, "float32")],
)
def test_cpu_choice_follows_the_instruction_set(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert resolve_dtype("auto", "cpu") == expected
    assert native_bf16("cpu") is (expected == "bfloat16")


def test_a_torch_without_the_probes_means_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert resolve_dtype("auto", "cpu") == "float32"


def test_other_devices_stay_float32() -> None:
    assert resolve_dtype("auto", "mps") == "float32"
