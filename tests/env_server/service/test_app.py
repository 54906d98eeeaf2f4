"""HTTP API through TestClient: docs/contract.md section 5, limits, and bad input that never yields a 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from env_server.scoring.profiles import REWARD_VERSION
from env_server.service.app import create_app
from env_server.service.settings import Settings

SPEC = {
    "events": [
        {"name": "A", "start": "09:00", "end": "10:00"},
        {"name": "B", "start": "09:30", "end": "11:00"},
        {"name": "C", "start": "10:00", "end": "10:30"},
    ],
    "priorities": ["B"],
}


def test_health_and_info(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "reward_version": REWARD_VERSION}
    info = client.get("/v1/info").json()
    assert info["reward_version"] == REWARD_VERSION and info["splits"] == {"train": 64, "test": 16}
    profiles = {p["name"]: p for p in info["profiles"]}
    assert set(profiles) == {"default", "original", "graded"}
    assert {c["name"]: c["weight"] for c in profiles["default"]["components"]} == {
        "format": 10, "order": 20, "score": 70
    }  # fmt: skip
    assert info["limits"]["max_batch_items"] == 4096 and "hard" in info["difficulties"]
    assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200


def test_problem_pages_and_lookup(client: TestClient) -> None:
    page = client.get("/v1/problems", params={"split": "test", "offset": 10, "limit": 100}).json()
    assert page["total"] == 16 and [p["id"] for p in page["items"]] == [
        f"test-{i:06d}" for i in range(10, 16)
    ]
    item = page["items"][0]
    assert [m["role"] for m in item["prompt"]] == ["system", "user"]
    assert all(e["name"] in item["prompt"][1]["content"] for e in item["events"])
    assert client.get(f"/v1/problems/{item['id']}").json() == item
    hard = client.get("/v1/problems", params={"difficulty": "hard", "limit": 2}).json()["items"]
    assert hard[0]["id"] == "train-hard-000000" and len(hard[0]["events"]) >= 12
    assert client.get("/v1/problems/train-hard-000000").json() == hard[0]
    assert client.get("/v1/problems/nope").status_code == 404
    assert client.get("/v1/problems/train-000064").status_code == 404  # past the split
    assert client.get("/v1/problems", params={"difficulty": "bogus"}).status_code == 422
    assert client.get("/v1/problems", params={"split": "valid"}).status_code == 422
    assert client.get("/v1/problems", params={"limit": 5000}).status_code == 422


def test_solve_then_score_round_trip(client: TestClient) -> None:
    solved = client.post("/v1/solve", json={"problem": SPEC}).json()
    assert solved["optimal_score"] == 180 and [e["name"] for e in solved["schedule"]] == ["B"]
    problem = client.get("/v1/problems/test-000003").json()
    gold = client.post(
        "/v1/solve", json={"problem": {k: problem[k] for k in ("events", "priorities")}}
    ).json()
    body = {
        "items": [
            {"problem_id": "test-000003", "completion": gold["completion"]},
            {"problem_id": "does-not-exist", "completion": gold["completion"]},
            {"problem": SPEC, "completion": "<think>x</think><schedule></schedule>"},
        ]
    }
    out = client.post("/v1/score", json=body).json()
    assert out["reward_version"] == REWARD_VERSION and out["profile"] == "default"
    ok, missing, bad = out["results"]
    assert (
        ok["reward"] == 100.0
        and ok["verdict"] == "valid"
        and ok["score_ratio"] == 1.0
        and ok["error"] is None
    )
    assert missing["reward"] is None and "does-not-exist" in missing["error"]
    assert bad["reward"] == 0.0 and bad["verdict"] == "format_error" and bad["optimal_score"] == 180
    orig = client.post("/v1/score", json={**body, "profile": "original"}).json()
    assert orig["profile"] == "original" and len(orig["results"]) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [{"completion": "x"}]}, "exactly one"),
        ({"items": [{"problem_id": "a", "completion": 3}]}, "completion"),
        ({"items": [{"problem_id": "a", "completion": "x"}], "extra": 1}, "extra"),
        (
            {
                "items": [
                    {
                        "problem": {"events": [{"name": "a", "start": "9:00", "end": "10:00"}]},
                        "completion": "",
                    }
                ]
            },
            "start",
        ),
        ({"items": [{"problem_id": "a", "completion": "x"}], "profile": "nope"}, "unknown profile"),
    ],
)
def test_malformed_requests_get_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    r = client.post("/v1/score", json=body)
    assert r.status_code == 422
    assert field in json.dumps(r.json()["detail"])


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/v1/score", content=b'{"items": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "json" in json.dumps(r.json()).lower()


def test_limits_give_413_and_long_completions_are_truncated() -> None:
    small = Settings(
        train_size=4, test_size=2, max_body_bytes=4096, max_batch_items=3, max_completion_chars=100
    )
    c = TestClient(create_app(small))
    item = {"problem_id": "train-000000", "completion": "x"}
    assert c.post("/v1/score", json={"items": [item] * 4}).status_code == 413
    big = c.post("/v1/score", json={"items": [{**item, "completion": "x" * 5000}]})
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    streamed = c.post(
        "/v1/score", content=(b"x" for _ in range(10_000)), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    ok = c.post("/v1/score", json={"items": [{**item, "completion": "<think>" + "z" * 500}]}).json()
    assert ok["results"][0]["violations"][0]["type"] == "truncated"


def test_score_is_deterministic_across_app_instances(app: object) -> None:
    other = TestClient(create_app(Settings(train_size=64, test_size=16, seed=0)))
    first = TestClient(app).get("/v1/problems/train-000042").json()  # type: ignore[arg-type]
    assert other.get("/v1/problems/train-000042").json() == first


def test_serves_a_dataset_file(tmp_path: Path) -> None:
    rows = [
        {"id": "pub-1", "events": [["A", "09:00", "10:00"], ["B", "09:30", "11:00"], ["C", "10:00", "10:30"]],
         "priority_events": ["B"], "optimal_score": 1},
    ]  # fmt: skip
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    c = TestClient(create_app(Settings(train_size=2, test_file=path)))
    info = c.get("/v1/info").json()
    assert info["splits"]["test"] == 1 and info["generator"]["sources"]["test"] == "file:test.jsonl"
    assert str(tmp_path) not in json.dumps(info)  # no server paths
    assert info["generator"]["imported_optimal_score_mismatches"] == {"test": 1}
    problem = c.get("/v1/problems/pub-1").json()
    assert problem["optimal_score"] == 180  # recomputed, not trusted
    assert c.get("/v1/problems", params={"split": "test", "difficulty": "hard"}).status_code == 422


def test_prompt_styles_and_traced_answers(client: TestClient) -> None:
    assert client.get("/v1/info").json()["prompt_styles"] == ["default", "compact", "guided"]
    default = client.get("/v1/problems/test-000001").json()
    compact = client.get("/v1/problems/test-000001", params={"prompt_style": "compact"}).json()
    assert compact["prompt"][1] == default["prompt"][1]  # the same events, the same order
    assert len(compact["prompt"][0]["content"]) < len(default["prompt"][0]["content"]) / 2
    page = client.get("/v1/problems", params={"split": "test", "limit": 2, "prompt_style": "compact"}).json()
    assert page["items"][1] == compact
    inline = client.post("/v1/prompt", json={"problem": SPEC, "prompt_style": "compact"}).json()["prompt"]
    assert inline[0] == compact["prompt"][0]
    assert client.get("/v1/problems/test-000001", params={"prompt_style": "terse"}).status_code == 422
    guided = client.get("/v1/problems/test-000001", params={"prompt_style": "guided"}).json()
    assert guided["events"] == default["events"]  # the problem is the same; only its prompt is sorted
    assert guided["prompt"][1]["content"].startswith("Events by start time:\n- ")
    inline = client.post("/v1/prompt", json={"problem": SPEC, "prompt_style": "guided"}).json()["prompt"]
    assert inline[0] == guided["prompt"][0]

    problem = {"events": default["events"], "priorities": default["priorities"]}
    brief = client.post("/v1/solve", json={"problem": problem}).json()
    traced = client.post("/v1/solve", json={"problem": problem, "trace": True}).json()
    assert traced["schedule"] == brief["schedule"] and traced["optimal_score"] == brief["optimal_score"]
    assert (
        traced["completion"].startswith("<think>By start time:\n")
        and brief["completion"] != traced["completion"]
    )
    scored = client.post(
        "/v1/score", json={"items": [{"problem_id": "test-000001", "completion": traced["completion"]}]}
    ).json()["results"][0]
    assert scored["reward"] == 100.0 and scored["verdict"] == "valid"
    by_hour = client.post(
        "/v1/solve", json={"problem": problem, "trace": True, "trace_style": "by_hour"}
    ).json()
    assert (
        by_hour["completion"].startswith("<think>By start hour:\n00h")
        and by_hour["schedule"] == brief["schedule"]
    )
    scored = client.post(
        "/v1/score", json={"items": [{"problem_id": "test-000001", "completion": by_hour["completion"]}]}
    ).json()["results"][0]
    assert scored["reward"] == 100.0 and scored["verdict"] == "valid"
    bad = client.post("/v1/solve", json={"problem": problem, "trace": True, "trace_style": "shuffled"})
    assert bad.status_code == 422 and "trace_style" in bad.text
