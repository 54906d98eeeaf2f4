"""`hf` backend: a tiny random Llama (and a LoRA adapter on it) answers two problems end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainer.client.env_client import EnvClient
from trainer.evaluation.backends import make_backend
from trainer.evaluation.dataset import from_split
from trainer.evaluation.generation import SamplingConfig, adapter_base
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


def test_adapter_is_merged_and_answers_as_unmerged(
    tiny_model_dir: Path, adapter_dir: Path, tmp_path: Path
) -> None:
    """The backend merges an adapter into its base for speed; greedy answers stay those of the live adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trainer.evaluation.hf_backend import HFBackend

    live = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(adapter_dir)
    )
    # the adapter's B is zero at init: give A and B seeded weights (the fixture's A depends on the test
    # order), so that merging has something to get wrong
    torch.manual_seed(0)
    for name, param in live.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            param.data.normal_(0, 0.2)
    live.save_pretrained(str(tmp_path))
    merged = HFBackend(str(tmp_path), SamplingConfig(max_new_tokens=8), device="cpu", dtype="float32")
    assert not isinstance(merged.model, PeftModel)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.inference_mode():
        live.eval()
        plain = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
        base_logits, live_logits = plain(ids).logits, live(ids).logits
        assert not torch.allclose(live_logits, base_logits, atol=1e-3)  # the adapter changes the model...
        assert torch.allclose(merged.model(ids).logits, live_logits, atol=1e-4)  # ...merged, the same way
        expected = live.generate(input_ids=ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
        got = merged.model.generate(input_ids=ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert torch.equal(expected, got)  # ...and merged, it changes it the same way


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_hf_backend_loads_the_dtype_asked_for(tiny_model_dir: Path, dtype: str) -> None:
    import torch

    from trainer.evaluation.hf_backend import HFBackend

    backend = HFBackend(str(tiny_model_dir), SAMPLING, device="cpu", dtype=dtype)
    assert backend.dtype == dtype
    assert {p.dtype for p in backend.model.parameters()} == {getattr(torch, dtype)}


def _seeded_adapter(base: str, out: Path, seed: int) -> Path:
    """A LoRA adapter on `base` with seeded non-zero weights (B is zero at init: nothing to get wrong)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=2 + seed, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"]),
    )
    for name, param in lora.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            param.data.normal_(0, 0.3)
    lora.save_pretrained(str(out))
    return out


def test_adapter_mix_answers_as_each_model_alone(
    client: TestClient, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Base, SFT and GRPO-on-merged-SFT rows in the same batches answer as each model on its own: the
    mix is `learn --joint_eval`'s one evaluation call for three models."""
    from trainer.evaluation.hf_backend import HFAdapterMix, HFBackend
    from trainer.training.model_prep import merge_adapter

    sft = _seeded_adapter(str(tiny_model_dir), tmp_path / "sft", seed=1)
    grpo = _seeded_adapter(str(merge_adapter(sft)), tmp_path / "grpo", seed=2)
    problems = from_split(EnvClient(client), "test", limit=3)
    sampling = SamplingConfig(max_new_tokens=12)
    models = {"base": [], "sft": [str(sft)], "grpo": [str(sft), str(grpo)]}
    mix = HFAdapterMix(str(tiny_model_dir), models, sampling, batch_size=4, device="cpu", dtype="float32")
    items = [(name, p) for p in problems for name in models]  # each batch mixes the three models
    got = [g.text for g in mix.generate_rows(items)]
    alone = {
        name: HFBackend(path, sampling, batch_size=4, device="cpu", dtype="float32").generate(problems)
        for name, path in (("base", str(tiny_model_dir)), ("sft", str(sft)), ("grpo", str(grpo)))
    }
    expected = [alone[name][problems.index(p)].text for name, p in items]
    assert got == expected
    assert len({alone[name][0].text for name in models}) == 3  # three different models, told apart
    assert [g.text for g in mix.view("sft").generate(problems)] == [g.text for g in alone["sft"]]
    with pytest.raises(KeyError, match="no model 'dpo'"):
        mix.view("dpo")


def test_adapter_mix_refuses_a_stack_that_was_not_trained_as_one(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from trainer.evaluation.hf_backend import HFAdapterMix

    one = _seeded_adapter(str(tiny_model_dir), tmp_path / "one", seed=1)
    two = _seeded_adapter(str(tiny_model_dir), tmp_path / "two", seed=2)  # on the base, not on `one`
    with pytest.raises(ValueError, match="is not an adapter on"):
        HFAdapterMix(str(tiny_model_dir), {"x": [str(one), str(two)]}, SAMPLING, device="cpu")
    with pytest.raises(ValueError, match="not a LoRA adapter directory"):
        HFAdapterMix(str(tiny_model_dir), {"x": [str(tiny_model_dir)]}, SAMPLING, device="cpu")
