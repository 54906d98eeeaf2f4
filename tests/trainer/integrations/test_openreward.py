"""The service's ORS routes (env_server/service/integrations/openreward.py) driven by the real clients: the
`openreward` SDK, and TRL's `OpenRewardSpec` with its own `GRPOTrainer`, against a live service."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_schema import ScoreItem
from tests.conftest import LiveServer, missing_tool
from tests.trainer.conftest import tool_grpo_parts
from trainer.client.env_client import EnvClient


@pytest.fixture(autouse=True)
def _sdk() -> None:
    """`make install` adds the SDK (--no-deps: pyproject.toml's `openreward` extra says why)."""
    if importlib.util.find_spec("openreward") is None:
        missing_tool("the openreward SDK is not installed (make install adds it)")


@pytest.fixture
def ors_url(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The live service's URL, where the SDK looks for sessions (it would prepend `sessions.` to the
    host otherwise), with its update check off."""
    monkeypatch.setenv("OPENREWARD_SESSION_URL", live_server.url)
    monkeypatch.setenv("OPENREWARD_API_URL", live_server.url)
    monkeypatch.setenv("OPENREWARD_DISABLE_UPDATE_CHECK", "1")
    yield live_server.url


def test_the_sdk_lists_tasks_and_tools_and_runs_an_episode(ors_url: str) -> None:
    from openreward import OpenReward
    from openreward.api.errors import ToolCallError

    with EnvClient.from_url(ors_url) as service:
        problem = service.problem("train-000001")
        answer = service.solve(problem).completion
        scored = service.score([ScoreItem(problem_id=problem.id, completion=answer)]).results[0]
    assert scored.reward == 100

    client = OpenReward(base_url=ors_url)
    try:
        env = client.environments.get("scheduling")
        assert env.list_splits() == ["train", "test"]
        n_train = env.num_tasks("train")
        tasks = env.list_tasks("train")
        assert len(tasks) == n_train > 1
        assert [t.task_spec["index"] for t in tasks] == list(range(n_train))
        task = env.get_task("train", 1)
        assert task.task_spec["problem_id"] == "train-000001" == tasks[1].task_spec["problem_id"]
        assert [t.task_spec["index"] for t in env.get_task_range("test", -2)] == [
            env.num_tasks("test") - 2,
            env.num_tasks("test") - 1,
        ]
        tools = {t.name: t for t in env.list_tools()}
        assert sorted(tools) == ["check_schedule", "submit"]
        assert tools["submit"].input_schema is not None
        assert tools["submit"].input_schema["required"] == ["answer"]

        with env.session(split="train", index=1) as session:
            prompt = "\n".join(b.text for b in session.get_prompt())
            assert "check_schedule(answer)" in prompt and "You have 3 checks." in prompt
            assert sorted(t.name for t in session.list_tools()) == ["check_schedule", "submit"]
            checked = session.call_tool("check_schedule", {"answer": answer})
            assert checked.reward is None and not checked.finished
            assert checked.blocks[0].text.startswith("verdict: valid")
            assert checked.metadata is not None and checked.metadata["remaining_checks"] == 2
            with pytest.raises(ToolCallError) as unknown:
                session.call_tool("solve", {"answer": answer})
            assert unknown.value.reason == "not_found"
            with pytest.raises(ToolCallError) as bad:
                session.call_tool("submit", {"text": answer})
            assert bad.value.reason == "input_validation"
            sid = session.sid
            assert httpx.get(f"{ors_url}/v1/episodes/{sid}").json()["checks_used"] == 1  # the same episode
            done = session.call_tool("submit", {"answer": answer})
            assert done.finished and done.reward == scored.reward  # as /v1/score, no check cost
            assert done.metadata is not None and done.metadata["result"]["verdict"] == "valid"
            assert httpx.get(f"{ors_url}/v1/episodes/{sid}").status_code == 404  # ended
    finally:
        client.environments.close()


def test_session_routes_answer_clear_errors(ors_url: str) -> None:
    no_session = httpx.post(f"{ors_url}/call", json={"name": "submit", "input": {"answer": "x"}})
    assert no_session.status_code == 422  # X-Session-ID is required
    headers = {"X-Session-ID": "ep-0000000000000000"}
    gone = httpx.post(f"{ors_url}/call", json={"name": "submit", "input": {"answer": "x"}}, headers=headers)
    assert gone.status_code == 404 and "no open session" in gone.json()["detail"]
    assert httpx.post(f"{ors_url}/ping", headers=headers).status_code == 404
    bad_sid = httpx.post(
        f"{ors_url}/create", json={"split": "train", "index": 0}, headers={"X-Session-ID": "x"}
    )
    assert bad_sid.status_code == 400
    no_task = httpx.post(f"{ors_url}/create", json={"split": "train", "index": 10**6}, headers=headers)
    assert no_task.status_code == 404
    assert httpx.post(f"{ors_url}/num_tasks", json={"split": "dev"}).status_code == 422
    ok = httpx.post(f"{ors_url}/create", json={"split": "test", "index": 0}, headers=headers)
    assert ok.status_code == 200 and ok.json() == {"sid": headers["X-Session-ID"]}
    again = httpx.post(f"{ors_url}/create", json={"split": "test", "index": 0}, headers=headers)
    assert again.status_code == 409
    assert httpx.post(f"{ors_url}/ping", headers=headers).json() == {"status": "ok"}
    assert httpx.post(f"{ors_url}/delete", headers=headers).status_code == 200
    assert httpx.get(f"{ors_url}/prompt", headers=headers).status_code == 404


def test_grpo_trainer_runs_with_the_openreward_spec(
    ors_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """TRL's `OpenRewardSpec` over the live service: its dataset, environment factory and reward function
    plug into TRL's own `GRPOTrainer`, which runs two steps on a tiny random model."""
    from trl import GRPOTrainer
    from trl.experimental.openreward import OpenRewardSpec

    spec = OpenRewardSpec(ors_url, env_name="scheduling", num_tasks=4)
    dataset = spec.train_dataset
    assert dataset["task_index"] == [0, 1, 2, 3]
    assert dataset["problem_id"] == [f"train-00000{i}" for i in range(4)]
    env = spec.environment_factory()
    prompt = env.reset(task_index=2)
    assert "check_schedule(answer)" in prompt and hasattr(env, "submit")
    assert env.check_schedule(answer="no schedule").startswith("verdict: format_error")
    env._close()

    model, tokenizer, args = tool_grpo_parts(tiny_model_dir, tmp_path)
    made: list[Any] = []

    def factory() -> Any:
        made.append(spec.environment_factory())
        return made[-1]

    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=args,
        train_dataset=dataset,
        environment_factory=factory,
        reward_funcs=spec.reward_funcs,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all("rewards/_outcome_only_reward_func/mean" in entry for entry in logs)
    open_sids = [e._session.sid for e in made if e._session is not None]  # the last step's rollouts
    assert open_sids
    for sid in open_sids:  # each an episode of the service (unsubmitted by a random model)
        assert httpx.get(f"{ors_url}/v1/episodes/{sid}").json()["problem_id"].startswith("train-")


def test_a_retried_tool_call_with_its_call_id_is_answered_not_redone(ors_url: str) -> None:
    """`call_id` (contract section 8, Retries) through the ORS door: the retry of a check is not spent
    twice, the retry of a submit finds its result, and a call_id reused for another answer is bad input."""
    from openreward import OpenReward
    from openreward.api.errors import ToolCallError

    empty = {"answer": "<schedule></schedule>"}
    client = OpenReward(base_url=ors_url)
    try:
        env = client.environments.get("scheduling")
        schema = {t.name: t for t in env.list_tools()}["check_schedule"].input_schema
        assert schema is not None and schema["properties"]["call_id"]["maxLength"] == 64
        with env.session(split="train", index=2) as session:
            first = session.call_tool("check_schedule", {**empty, "call_id": "check-1"})
            again = session.call_tool("check_schedule", {**empty, "call_id": "check-1"})
            assert first.metadata is not None and again.metadata is not None
            assert first.metadata["remaining_checks"] == again.metadata["remaining_checks"] == 2
            assert again.blocks[0].text == first.blocks[0].text
            with pytest.raises(ToolCallError) as clash:
                session.call_tool(
                    "check_schedule", {"answer": "<schedule> </schedule>", "call_id": "check-1"}
                )
            assert clash.value.reason == "input_validation"
            with pytest.raises(ToolCallError) as malformed:
                session.call_tool("check_schedule", {**empty, "call_id": "not an id"})
            assert malformed.value.reason == "input_validation"
            assert httpx.get(f"{ors_url}/v1/episodes/{session.sid}").json()["checks_used"] == 1
            done = session.call_tool("submit", {**empty, "call_id": "submit-1"})
            retried = session.call_tool("submit", {**empty, "call_id": "submit-1"})
            assert done.finished and retried.finished and retried.reward == done.reward
            assert retried.metadata == done.metadata
        nowhere = {"X-Session-ID": "ep-0000000000000000"}
        lost = {"name": "submit", "input": {**empty, "call_id": "submit-2"}}
        assert httpx.post(f"{ors_url}/call", json=lost, headers=nowhere).status_code == 404
    finally:
        client.environments.close()
