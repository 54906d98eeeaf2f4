"""`hf` backend: a tiny random Llama (and a LoRA adapter on it) answers two problems end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainer.env_client import EnvClient
from trainer.evaluation.backends import SamplingConfig, make_backend
from trainer.evaluation.hf_backend import adapter_base
from trainer.evaluation.problems import from_split
from trainer.evaluation.runner import run_eval, write_run

SAMPLING = SamplingConfig(max_new_tokens=6)


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    lora = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    path = tmp_path_factory.mktemp("tiny-lora")
    lora.save_pretrained(str(path))
    return path


@pytest.mark.parametrize("which", ["model", "adapter"])
def test_hf_backend_two_problems(
    client: TestClient, tiny_model_dir: Path, adapter_dir: Path, which: str, tmp_path: Path
) -> None:
    path = tiny_model_dir if which == "model" else adapter_dir
    assert (adapter_base(str(path)) is None) == (which == "model")
    env = EnvClient(client)
    problems = from_split(env, "test", limit=2)
    backend = make_backend("hf", env, model=str(path), sampling=SAMPLING, batch_size=2, device="cpu")
    run = run_eval(env, backend, problems, label=f"tiny-{which}", model=str(path))
    assert run.summary.n == 2 and sum(run.summary.verdicts.values()) == 2
    # a random 6-token answer cannot hold a schedule: scored, but never valid
    assert run.summary.valid_pct == 0.0 and run.summary.verdicts["format_error"] == 2
    assert all(r.finish_reason in {"stop", "length"} for r in run.rows)
    write_run(run, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in rows] == [p.id for p in problems]
    assert {"completion", "verdict", "score_ratio", "components", "violations"} <= rows[0].keys()


def test_adapter_without_base_is_explained(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 2}))
    with pytest.raises(ValueError, match="base_model_name_or_path"):
        adapter_base(str(tmp_path))
