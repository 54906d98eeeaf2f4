"""`POST /v1/prompt`: the served prompt for an inline problem, identical to what `/v1/problems` serves."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shared_schema import ChatMessage, ProblemSpec, PromptResponse
from trainer.client.env_client import EnvClient


def test_inline_prompt_matches_served_prompt(client: TestClient) -> None:
    served = client.get("/v1/problems", params={"split": "test", "limit": 3}).json()["items"]
    for p in served:
        body = {"problem": {"events": p["events"], "priorities": p["priorities"]}}
        response = client.post("/v1/prompt", json=body)
        assert response.status_code == 200, response.text
        assert PromptResponse.model_validate(response.json()).model_dump()["prompt"] == p["prompt"]


def test_env_client_prompt(client: TestClient) -> None:
    spec = ProblemSpec(
        events=[
            {"name": "Gym", "start": "07:00", "end": "08:00"},
            {"name": "Call", "start": "07:30", "end": "08:15"},
        ],
        priorities=["Call"],
    )
    prompt = EnvClient(client).prompt(spec)
    assert [m.role for m in prompt] == ["system", "user"]
    assert all(isinstance(m, ChatMessage) for m in prompt)
    assert "- Gym: 07:00 - 08:00" in prompt[1].content and "Priorities: Call" in prompt[1].content


def test_prompt_rejects_unknown_fields_and_bad_problems(client: TestClient) -> None:
    good = {"events": [{"name": "A", "start": "09:00", "end": "10:00"}], "priorities": []}
    assert client.post("/v1/prompt", json={"problem": good, "extra": 1}).status_code == 422
    bad = {"events": [{"name": "A", "start": "10:00", "end": "09:00"}], "priorities": []}
    assert client.post("/v1/prompt", json={"problem": bad}).status_code == 422
    unknown_priority = {**good, "priorities": ["B"]}
    assert client.post("/v1/prompt", json={"problem": unknown_priority}).status_code == 422
