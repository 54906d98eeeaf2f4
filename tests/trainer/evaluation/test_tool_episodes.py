"""The tool-episode evaluation harness: TRL's loop, token for token, with a scripted engine and a live service."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared_schema import ProblemSpec
from tests.conftest import LiveServer
from trainer.client.env_client import EnvClient
from trainer.evaluation.tool_episodes import HFTokenEngine, run_episodes, summarize, tool_suffix_ids
from trainer.integrations.trl_tools import tool_calling_tokenizer, training_environment

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer
    from trl.chat_template_utils import add_response_schema

    return add_response_schema(tool_calling_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir)))


def call(name: str, answer: str) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': {'answer': answer}})}\n</tool_call>"


class Scripted:
    """A `TokenEngine` that answers each episode's turns from a script (an episode is known by its first
    prompt, which every later prompt of it extends), recording every prompt it was given."""

    def __init__(self, tokenizer: Any, scripts: list[list[str]]) -> None:
        self.tokenizer, self.scripts = tokenizer, scripts
        self.firsts: list[list[int]] = []
        self.turns: list[int] = []
        self.seen: list[tuple[list[int], int]] = []

    def continue_tokens(self, prompts: list[list[int]], max_new_tokens: list[int]) -> list[list[int]]:
        out = []
        for prompt, limit in zip(prompts, max_new_tokens, strict=True):
            known = [i for i, first in enumerate(self.firsts) if prompt[: len(first)] == first]
            if known:
                episode = known[0]
            else:
                episode = len(self.firsts)
                self.firsts.append(list(prompt))
                self.turns.append(0)
            self.seen.append((list(prompt), limit))
            text = self.scripts[episode][self.turns[episode]] + "<|im_end|>"
            self.turns[episode] += 1
            out.append(self.tokenizer.encode(text, add_special_tokens=False)[:limit])
        return out


def gold_for(client: EnvClient, problem_id: str) -> str:
    from env_server.task.problems import gold_completion

    p = client.problem(problem_id)
    return gold_completion(ProblemSpec(events=p.events, priorities=p.priorities))


def test_a_checked_and_submitted_episode_a_plain_one_and_a_cut_one(
    live_server: LiveServer, tokenizer: Any
) -> None:
    with EnvClient.from_url(live_server.url) as client:
        problems = client.problems("train", 0, 3, prompt_style="guided").items
        gold = [gold_for(client, p.id) for p in problems]
        schedule = gold[0][gold[0].index("<schedule>") :]
        engine = Scripted(
            tokenizer,
            [
                ["<think>plan</think>\n" + call("check_schedule", schedule), call("submit", gold[0]), ""],
                [gold[1]],  # answers at once: the last message is the answer
                ["<think>" + "x " * 1500],  # runs out of budget
            ],
        )
        factory = training_environment(live_server.url, 2, "guided")
        records = run_episodes(
            engine, tokenizer, client, problems, factory, tools=True, max_completion_length=1000
        )
    checked, plain, cut = records
    assert (checked.verdict, checked.reward, checked.checks_used, checked.submit_called) == (
        "valid",
        100.0,
        1,
        True,
    )
    assert (
        checked.turns == 3 and checked.tool_calls == 2 and checked.tool_errors == 0 and not checked.truncated
    )
    assert checked.answer == gold[0]
    assert (plain.verdict, plain.reward, plain.checks_used, plain.submit_called, plain.turns) == (
        "valid", 100.0, 0, False, 1
    )  # fmt: skip
    assert cut.truncated and cut.verdict == "format_error" and cut.sampled_tokens == 1000
    # the second turn of the first episode continues from prompt + first turn + the check's result tokens
    first_prompt, _ = engine.seen[0]
    second_prompt, second_budget = next(
        s for s in engine.seen[1:] if s[0][: len(first_prompt)] == first_prompt
    )
    turn = tokenizer.encode("<think>plan</think>\n" + call("check_schedule", schedule) + "<|im_end|>",
                            add_special_tokens=False)  # fmt: skip
    result = second_prompt[len(first_prompt) + len(turn) :]
    assert second_prompt[len(first_prompt) : len(first_prompt) + len(turn)] == turn
    text = tokenizer.decode(result)
    assert "<tool_response>" in text and "verdict: valid" in text and "checks left: 1" in text
    assert second_budget == 1000 - len(turn) - len(result)
    summary = summarize(records)
    assert summary["valid_pct"] == pytest.approx(200 / 3) and summary["mean_checks"] == pytest.approx(1 / 3)
    assert summary["share_submit_called"] == pytest.approx(1 / 3) and summary["truncated"] == 1


def test_single_turn_episodes_have_no_tools(live_server: LiveServer, tokenizer: Any) -> None:
    with EnvClient.from_url(live_server.url) as client:
        problems = client.problems("train", 0, 2, prompt_style="guided").items
        gold = [gold_for(client, p.id) for p in problems]
        engine = Scripted(tokenizer, [[gold[0]], [call("check_schedule", gold[1])]])
        records = run_episodes(engine, tokenizer, client, problems, None, tools=False)
    # without tools a call is just text: scored as written (the events inside it count, the format does not)
    assert [(r.verdict, r.reward) for r in records] == [("valid", 100.0), ("valid", 90.0)]
    assert all(r.turns == 1 and r.tool_calls == 0 for r in records)
    assert "Tools:" not in tokenizer.decode(engine.seen[0][0]) and '"check_schedule"' not in tokenizer.decode(
        engine.seen[0][0]
    )


def test_tool_suffix_matches_trls_own(tokenizer: Any) -> None:
    from trl import GRPOTrainer

    fake = SimpleNamespace(
        processing_class=tokenizer,
        _tokenizer=tokenizer,
        chat_template=None,
        chat_template_kwargs={},
        _is_vlm=False,
    )
    messages = [
        {"role": "tool", "name": "check_schedule", "content": "verdict: valid\nvalue: 10\nchecks left: 1"}
    ]
    assert tool_suffix_ids(tokenizer, messages) == GRPOTrainer._get_tool_suffix_ids(fake, messages)


def test_the_transformers_engine_runs_the_loop(live_server: LiveServer, tiny_model_dir: Path) -> None:
    from trainer.evaluation.generation import SamplingConfig
    from trainer.evaluation.hf_backend import HFBackend

    backend = HFBackend(str(tiny_model_dir), SamplingConfig(max_new_tokens=8), batch_size=2, dtype="float32")
    backend.tokenizer = tool_calling_tokenizer(backend.tokenizer)
    with EnvClient.from_url(live_server.url) as client:
        problems = client.problems("train", 0, 3, prompt_style="guided").items
        factory = training_environment(live_server.url, 1, "guided")
        records = run_episodes(
            HFTokenEngine(backend),
            backend.tokenizer,
            client,
            problems,
            factory,
            tools=True,
            max_completion_length=8,
        )
    assert len(records) == 3 and all(r.sampled_tokens <= 8 and r.verdict == "format_error" for r in records)
