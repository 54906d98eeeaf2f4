"""Training on a CPU: TRL's fused LM head on labelled positions only, and freed memory given back.

**The LM head.** TRL 1.x trains SFT and GRPO through `add_fused_lm_head`: the loss needs the
log-probability of each completion token, and the head computes it in tiles without building the full
`(tokens, vocabulary)` logits. On devices with Triton (CUDA, XPU) it projects only the positions whose
label is not `-100`. Elsewhere it projects *every* position, prompt and padding included, because on
compiled backends such as Neuron a changing number of positions would recompile the tiles each batch. A
CPU in eager mode recompiles nothing, so it pays for the prompt for no reason: with `guided` prompts,
about 45 % of an SFT sample's tokens and more of a GRPO batch (padding to the longest completion).

`compact_lm_head_on_cpu()` makes the head take the compact path on a CPU as well. The tiles are then
computed by the same torch code on fewer rows, so the loss, the per-token log-probabilities and the
gradients are the same numbers (a test checks them against the full path). Measured on SmolLM2-135M, a
LoRA step on four traced answers (bfloat16, 2 cores), forward and backward: 15–17 s → 8–12 s.

It replaces one name in `trl.trainer.utils`, the predicate that chooses the compact path, and nothing
else; the kernels keep choosing Triton or torch for themselves. If a TRL release changes that code,
the patch logs why it is not applied and training runs as TRL ships it.

**Freed memory.** A CPU training step allocates and frees tensors of a new shape every time (each batch
has its own lengths). glibc's allocator keeps much of what is freed in its heaps instead of returning it
to the system, and the process grows step after step (`malloc_trim` brought 4.2–4.6 GB back to 0.9–1.0 GB
after every step of a small probe). `ReleaseFreedMemory`, a trainer callback, collects garbage and calls
`malloc_trim(0)` after a step once the process has grown by more than a headroom (4 GiB, or a quarter of
the RAM) past its size after the first step since the last release; `release_freed_memory()` does the
same between phases. Both do nothing where glibc is not the allocator. This bounds the growth between
steps, not the peak within one: what killed `make learn` at GRPO step 28 (24 GB on a 24 GB machine, in
run 4 and again in run 5 with this callback) was one pass over 8 sequences of up to ~925 tokens, 16 GB
on its own; the CPU GRPO config now makes its passes 2 sequences at a time (gradient accumulation).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

_MARKER = "compact = _use_triton(hidden_states.device)"
_ORIGINAL: dict[str, Callable[[Any], bool]] = {}


def _compact_predicate(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def use_compact(device: Any) -> bool:
        return bool(original(device)) or getattr(device, "type", None) == "cpu"

    use_compact.__name__ = "_use_triton_or_cpu"
    return use_compact


def compact_lm_head_on_cpu() -> bool:
    """Score only labelled positions on a CPU too; idempotent. Returns whether the patch is in place."""
    import trl.trainer.utils as trl_utils

    if "predicate" in _ORIGINAL:
        return True
    original = getattr(trl_utils, "_use_triton", None)
    try:
        source = inspect.getsource(trl_utils.add_fused_lm_head)
    except (AttributeError, OSError, TypeError):
        source = ""
    if original is None or _MARKER not in source:
        log.info("TRL's fused LM head has changed; it scores every position on a CPU (slower, same result)")
        return False
    _ORIGINAL["predicate"] = original
    setattr(trl_utils, "_use_triton", _compact_predicate(original))  # noqa: B010  # private: TRL exports no type
    return True


def restore() -> None:
    """Undo `compact_lm_head_on_cpu` (tests use it to compare both paths)."""
    import trl.trainer.utils as trl_utils

    original = _ORIGINAL.pop("predicate", None)
    if original is not None:
        setattr(trl_utils, "_use_triton", original)  # noqa: B010  # as above


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Collect garbage and give the allocator's free memory back to the system; whether it could."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def resident_bytes() -> int:
    """This process's resident memory."""
    import psutil  # a dependency of accelerate, so of every trainer install

    return int(psutil.Process().memory_info().rss)


def default_headroom() -> int:
    """How far the process may grow past its last trimmed size: 4 GiB, or a quarter of the RAM if less."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30
    return int(min(4 << 30, ram // 4))


def memory_release_callback(headroom: int | None = None) -> Any:
    """A `transformers` callback: after an optimizer step, `release_freed_memory` if the process has grown
    by more than `headroom` bytes (default `default_headroom()`) past its size at the end of the first step
    after the last release (or the first step of all).

    That size, not the size right after a release, is the reference: a step needs its working set again
    (a GRPO step of SmolLM2 here: about 4 GB on top of 0.9 GB in use), and memory given back is faulted in
    again by the next step, about 1 s of kernel time per SFT step here. The growth that a release removes
    is what accumulates on top of that, a few hundred megabytes per step, so a release comes every few
    steps and the process stays bounded.
    """
    from transformers import TrainerCallback

    limit = default_headroom() if headroom is None else headroom

    class ReleaseFreedMemory(TrainerCallback):
        def __init__(self) -> None:
            self.floor: int | None = None
            self.releases = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            resident = resident_bytes()
            if self.floor is None:
                self.floor = resident
            elif resident - self.floor > limit and release_freed_memory():
                self.floor = None
                self.releases += 1

    return ReleaseFreedMemory()


def cpu_ready(callbacks: Sequence[Any] = ()) -> list[Any]:
    """What `sched-train sft` and `train` do before building their trainer: the compact LM head, and
    `callbacks` with the memory release added."""
    compact_lm_head_on_cpu()
    return [*callbacks, memory_release_callback()]
