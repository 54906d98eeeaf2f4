"""The TRL environment class over the service's tool episodes (trainer/integrations/trl_tools.py)."""

from __future__ import annotations

import pytest
from transformers.utils import get_json_schema

from env_server.task.problems import gold_completion
from shared_schema import ProblemSpec
from tests.conftest import LiveServer
from trainer.client.env_client import EnvClient
from trainer.integrations.trl_tools import SchedulingToolEnv, scheduling_environment, tool_dataset


def test_an_episode_through_the_trl_environment(live_server: LiveServer) -> None:
    rows = tool_dataset(live_server.url, n=2, split="train", offset=3)
    assert [r["problem_id"] for r in rows] == ["train-000003", "train-000004"]
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    factory = scheduling_environment(live_server.url, checks=2, check_cost=5.0)
    env = factory()  # as TRL builds it: no arguments
    assert isinstance(env, SchedulingToolEnv) and factory().client is env.client  # one pooled client
    note = env.reset(**rows[0])
    assert "You have 2 checks." in note and "check_schedule(answer)" in note

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
