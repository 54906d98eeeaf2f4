"""`vllm` backend: without vLLM or a GPU it stops early and says what to use instead."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from trainer.evaluation import vllm_backend
from trainer.evaluation.commands import register
from trainer.evaluation.generation import BackendUnavailableError, SamplingConfig


def test_missing_vllm_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(BackendUnavailableError, match="not installed") as info:
        vllm_backend.VLLMBackend("some/model", SamplingConfig())
    assert "--backend openai" in str(info.value) and "vllm serve" in str(info.value)
    assert "--backend hf" in str(info.value)


def test_no_cuda_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", type(sys)("vllm"))  # a stand-in module: "installed"
    monkeypatch.setattr(vllm_backend, "_cuda_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="CUDA"):
        vllm_backend.require_vllm()


def test_cli_exits_with_the_message(
    live_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    app = typer.Typer()
    register(app)
    args = [
        "eval",
        "--backend",
        "vllm",
        "--model",
        "m",
        "--env_url",
        live_server.url,
        "--output_dir",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--backend openai" in result.output and not (tmp_path / "summary.json").exists()


@pytest.mark.gpu
def test_vllm_generates_on_gpu() -> None:  # pragma: no cover - needs CUDA and vLLM
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from shared_schema import ChatMessage, Event, ProblemSpec
    from trainer.evaluation.dataset import EvalProblem

    spec = ProblemSpec(events=[Event(name="A", start="09:00", end="10:00")], priorities=[])
    problem = EvalProblem("p", spec, [ChatMessage(role="user", content="Say hi.")])
    backend = vllm_backend.VLLMBackend(
        "HuggingFaceTB/SmolLM2-135M-Instruct", SamplingConfig(max_new_tokens=8)
    )
    assert len(backend.generate([problem])) == 1
