"""Make TRL's fused LM head score only the labelled positions on a CPU, as it already does on a GPU.

TRL 1.x trains SFT and GRPO through `add_fused_lm_head`: the loss needs the log-probability of each
completion token, and the head computes it in tiles without building the full `(tokens, vocabulary)`
logits. On devices with Triton (CUDA, XPU) it projects only the positions whose label is not `-100`.
Elsewhere it projects *every* position, prompt and padding included, because on compiled backends such
as Neuron a changing number of positions would recompile the tiles each batch. A CPU in eager mode
recompiles nothing, so it pays for the prompt for no reason: with `guided` prompts, about 45 % of an
SFT sample's tokens and more of a GRPO batch (padding to the longest completion).

`compact_lm_head_on_cpu()` makes the head take the compact path on a CPU as well. The tiles are then
computed by the same torch code on fewer rows, so the loss, the per-token log-probabilities and the
gradients are the same numbers (a test checks them against the full path). Measured on SmolLM2-135M, a
LoRA step on four traced answers (bfloat16, 2 cores): 15–17 s → 8–10 s (docs/learning.md).

It replaces one name in `trl.trainer.utils`, the predicate that chooses the compact path, and nothing
else; the kernels keep choosing Triton or torch for themselves. If a TRL release changes that code,
the patch logs why it is not applied and training runs as TRL ships it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
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
    trl_utils._use_triton = _compact_predicate(original)
    return True


def restore() -> None:
    """Undo `compact_lm_head_on_cpu` (tests use it to compare both paths)."""
    import trl.trainer.utils as trl_utils

    original = _ORIGINAL.pop("predicate", None)
    if original is not None:
        trl_utils._use_triton = original
