"""What every generation backend shares: its interface, its output, and the sampling settings.

A leaf module: the backends (`hf_backend`, `openai_backend`, `vllm_backend`, the reference policies) and
the runner import it; the factory that builds a backend by name is `backends.make_backend`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from trainer.evaluation.dataset import EvalProblem

Progress = Callable[[int], None]


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


def adapter_base(path: str) -> str | None:
    """The base model of a LoRA adapter directory, or None when `path` is not one."""
    config = Path(path) / "adapter_config.json"
    if not config.is_file():
        return None
    base = json.loads(config.read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{config} names no base_model_name_or_path; cannot load the adapter")
    return str(base)
