"""verl's own reward managers calling this project's reward functions, against a live service: run in a
fresh interpreter with verl on PYTHONPATH (tests/trainer/integrations/test_verl_package.py; `make test`
installs verl and the modules its reward managers import into .venv/clients/verl). Prints one JSON line.

    SCHED_ENV_URL=URL python verl_reward_managers.py MODEL_DIR

A batch of four samples as verl's trainer hands it to a reward manager (`DataProto`: left-padded prompt
ids, right-padded response ids, the attention mask over both, `data_source` and `reward_model.ground_truth`
per sample) goes through `NaiveRewardManager` with `compute_score` and through `BatchRewardManager` with
`compute_score_batch`; each puts a sample's reward on its last response token.
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib.metadata import version

import httpx
import numpy as np
import torch
from transformers import AutoTokenizer
from verl import DataProto
from verl.workers.reward_manager.batch import BatchRewardManager
from verl.workers.reward_manager.naive import NaiveRewardManager

from trainer.integrations.verl import compute_score, compute_score_batch

PAD = 8  # extra padding on both sides, so that the managers must use the mask


def batch(tokenizer: object, prompts: list[str], responses: list[str], problem_ids: list[str]) -> DataProto:
    encode = tokenizer.encode  # type: ignore[attr-defined]
    pad = tokenizer.pad_token_id or 0  # type: ignore[attr-defined]
    p_ids = [encode(p, add_special_tokens=False) for p in prompts]
    r_ids = [encode(r, add_special_tokens=False) for r in responses]
    p_len, r_len = max(map(len, p_ids)) + PAD, max(map(len, r_ids)) + PAD
    prompt_rows, response_rows, masks = [], [], []
    for p, r in zip(p_ids, r_ids, strict=True):
        prompt_rows.append([pad] * (p_len - len(p)) + p)
        response_rows.append(r + [pad] * (r_len - len(r)))
        masks.append([0] * (p_len - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (r_len - len(r)))
    return DataProto.from_dict(
        tensors={
            "prompts": torch.tensor(prompt_rows),
            "responses": torch.tensor(response_rows),
            "attention_mask": torch.tensor(masks),
        },
        non_tensors={
            "data_source": np.array(["scheduling"] * len(prompts), dtype=object),
            "reward_model": np.array([{"ground_truth": pid} for pid in problem_ids], dtype=object),
        },
    )


def main() -> None:
    url = os.environ["SCHED_ENV_URL"]
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
    ids = [f"train-{i:06d}" for i in range(4)]
    problems = [httpx.get(f"{url}/v1/problems/{pid}").json() for pid in ids]
    golds = [
        httpx.post(
            f"{url}/v1/solve", json={"problem": {"events": p["events"], "priorities": p["priorities"]}}
        ).json()["completion"]
        for p in problems
    ]
    events = re.findall(r"<event>.*?</event>", golds[2], re.S)
    fewer = "<schedule>" + "".join(events[:-1]) + "</schedule>"  # valid, below the optimum
    responses = [golds[0], "<schedule></schedule>", fewer, "no schedule at all"]
    prompts = [p["prompt"][-1]["content"] for p in problems]
    data = batch(tokenizer, prompts, responses, ids)
    naive = NaiveRewardManager(tokenizer, num_examine=0, compute_score=compute_score)(data, return_dict=True)
    batched = BatchRewardManager(tokenizer, num_examine=0, compute_score=compute_score_batch)(
        data, return_dict=True
    )
    body = {"items": [{"problem_id": pid, "completion": r} for pid, r in zip(ids, responses, strict=True)]}
    expected = [r["reward"] for r in httpx.post(f"{url}/v1/score", json=body).json()["results"]]
    out = {"verl": version("verl"), "expected": expected}
    mask = data.batch["attention_mask"][:, data.batch["prompts"].shape[-1] :]
    last = (mask.sum(-1) - 1).tolist()
    for name, result in (("naive", naive), ("batch", batched)):
        tensor = result["reward_tensor"]
        out[name] = [float(tensor[i, last[i]]) for i in range(len(ids))]
        out[f"{name}_elsewhere"] = float(tensor.abs().sum()) - sum(abs(v) for v in out[name])
        out[f"{name}_extra"] = sorted(result.get("reward_extra_info", {}))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
