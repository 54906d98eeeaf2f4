"""Backends: anything that turns prompts into completions, behind one small interface.

`make_backend` builds one from the CLI's options. Model backends (`hf`, `vllm`, `openai`) live in their
own modules and import their heavy dependencies only when built; reference policies (`solver` and the
baselines) are cheap and live here. A backend never scores: the runner sends every completion to the
service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from trainer.env_client import EnvClient
from trainer.evaluation.baselines import POLICIES, policy_answer
from trainer.evaluation.problems import EvalProblem

Progress = Callable[[int], None]
MODEL_BACKENDS = ("hf", "vllm", "openai")
REFERENCE_BACKENDS = ("solver", *POLICIES)
BACKENDS = (*MODEL_BACKENDS, *REFERENCE_BACKENDS)


class BackendUnavailableError(RuntimeError):
    """The backend cannot run here (missing package, no GPU); the message says what to use instead."""


@dataclass(frozen=True)
class Generation:
    """One completion and how it ended (`length` means it hit the token limit)."""

    text: str
    finish_reason: str | None = None
    error: str | None = None  # the request failed after every retry; `text` is then empty


@dataclass(frozen=True)
class SamplingConfig:
    """Generation settings shared by every model backend. Temperature 0 means greedy decoding."""

    max_new_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """Produces one completion per problem, in order, calling `progress(k)` as k more are done."""

    kind: str

    def generate(
        self, problems: Sequence[EvalProblem], progress: Progress | None = None
    ) -> list[Generation]: ...


class SolverBackend:
    """The exact optimum from the service's `/v1/solve`: must score 100% valid, mean score ratio 1.0."""

    kind = "solver"

    def __init__(self, client: EnvClient) -> None:
        self.client = client

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        out = []
        for p in problems:
            out.append(Generation(self.client.solve(p.spec).completion, "stop"))
            if progress is not None:
                progress(1)
        return out


class PolicyBackend:
    """A client-side baseline policy from `baselines.POLICIES` (e.g. `greedy_weight`)."""

    def __init__(self, name: str) -> None:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; choose from {sorted(POLICIES)}")
        self.kind = name

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        out = [Generation(policy_answer(self.kind, p.spec), "stop") for p in problems]
        if progress is not None:
            progress(len(out))
        return out


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
    )
