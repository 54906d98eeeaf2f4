"""OpenEnv routes: the documented openenv-core payloads (`/reset`, `/step`, `/state`, `/schema`, `/ws`)
and rewards equal to `/v1/score`'s. openenv-core itself is not installed (it pulls gradio and fastmcp), so
the shapes below are those of its `ResetResponse`, `StepResponse`, `State`, `SchemaResponse` and `WS*`
messages (openenv-core 0.3.0)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared_schema.integrations import OpenEnvResult

RESULT_KEYS = {"observation", "reward", "done"}  # openenv-core ResetResponse / StepResponse (extra=forbid)


def _gold(client: TestClient, obs: dict[str, Any]) -> str:
    spec = {"events": obs["events"], "priorities": obs["priorities"]}
    return str(client.post("/v1/solve", json={"problem": spec}).json()["completion"])


def _v1_reward(client: TestClient, pid: str, completion: str) -> float:
    body = {"items": [{"problem_id": pid, "completion": completion}]}
    return float(client.post("/v1/score", json=body).json()["results"][0]["reward"])


def test_reset_then_step_equals_v1_score(client: TestClient) -> None:
    r = client.post("/openenv/reset", json={"seed": 7})
    assert r.status_code == 200 and set(r.json()) == RESULT_KEYS
    reset = OpenEnvResult.model_validate(r.json())
    assert reset.reward is None and reset.done is False
    obs = reset.observation
    assert [m.model_dump() for m in obs.prompt] == client.get(f"/v1/problems/{obs.problem_id}").json()[
        "prompt"
    ]
    for completion in (_gold(client, r.json()["observation"]), "<think>x</think><schedule></schedule>"):
        s = client.post(
            "/openenv/step", json={"action": {"completion": completion, "problem_id": obs.problem_id}}
        )
        assert s.status_code == 200 and set(s.json()) == RESULT_KEYS
        step = OpenEnvResult.model_validate(s.json())
        assert step.done is True
        assert step.reward == _v1_reward(client, obs.problem_id, completion)
        assert step.observation.result is not None and step.observation.result.reward == step.reward
        body = {"return_events": True, "items": [{"problem_id": obs.problem_id, "completion": completion}]}
        read = client.post("/v1/score", json=body).json()["results"][0]["events"]
        assert step.observation.result.events is not None  # a step always says what it read
        assert [e.model_dump() for e in step.observation.result.events] == read


@pytest.mark.parametrize(
    ("body", "expected_id"),
    [
        ({"problem_id": "train-000003"}, "train-000003"),
        ({"index": 5}, "train-000005"),
        ({"split": "test", "index": 2}, "test-000002"),
    ],
)
def test_reset_picks_the_problem(client: TestClient, body: dict[str, Any], expected_id: str) -> None:
    assert client.post("/openenv/reset", json=body).json()["observation"]["problem_id"] == expected_id


def test_reset_seed_is_reproducible_and_default_is_random(client: TestClient) -> None:
    ids = {
        client.post("/openenv/reset", json={"seed": 3}).json()["observation"]["problem_id"] for _ in range(3)
    }
    assert len(ids) == 1
    empty = client.post("/openenv/reset")  # openenv-core's client may send no body at all
    assert empty.status_code == 200 and empty.json()["observation"]["problem_id"].startswith("train-")
    extra = client.post("/openenv/reset", json={"seed": 1, "episode_id": "e1", "some_new_field": True})
    assert extra.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/openenv/reset", {"problem_id": "nope"}, 404, "unknown problem_id"),
        ("/openenv/reset", {"index": 10_000}, 404, "out of range"),
        ("/openenv/reset", {"index": False}, 422, "index"),
        ("/openenv/reset", {"seed": "3"}, 422, "seed"),
        ("/openenv/reset", {"split": "valid"}, 422, "split"),
        ("/openenv/step", {"action": {"completion": "x"}}, 422, "problem_id"),
        ("/openenv/step", {"action": {"completion": "x", "problem_id": "nope"}}, 404, "unknown problem_id"),
        ("/openenv/step", {"action": {"completion": "x", "typo": 1}}, 422, "typo"),
        ("/openenv/step", {"completion": "x"}, 422, "action"),
    ],
)
def test_bad_requests_are_4xx(
    client: TestClient, path: str, body: dict[str, Any], status: int, detail: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status and detail in r.text
    if status == 422:  # shaped as the schema says, whether pydantic or the route raised it
        assert isinstance(r.json()["detail"], list) and r.json()["detail"][0]["loc"]


def test_state_schema_metadata_health(client: TestClient) -> None:
    assert client.get("/openenv/state").json() == {"episode_id": None, "step_count": 0, "problem_id": None}
    schema = client.get("/openenv/schema").json()
    assert set(schema) == {"action", "observation", "state"}
    assert "completion" in schema["action"]["properties"]
    assert "problem_id" in schema["observation"]["properties"]
    assert {"episode_id", "step_count"} <= set(schema["state"]["properties"])
    assert client.get("/openenv/metadata").json()["name"] == "scheduling"
    assert client.get("/openenv/health").json() == {"status": "healthy"}


def test_websocket_session(client: TestClient) -> None:
    """openenv-core's EnvClient protocol: `{"type": ..., "data": ...}` in, `observation`/`state`/`error` out."""
    with client.websocket_connect("/openenv/ws") as ws:
        ws.send_json({"type": "reset", "data": {"seed": 11, "episode_id": "ep-1"}})
        reset = ws.receive_json()
        assert reset["type"] == "observation" and set(reset["data"]) == RESULT_KEYS
        obs = reset["data"]["observation"]
        completion = _gold(client, obs)
        ws.send_json({"type": "step", "data": {"completion": completion}})  # the session knows the problem
        step = ws.receive_json()
        assert step["data"]["done"] is True
        assert step["data"]["reward"] == _v1_reward(client, obs["problem_id"], completion) == 100.0
        ws.send_json({"type": "state"})
        state = ws.receive_json()
        assert state == {
            "type": "state",
            "data": {"episode_id": "ep-1", "step_count": 1, "problem_id": obs["problem_id"]},
        }
        ws.send_json({"type": "dance"})
        assert ws.receive_json()["type"] == "error"
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "close"})
