"""OpenRLHF's own remote reward client against a live service: run in a fresh interpreter with OpenRLHF on
PYTHONPATH (tests/env_server/service/test_openrlhf_package.py; `make test` installs openrlhf into
.venv/clients/openrlhf). Prints one JSON line.

    python openrlhf_remote_reward.py URL MODEL_DIR

- `SingleTurnAgentExecutor.execute`, the rollout step of `train_ppo_ray`, with a stand-in for its vLLM
  engine that answers with a given completion's tokens (end-of-sequence included): OpenRLHF builds the
  query itself (the chat-templated prompt and the answer, decoded with special tokens) and posts it to
  `--remote_rm_url`;
- its batch path (`_fetch_rewards_via_http`), sharding six queries over two reward URLs.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import httpx
from openrlhf.utils.agent import SingleTurnAgentExecutor
from transformers import AutoTokenizer


class Engine:
    """What `execute` needs of OpenRLHF's vLLM engine: `generate` answering with fixed tokens."""

    def __init__(self, token_ids: list[int]) -> None:
        self.token_ids = token_ids

    async def generate(self, prompt_token_ids: list[int], params: Any, multi_modal_data: Any = None) -> Any:
        output = SimpleNamespace(token_ids=self.token_ids, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[output])


async def main() -> None:
    url, model_dir = sys.argv[1], sys.argv[2]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = [f"train-{i:06d}" for i in range(6)]
    problems = [httpx.get(f"{url}/v1/problems/{pid}").json() for pid in ids]
    answers = []
    for i, p in enumerate(problems):
        spec = {"events": p["events"], "priorities": p["priorities"]}
        gold = httpx.post(f"{url}/v1/solve", json={"problem": spec}).json()["completion"]
        events = re.findall(r"<event>.*?</event>", gold, re.S)
        answers.append(
            [gold, "<schedule></schedule>", "<schedule>" + "".join(events[:-1]) + "</schedule>"][i % 3]
        )
    body = {"items": [{"problem_id": pid, "completion": a} for pid, a in zip(ids, answers, strict=True)]}
    expected = [r["reward"] for r in httpx.post(f"{url}/v1/score", json=body).json()["results"]]

    prompts = [
        tokenizer.apply_chat_template(p["prompt"], tokenize=False, add_generation_prompt=True)
        for p in problems
    ]
    executor = SingleTurnAgentExecutor(remote_rm_url=f"{url}/get_reward")
    sampling = SimpleNamespace(max_tokens=1024, logprobs=None)
    rollouts = []
    for prompt, pid, answer in zip(prompts, ids, answers, strict=True):
        tokens = [*tokenizer.encode(answer, add_special_tokens=False), tokenizer.eos_token_id]
        out = await executor.execute(prompt, pid, sampling, 4096, tokenizer, Engine(tokens))
        rollouts.append({"reward": out["reward"], "scores": out["scores"], "logs": sorted(out["extra_logs"])})

    sharded = SingleTurnAgentExecutor(
        remote_rm_url=[f"{url}/get_reward", f"{url}/get_reward?profile=default"]
    )
    queries = [p + a for p, a in zip(prompts, answers, strict=True)]
    parts = await sharded._fetch_rewards_via_http(queries, prompts, ids)
    batch = [r for part in parts for r in part["rewards"]]
    print(
        json.dumps(
            {"openrlhf": version("openrlhf"), "expected": expected, "rollouts": rollouts, "batch": batch}
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
