"""`/v1/curriculum` over HTTP: sessions move with the reported rewards, survive a restart, refuse bad
input with a clear 4xx, and serve problems `/v1/score` resolves by id on any replica."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from env_server.service.app import create_app
from env_server.service.settings import Settings
from env_server.task.problems import gold_completion
from shared_schema import Problem


def _app(**kw: Any) -> TestClient:
    return TestClient(create_app(Settings(train_size=20, test_size=10, **kw)))


def _start(c: TestClient, **config: Any) -> str:
    r = c.post("/v1/curriculum", json=config)
    assert r.status_code == 200, r.text
    return str(r.json()["state"]["session_id"])


def _next(c: TestClient, sid: str, n: int) -> dict[str, Any]:
    r = c.post(f"/v1/curriculum/{sid}/next", json={"n": n})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _report(c: TestClient, sid: str, problems: list[dict[str, Any]], rewards: list[float]) -> dict[str, Any]:
    groups = [{"problem_id": p["id"], "rewards": rewards} for p in problems]
    r = c.post(f"/v1/curriculum/{sid}/report", json={"groups": groups})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_session_moves_up_and_down_with_the_rewards() -> None:
    c = _app()
    sid = _start(c, window=2, spread=[1.0], start_rung=3)
    served = _next(c, sid, 2)
    assert served["level"] == 3 and [p["rung"] for p in served["problems"]] == [3, 3]
    gold = [gold_completion(Problem.model_validate({k: p[k] for k in ("id", "events", "priorities",
            "optimal_score")})) for p in served["problems"]]  # fmt: skip
    items = [{"problem_id": p["id"], "completion": g} for p, g in zip(served["problems"], gold, strict=True)]
    scored = c.post("/v1/score", json={"items": items}).json()["results"]
    rewards = [r["reward"] for r in scored]
    assert rewards == [100.0, 100.0]  # the served ids resolve for scoring, and gold earns 100
    up = _report(c, sid, served["problems"], [100.0, 100.0, 100.0, 0.0])
    assert up["state"]["rung"] == 4 and up["level"] == 4 and up["guided"] == 0.25
    down = _report(c, sid, _next(c, sid, 2)["problems"], [0.0, 0.0, 0.0, 100.0])
    assert down["state"]["rung"] == 3
    assert c.get(f"/v1/curriculum/{sid}").json()["state"] == down["state"]
    for p in _next(c, sid, 4)["problems"]:
        assert p["prompt_style"] in ("guided", "default")
        assert p["prompt"][1]["content"].startswith(
            "Events by start time:" if p["prompt_style"] == "guided" else "Events:"
        )


def test_a_session_survives_a_restart_with_a_directory(tmp_path: Path) -> None:
    first = _app(curriculum_dir=tmp_path)
    sid = _start(first, window=1, spread=[1.0])
    state = _report(first, sid, _next(first, sid, 1)["problems"], [100.0])["state"]
    assert state["rung"] == 1
    again = _app(curriculum_dir=tmp_path)  # a new process, the same directory
    assert again.get(f"/v1/curriculum/{sid}").json()["state"] == state
    assert _next(again, sid, 1)["problems"][0]["id"] == "train-c1-000001"  # goes on where it was
    assert again.delete(f"/v1/curriculum/{sid}").status_code == 204
    assert again.get(f"/v1/curriculum/{sid}").status_code == 404


def test_a_lost_session_is_put_back_from_the_trainers_copy() -> None:
    first = _app()
    sid = _start(first, window=1, spread=[1.0])
    state = _report(first, sid, _next(first, sid, 1)["problems"], [100.0])["state"]
    restarted = _app()  # memory only: the session is gone
    missing = restarted.post(f"/v1/curriculum/{sid}/next", json={"n": 1})
    assert missing.status_code == 404 and "PUT" in missing.json()["detail"]
    assert restarted.put(f"/v1/curriculum/{sid}", json=state).json()["state"] == state
    assert _next(restarted, sid, 1)["problems"][0]["id"] == "train-c1-000001"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/v1/curriculum", {"target": 2}, 422),
        ("post", "/v1/curriculum", {"spread": [1, 1]}, 422),
        ("post", "/v1/curriculum", {"start_rung": 99}, 422),
        ("post", "/v1/curriculum", {"nonsense": 1}, 422),
        ("post", "/v1/curriculum/{sid}/next", {"n": 0}, 422),
        ("post", "/v1/curriculum/{sid}/next", {"n": 100000}, 422),
        (
            "post",
            "/v1/curriculum/{sid}/report",
            {"groups": [{"problem_id": "train-000001", "rewards": [1]}]},
            422,
        ),
        ("post", "/v1/curriculum/{sid}/report", {"groups": [{"problem_id": "x", "rewards": []}]}, 422),
        ("post", "/v1/curriculum/{sid}/report", {"groups": []}, 422),
        ("post", "/v1/curriculum/cur-0123456789abcdef/next", {"n": 1}, 404),
        ("post", "/v1/curriculum/../../etc/next", {"n": 1}, 404),
        ("get", "/v1/curriculum/not-a-session", None, 404),
        ("put", "/v1/curriculum/{sid}", {"session_id": "cur-ffffffffffffffff", "config": {}, "rung": 0}, 422),
        ("put", "/v1/curriculum/{sid}", {"session_id": "{sid}", "config": {}, "rung": 50}, 422),
    ],
)
def test_bad_requests_get_a_clear_4xx(method: str, path: str, body: Any, status: int) -> None:
    c = _app()
    sid = _start(c)
    if isinstance(body, dict) and body.get("session_id") == "{sid}":
        body = {**body, "session_id": sid}
    r = c.request(method.upper(), path.replace("{sid}", sid), json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]


def test_non_finite_rewards_are_refused() -> None:
    c = _app()
    sid = _start(c)
    pid = _next(c, sid, 1)["problems"][0]["id"]
    body = '{"groups": [{"problem_id": "' + pid + '", "rewards": [NaN]}]}'
    r = c.post(f"/v1/curriculum/{sid}/report", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_sessions_are_bounded() -> None:
    c = _app(curriculum_max_sessions=2)
    _start(c)
    _start(c)
    r = c.post("/v1/curriculum", json={})
    assert r.status_code == 429 and "DELETE" in r.json()["detail"]


def test_an_empty_directory_setting_means_memory() -> None:
    """`SCHED_CURRICULUM_DIR=` (compose's and the configmap's default) is no directory, not the cwd."""
    assert Settings(curriculum_dir="").curriculum_dir is None  # type: ignore[arg-type]
