"""`vllm` backend: offline batched generation with vLLM on a GPU.

vLLM is imported only here and only when the backend is built. Without vLLM or without CUDA the build
fails with `BackendUnavailableError` naming the alternatives: the `openai` backend against `vllm serve`
(on a GPU machine elsewhere) or the `hf` backend (any machine, slower).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from trainer.evaluation.dataset import EvalProblem
from trainer.evaluation.generation import (
    BackendUnavailableError,
    Generation,
    Progress,
    SamplingConfig,
    adapter_base,
)

CHUNK = 256  # prompts per vLLM call: large enough to batch well, small enough for a moving progress bar

FALLBACK = (
    "Use `--backend openai` against a vLLM server (`vllm serve MODEL --port 8001`, then "
    "`--base_url http://HOST:8001/v1 --model MODEL`), or `--backend hf` to run the model with transformers."
)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def require_vllm() -> Any:
    """The `vllm` module, or `BackendUnavailableError` saying why not and what to do instead."""
    try:
        vllm = importlib.import_module("vllm")
    except ImportError:
        raise BackendUnavailableError(
            f"vLLM is not installed (pip install -e '.[vllm]' on a CUDA machine). {FALLBACK}"
        ) from None
    if not _cuda_available():
        raise BackendUnavailableError(f"vLLM needs a CUDA GPU and none is visible. {FALLBACK}")
    return vllm


class VLLMBackend:
    """`LLM.chat` over all prompts; a LoRA adapter directory is served on top of its base model."""

    kind = "vllm"

    def __init__(
        self,
        model: str,
        sampling: SamplingConfig,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
    ) -> None:
        vllm = require_vllm()
        base = adapter_base(model)
        self.sampling = sampling
        self.llm = vllm.LLM(
            model=base or model,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=sampling.seed,
            enable_lora=base is not None,
        )
        self.lora: Any = None
        if base is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, model)
        self.params = vllm.SamplingParams(
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=sampling.seed,
        )

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(problems), CHUNK):
            chunk = problems[start : start + CHUNK]
            results = self.llm.chat(
                [p.messages() for p in chunk], self.params, use_tqdm=False, lora_request=self.lora
            )
            out.extend(Generation(r.outputs[0].text, r.outputs[0].finish_reason) for r in results)
            if progress is not None:
                progress(len(chunk))
        return out
