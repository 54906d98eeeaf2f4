"""The TRL environment class over the service's tool episodes (trainer/integrations/trl_tools.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers.utils import get_json_schema

from env_server.task.problems import gold_completion
from shared_schema import ProblemSpec
from tests.conftest import LiveServer
from tests.trainer.conftest import tool_grpo_parts
from trainer.client.env_client import EnvClient
from trainer.integrations.trl_tools import (
    SchedulingToolEnv,
    scheduling_environment,
    tool_calling_tokenizer,
    tool_dataset,
)


def test_an_episode_through_the_trl_environment(live_server: LiveServer) -> None:
    rows = tool_dataset(live_server.url, n=2, split="train", offset=3)
    assert [r["problem_id"] for r in rows] == ["train-000003", "train-000004"]
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    factory = scheduling_environment(live_server.url, checks=2, check_cost=5.0)
    env = factory()  # as TRL builds it: no arguments
    assert isinstance(env, SchedulingToolEnv) and factory().client is env.client  # one pooled client
    note = env.reset(**rows[0])
    assert "You have 2 checks." in note and "check_schedule(answer)" in note
    assert note.startswith(
        "\n\nTools: "
    )  # TRL appends it to the user message as it is: a paragraph of its own

    first = env.check_schedule("no schedule here")
    assert first.splitlines()[0] == "verdict: format_error" and first.endswith("checks left: 1")
    with EnvClient.from_url(live_server.url) as client:
        problem = client.problem("train-000003")
    gold = gold_completion(ProblemSpec(events=problem.events, priorities=problem.priorities))
    second = env.check_schedule(gold)
    assert second == f"verdict: valid\nvalue: {problem.optimal_score}\nchecks left: 0"
    with pytest.raises(RuntimeError, match="no checks left"):
        env.check_schedule(gold)
    assert env.submit(gold) == "submitted: valid, reward 90"  # 100, less 2 checks at 5 points
    assert env.get_reward() == 90.0
    with pytest.raises(RuntimeError, match="already submitted"):
        env.submit(gold)

    env.reset(**rows[1])  # the instance is reused for the next rollout, as TRL pools them
    assert env.get_reward() == 0.0  # never submitted: no reward
    assert "overlaps" in env.check_schedule(overlapping(rows[1]["problem_id"], live_server.url))


def overlapping(problem_id: str, url: str) -> str:
    with EnvClient.from_url(url) as client:
        events = sorted(client.problem(problem_id).events, key=lambda e: e.start)
    body = "".join(
        f"<event><name>{e.name}</name><start>{e.start}</start><end>{e.end}</end></event>" for e in events
    )
    return f"<schedule>{body}</schedule>"


def test_the_tools_have_the_schemas_trl_builds() -> None:
    """TRL turns each public method into a tool through transformers' `get_json_schema` (type hints and
    the docstring's Args): both tools must pass it, with their argument described."""
    for tool in (SchedulingToolEnv.check_schedule, SchedulingToolEnv.submit):
        schema = get_json_schema(tool)["function"]
        assert schema["parameters"]["required"] == ["answer"]
        assert "<schedule>" in schema["parameters"]["properties"]["answer"]["description"]
        assert schema["description"]


def test_grpo_trainer_runs_with_the_environment(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """TRL's own `GRPOTrainer` with `environment_factory`: two steps on a tiny random model, each rollout
    an episode on the service, the environment's reward logged beside the others."""
    from datasets import Dataset
    from trl import GRPOTrainer

    started: list[str] = []
    base = scheduling_environment(live_server.url, checks=2)

    class Recorded(base):  # type: ignore[misc,valid-type]
        def reset(self, **row: Any) -> str:
            note = super().reset(**row)
            assert self.episode_id is not None
            started.append(self.episode_id)
            return note

    model, tokenizer, args = tool_grpo_parts(tiny_model_dir, tmp_path)
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=args,
        train_dataset=Dataset.from_list(tool_dataset(live_server.url, n=4)),
        environment_factory=Recorded,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all("rewards/Recorded/mean" in entry for entry in logs)
    assert len(started) >= 4 and len(set(started)) == len(started)  # one episode per rollout
    with EnvClient.from_url(live_server.url) as client:
        state = client.episode_state(started[-1])  # unsubmitted: still open, nothing spent by a random model
    assert state.checks == 2 and state.problem_id.startswith("train-")


def test_smollm2_tokenizer_renders_and_parses_the_tool_calls(tiny_model_dir: Path) -> None:
    """SmolLM2's tokenizer with `tool_calling_tokenizer`: TRL accepts it, the tools are in the prompt, and
    a call written as the template asks is parsed back by the response parser TRL sets."""
    from transformers import AutoTokenizer
    from trl.chat_template_utils import add_response_schema, supports_tool_calling

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert not supports_tool_calling(tokenizer)  # SmolLM2's own template: why this exists
    tokenizer = tool_calling_tokenizer(tokenizer)
    assert supports_tool_calling(tokenizer)
    messages = [{"role": "system", "content": "Plan the day."}, {"role": "user", "content": "Events: ..."}]
    tools = [SchedulingToolEnv.check_schedule, SchedulingToolEnv.submit]
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert '"name": "check_schedule"' in text and '"name": "submit"' in text and "<|im_start|>" in text
    add_response_schema(tokenizer)
    answer = "<schedule><event><name>Gym</name><start>08:00</start><end>09:00</end></event></schedule>"
    arguments = json.dumps({"answer": answer})
    call = f'<tool_call>\n{{"name": "check_schedule", "arguments": {arguments}}}\n</tool_call><|im_end|>'
    parsed = tokenizer.parse_response(call, prefix=text)
    assert parsed["tool_calls"][0]["function"] == {"name": "check_schedule", "arguments": {"answer": answer}}


def test_training_episodes_score_the_submitted_answer_or_the_last_message(live_server: LiveServer) -> None:
    """`TrainingToolEnv` (`sched-train train --tool_checks N`): the trainer's scorer reads each episode's
    answer, the submitted one or else the last message (submitted for it, closing the episode), so a
    rollout without tool calls gets exactly the single-turn reward; checks and submit calls are logged."""
    from trainer.integrations.trl_tools import TrainingToolEnv, last_message_text, training_environment
    from trainer.training.reward_funcs import EnvScorer

    rows = tool_dataset(live_server.url, n=2, split="train", offset=5)
    factory = training_environment(live_server.url, checks=2, prompt_style="guided")
    assert not callable(getattr(factory, "get_reward", None))  # TRL must not add a second reward
    used, plain = factory(), factory()
    assert isinstance(used, TrainingToolEnv)
    assert "You have 2 checks." in used.reset(**rows[0])
    plain.reset(**rows[1])
    with EnvClient.from_url(live_server.url) as client:
        golds = []
        for row in rows:
            problem = client.problem(row["problem_id"])
            golds.append(gold_completion(ProblemSpec(events=problem.events, priorities=problem.priorities)))
        assert "overlaps" in used.check_schedule(overlapping(rows[0]["problem_id"], live_server.url))
        assert used.submit(golds[0]) == "submitted: valid, reward 100"
        plain_id = plain.episode_id
        assert plain_id is not None
        completions = [
            [{"role": "assistant", "content": "", "tool_calls": [{"name": "check_schedule"}]},
             {"role": "tool", "content": "verdict: overlap"},
             {"role": "assistant", "content": "", "tool_calls": [{"name": "submit"}]}],
            [{"role": "assistant", "content": golds[1]}],
        ]  # fmt: skip
        metrics: dict[str, float] = {}
        scorer = EnvScorer(client)
        funcs = scorer.reward_funcs()
        ids = [r["problem_id"] for r in rows]
        fractions = [
            f(
                completions=completions,
                problem_id=ids,
                environments=[used, plain],
                log_metric=metrics.__setitem__,
            )
            for f in funcs
        ]
        rewards = [sum(w * fr[i] for w, fr in zip(scorer.weights, fractions, strict=True)) for i in range(2)]
        assert rewards == pytest.approx([100.0, 100.0]) and scorer.requests == 1
        assert metrics["tools/checks_per_episode"] == 0.5 and metrics["tools/submit_called_frac"] == 0.5
        assert plain.answer == golds[1] and plain.episode_id is None
        with pytest.raises(Exception, match="404"):
            client.episode_state(plain_id)  # the last message was submitted: the episode is over
    assert last_message_text(completions[1]) == plain.answer and last_message_text(completions[0]) == ""
    assert last_message_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}]}]) == "a"
    split = {"role": "assistant", "reasoning_content": "r", "tool_calls": [{"name": "submit"}]}  # TRL's parse
    assert last_message_text([split]) == "<think>r</think>\n"
