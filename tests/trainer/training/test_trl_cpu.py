"""The compact LM head on a CPU: same loss, log-probabilities and gradients as TRL's full path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from trainer.training import trl_cpu


@pytest.fixture
def unpatched() -> Iterator[None]:
    trl_cpu.restore()
    yield
    trl_cpu.restore()


def _forward_backward(model: Any, batch: dict[str, torch.Tensor]) -> tuple[Any, dict[str, torch.Tensor]]:
    model.zero_grad()
    out = model(**batch, fused_lm_head=True)
    (out.loss + out.entropy.sum() * 0.01).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_compact_path_gives_the_same_numbers(tiny_model_dir: Path, unpatched: None) -> None:
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, model.config.vocab_size, (3, 40), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 30:] = 0  # padding
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :18] = -100  # the prompt
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    assert not trl_utils._use_triton(torch.device("cpu"))
    full, full_grads = _forward_backward(model, batch)
    assert trl_cpu.compact_lm_head_on_cpu()
    assert trl_utils._use_triton(torch.device("cpu"))
    compact, compact_grads = _forward_backward(model, batch)

    assert int(full.label_mask.sum()) == int(compact.label_mask.sum()) == 2 * 22 + 12  # labels shift by one
    torch.testing.assert_close(compact.loss, full.loss, rtol=0, atol=1e-6)
    for field in ("log_probs", "entropy"):
        torch.testing.assert_close(getattr(compact, field), getattr(full, field), rtol=0, atol=1e-5)
    assert torch.equal(compact.is_top1, full.is_top1)
    assert compact_grads.keys() == full_grads.keys() and full_grads
    for name, grad in full_grads.items():
        torch.testing.assert_close(compact_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_patch_is_idempotent_and_restorable(unpatched: None) -> None:
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    assert trl_cpu.compact_lm_head_on_cpu() and trl_cpu.compact_lm_head_on_cpu()
    patched = trl_utils._use_triton
    assert patched is not original and patched(torch.device("cpu"))
    assert patched(torch.device("meta")) is bool(original(torch.device("meta")))
    trl_cpu.restore()
    assert trl_utils._use_triton is original


def test_a_changed_trl_is_left_alone(monkeypatch: pytest.MonkeyPatch, unpatched: None) -> None:
    import inspect

    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    monkeypatch.setattr(inspect, "getsource", lambda obj: "def add_fused_lm_head(): ...")
    assert trl_cpu.compact_lm_head_on_cpu() is False
    assert trl_utils._use_triton is original


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 1e6


@pytest.mark.skipif(trl_cpu._malloc_trim() is None, reason="glibc's malloc_trim is not available")
def test_freed_heap_memory_goes_back_to_the_system() -> None:
    # 300 MB of 1 kB blocks (glibc's heap, not Python's small-object arenas); one block in 64 stays alive,
    # so the heap cannot shrink from its top and keeps the pages between them until they are trimmed
    blocks = [bytes(1000) + bytes([i % 256]) for i in range(300_000)]
    kept = blocks[::64]
    del blocks
    held = _rss_mb()
    assert trl_cpu.release_freed_memory()
    assert held - _rss_mb() > 150, "freed pages were not returned"
    assert len(kept) == 4688


def test_without_glibc_release_only_collects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trl_cpu, "_malloc_trim", lambda: None)
    assert trl_cpu.release_freed_memory() is False


def test_the_callback_releases_once_the_process_has_grown_past_the_headroom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gb = 1 << 30
    resident = [0]
    released: list[int] = []

    def release() -> bool:
        released.append(resident[0])
        resident[0] = 1 * gb  # what was in use
        return True

    monkeypatch.setattr(trl_cpu, "resident_bytes", lambda: resident[0])
    monkeypatch.setattr(trl_cpu, "release_freed_memory", release)
    callback = trl_cpu.memory_release_callback(headroom=3 * gb)
    # GB after each step: a working set of 5 GB, growing by 1 GB a step; the first step after a release
    # sets the reference again
    for rss in (5, 6, 7, 8, 9, 5, 6, 7, 8):
        resident[0] = rss * gb
        callback.on_step_end(None, None, None)
    assert released == [9 * gb]  # 9 > 5 + 3; then 6, 7, 8 stay within 5 + 3
    assert callback.releases == 1


def test_default_headroom_is_bounded_by_the_ram() -> None:
    assert 0 < trl_cpu.default_headroom() <= 4 << 30


def test_cpu_ready_patches_the_head_and_adds_the_release(unpatched: None) -> None:
    import trl.trainer.utils as trl_utils

    mine = object()
    callbacks = trl_cpu.cpu_ready([mine])
    assert callbacks[0] is mine and len(callbacks) == 2 and callbacks[1].releases == 0
    assert trl_utils._use_triton(torch.device("cpu"))
