"""OpenRLHF `/get_reward`: its payload in, its shape out, and rewards equal to `/v1/score`'s."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from env_server.service.app import create_app
from env_server.service.integrations.openrlhf import strip_end_tokens, strip_prompt
from env_server.service.settings import Settings

PROMPT = "<|im_start|>system\nPlan the day.<|im_end|>\n<|im_start|>user\nEvents: ...<|im_end|>\n<|im_start|>assistant\n"


def _cases(client: TestClient, n: int = 4) -> list[tuple[dict[str, Any], str]]:
    """(problem, completion) pairs: the gold answer, a truncated one, garbage, and a one-event answer."""
    problems = client.get("/v1/problems", params={"limit": n}).json()["items"]
    out = []
    for i, p in enumerate(problems):
        gold = client.post("/v1/solve", json={"problem": {k: p[k] for k in ("events", "priorities")}}).json()
        completion = gold["completion"]
        variants = [
            completion,
            completion[: len(completion) // 2],
            "no schedule here",
            completion.replace("</think>", ""),
        ]
        out.append((p, variants[i % len(variants)]))
    return out


def _v1_score(
    client: TestClient, cases: list[tuple[dict[str, Any], str]], profile: str = "default"
) -> list[Any]:
    items = [{"problem_id": p["id"], "completion": c} for p, c in cases]
    return client.post("/v1/score", json={"profile": profile, "items": items}).json()["results"]


@pytest.mark.parametrize("profile", ["default", "original"])
@pytest.mark.parametrize("end", ["", "<|im_end|>", "<|eot_id|><|end_of_text|>", "</s>"])
def test_rewards_equal_v1_score(client: TestClient, profile: str, end: str) -> None:
    """OpenRLHF decodes a rollout with its special tokens: the end-of-sequence token that ends the query
    is not part of the answer (the gold answer followed by `<|im_end|>` keeps its 100)."""
    cases = _cases(client)
    body = {
        "query": [PROMPT + c + end for _, c in cases],
        "prompts": [PROMPT] * len(cases),
        "labels": [p["id"] for p, _ in cases],
    }
    r = client.post("/get_reward", json=body, params={"profile": profile})
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"rewards", "scores", "extra_logs"}
    expected = _v1_score(client, cases, profile)
    assert got["rewards"] == [e["reward"] for e in expected]
    assert got["scores"] == pytest.approx([e["reward"] / 100 for e in expected])
    for name in ("format", "order", "score"):
        assert got["extra_logs"][name] == [e["components"][name] for e in expected]
    assert got["extra_logs"]["score_ratio"] == [e["score_ratio"] for e in expected]
    assert max(got["rewards"]) == 100.0  # the gold answer


def test_problem_json_label_equals_id_label(client: TestClient) -> None:
    (p, c), *_ = _cases(client, 1)
    as_id = {"query": [PROMPT + c], "prompts": [PROMPT], "labels": [p["id"]]}
    as_json = {**as_id, "labels": [json.dumps(p)]}
    spec_only = {**as_id, "labels": [json.dumps({"events": p["events"], "priorities": p["priorities"]})]}
    rewards = [client.post("/get_reward", json=b).json()["rewards"] for b in (as_id, as_json, spec_only)]
    assert rewards[0] == rewards[1] == rewards[2] == [100.0]


def test_extra_fields_from_newer_openrlhf_are_ignored(client: TestClient) -> None:
    (p, c), *_ = _cases(client, 1)
    body = {"query": [PROMPT + c], "prompts": [PROMPT], "labels": [p["id"]], "metadata": [{}]}
    assert client.post("/get_reward", json=body).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"query": ["x"], "prompts": ["x"], "labels": ["train-999999"]}, 422, "unknown problem_id"),
        ({"query": ["x"], "prompts": ["x"], "labels": ["{not json"]}, 422, "does not parse"),
        ({"query": ["x"], "prompts": ["x"], "labels": ['{"priorities": []}']}, 422, "needs `events`"),
        ({"query": ["x", "y"], "prompts": ["x"], "labels": ["train-000000"]}, 422, "one entry per sample"),
        ({"query": ["x"], "prompts": ["x"]}, 422, "labels"),
    ],
)
def test_bad_requests_are_422(client: TestClient, body: dict[str, Any], status: int, detail: str) -> None:
    r = client.post("/get_reward", json=body)
    assert r.status_code == status
    assert detail in r.text


def test_unknown_profile_and_batch_limit() -> None:
    small = create_app(Settings(train_size=4, test_size=1, max_batch_items=2))
    with TestClient(small) as c:
        body = {"query": ["x"] * 3, "prompts": ["x"] * 3, "labels": ["train-000000"] * 3}
        assert c.post("/get_reward", json=body).status_code == 413
        one = {"query": ["x"], "prompts": ["x"], "labels": ["train-000000"]}
        r = c.post("/get_reward", json=one, params={"profile": "nope"})
        assert r.status_code == 422 and "unknown profile" in r.text


@pytest.mark.parametrize(
    ("query", "prompt", "expected"),
    [
        ("PROMPT\nassistant\nANSWER", "PROMPT\nassistant\n", "ANSWER"),
        (
            "<s>PROMPT\nassistant\nANSWER",
            "PROMPT\nassistant\n",
            "\nANSWER",
        ),  # prefix changed: after last line
        ("ANSWER only", "PROMPT", "ANSWER only"),  # prompt not found: the whole query
    ],
)
def test_strip_prompt(query: str, prompt: str, expected: str) -> None:
    assert strip_prompt(query, prompt) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("</schedule><|im_end|>", "</schedule>"),
        ("</schedule>\n<|eot_id|><|end_of_text|>", "</schedule>\n"),  # the white space before stays
        ("</schedule></s>", "</schedule>"),
        ("</schedule><eos><pad><pad>", "</schedule>"),
        ("<|im_end|> and then text", "<|im_end|> and then text"),  # only a run that ends the text
        ("</schedule> <| not a token |>", "</schedule> <| not a token |>"),
        ("</schedule>", "</schedule>"),
    ],
)
def test_strip_end_tokens(response: str, expected: str) -> None:
    assert strip_end_tokens(response) == expected
