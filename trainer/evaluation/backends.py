"""Build a backend by name: model backends (`hf`, `vllm`, `openai`) or reference policies.

Model backends live in their own modules and import their heavy dependencies only when built; each
imports only the leaf `generation` module, so nothing imports this factory back. A backend never
scores: the runner sends every completion to the service.
"""

from __future__ import annotations

from typing import Any

from trainer.client.env_client import EnvClient
from trainer.evaluation.generation import Backend, SamplingConfig
from trainer.evaluation.policies import POLICIES, PolicyBackend, SolverBackend

MODEL_BACKENDS = ("hf", "vllm", "openai")
REFERENCE_BACKENDS = ("solver", *POLICIES)
BACKENDS = (*MODEL_BACKENDS, *REFERENCE_BACKENDS)


def make_reference(name: str, client: EnvClient) -> Backend:
    """`solver` or a baseline policy by name."""
    return SolverBackend(client) if name == "solver" else PolicyBackend(name)


def make_backend(
    kind: str,
    client: EnvClient,
    *,
    model: str | None = None,
    sampling: SamplingConfig | None = None,
    **options: Any,
) -> Backend:
    """Build backend `kind`. Model backends need `model`; `options` are backend-specific
    (`batch_size`, `device`, `dtype` for hf; `base_url`, `api_key`, `concurrency`, `timeout`,
    `max_retries` for openai; `tensor_parallel_size`, `gpu_memory_utilization` for vllm)."""
    sampling = sampling or SamplingConfig()
    if kind in REFERENCE_BACKENDS:
        return make_reference(kind, client)
    if kind not in MODEL_BACKENDS:
        raise ValueError(f"unknown backend {kind!r}; choose from {', '.join(BACKENDS)}")
    if not model:
        raise ValueError(f"--backend {kind} needs --model (a model path, hub id or served model name)")
    if kind == "hf":
        from trainer.evaluation.hf_backend import HFBackend

        return HFBackend(
            model,
            sampling,
            batch_size=options.get("batch_size", 8),
            device=options.get("device"),
            dtype=options.get("dtype", "auto"),
        )
    if kind == "openai":
        from trainer.evaluation.openai_backend import OpenAIBackend

        base_url = options.get("base_url")
        if not base_url:
            raise ValueError("--backend openai needs --base_url, e.g. http://localhost:8001/v1")
        return OpenAIBackend(
            base_url,
            model,
            sampling,
            api_key=options.get("api_key"),
            concurrency=options.get("concurrency", 8),
            timeout=options.get("timeout", 120.0),
            max_retries=options.get("max_retries", 4),
        )
    from trainer.evaluation.vllm_backend import VLLMBackend

    return VLLMBackend(
        model,
        sampling,
        tensor_parallel_size=options.get("tensor_parallel_size", 1),
        gpu_memory_utilization=options.get("gpu_memory_utilization", 0.85),
        max_model_len=options.get("max_model_len"),
        dtype=options.get("dtype", "auto"),
        enforce_eager=options.get("enforce_eager", False),
    )
