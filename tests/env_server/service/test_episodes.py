"""`/v1/episodes`: the check-and-submit tool episode (docs/contract.md section 8)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from env_server.service.app import create_app
from env_server.service.settings import Settings
from env_server.task.problems import gold_completion
from shared_schema import ProblemSpec
from tests.conftest import SMALL, start_server

PID = "train-000003"


def schedule(events: list[dict[str, Any]]) -> str:
    body = "".join(
        f"<event><name>{e['name']}</name><start>{e['start']}</start><end>{e['end']}</end></event>\n"
        for e in events
    )
    return f"<think>x</think>\n<schedule>\n{body}</schedule>"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(**SMALL, access_log=False))) as c:
        yield c


def start(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/episodes", json={"problem_id": PID, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_an_episode_start_check_submit(client: TestClient) -> None:
    ep = start(client)
    assert ep["episode_id"].startswith("ep-") and ep["problem_id"] == PID
    assert (ep["checks"], ep["checks_used"], ep["remaining_checks"], ep["check_cost"]) == (3, 0, 3, 0.0)
    system = ep["prompt"][0]["content"]
    assert (
        "check_schedule(answer)" in system and "You have 3 checks." in system and "submit(answer)" in system
    )
    assert system.endswith("\n\n" + ep["tool_instructions"])
    problem = client.get(f"/v1/problems/{PID}").json()
    assert ep["events"] == problem["events"] and ep["priorities"] == problem["priorities"]
    assert ep["prompt"][1] == problem["prompt"][1]  # the user message is the problem's, as served

    # every event at once: overlaps, reported as typed pairs, with the value of what was listed
    everything = sorted(problem["events"], key=lambda e: e["start"])
    r = client.post(f"/v1/episodes/{ep['episode_id']}/check", json={"answer": schedule(everything)})
    assert r.status_code == 200, r.text
    check = r.json()
    assert check["verdict"] == "overlap" and check["remaining_checks"] == 2 and check["checks_used"] == 1
    assert {v["type"] for v in check["violations"]} == {"overlap"}
    assert all(len(v["indices"]) == 2 and len(v["events"]) == 2 for v in check["violations"])
    weight = {e["name"]: 2 if e["name"] in problem["priorities"] else 1 for e in problem["events"]}

    def minutes(t: str) -> int:
        return int(t[:2]) * 60 + int(t[3:])

    value = sum(weight[e["name"]] * (minutes(e["end"]) - minutes(e["start"])) for e in everything)
    assert check["value"] == value
    assert "optimal_score" not in check and "score_ratio" not in check and "reward" not in check

    # the optimum, checked then submitted: valid, and scored exactly as /v1/score scores it
    gold = gold_completion(ProblemSpec(events=problem["events"], priorities=problem["priorities"]))
    check = client.post(f"/v1/episodes/{ep['episode_id']}/check", json={"answer": gold}).json()
    assert (check["verdict"], check["violations"], check["value"]) == ("valid", [], problem["optimal_score"])
    r = client.post(f"/v1/episodes/{ep['episode_id']}/submit", json={"answer": gold})
    assert r.status_code == 200, r.text
    done = r.json()
    want = client.post("/v1/score", json={"items": [{"problem_id": PID, "completion": gold}]}).json()
    assert done["result"] == want["results"][0]
    assert (done["reward"], done["check_penalty"], done["checks_used"]) == (100.0, 0.0, 2)
    # ended: every call on it answers 404, saying why
    for method, path in [("post", "/check"), ("post", "/submit"), ("get", ""), ("delete", "")]:
        r = client.request(method.upper(), f"/v1/episodes/{ep['episode_id']}{path}", json={"answer": gold})
        assert r.status_code == 404 and "ended" in r.json()["detail"]


def test_the_budget_is_spent_then_409_and_submit_still_works(client: TestClient) -> None:
    ep = start(client, checks=1)
    assert "You have 1 check." in ep["prompt"][0]["content"]
    url = f"/v1/episodes/{ep['episode_id']}"
    assert client.post(f"{url}/check", json={"answer": "nothing"}).json()["verdict"] == "format_error"
    r = client.post(f"{url}/check", json={"answer": "nothing"})
    assert r.status_code == 409 and "no checks left" in r.json()["detail"] and "submit" in r.json()["detail"]
    assert client.get(url).json()["remaining_checks"] == 0
    assert (
        client.post(f"{url}/submit", json={"answer": "nothing"}).json()["result"]["verdict"] == "format_error"
    )
    zero = start(client, checks=0)
    assert client.post(f"/v1/episodes/{zero['episode_id']}/check", json={"answer": "x"}).status_code == 409


def test_a_retried_call_is_answered_again_not_redone(client: TestClient) -> None:
    """A check or submit repeated with its `call_id` (its answer lost on the way) gets the first attempt's
    answer: the check is spent once, the submit finds its own result rather than an ended episode."""
    ep = start(client, checks=2)
    eid = ep["episode_id"]
    gold = gold_completion(ProblemSpec(events=ep["events"], priorities=ep["priorities"]))
    first, again = (
        client.post(f"/v1/episodes/{eid}/check", json={"answer": gold, "call_id": "c-1"}) for _ in "12"
    )
    assert first.status_code == again.status_code == 200
    same = {k: v for k, v in first.json().items() if k != "expires_in_s"}
    assert same == {k: v for k, v in again.json().items() if k != "expires_in_s"}
    assert same["checks_used"] == 1 and same["remaining_checks"] == 1
    assert client.get(f"/v1/episodes/{eid}").json()["checks_used"] == 1  # spent once
    other = client.post(
        f"/v1/episodes/{eid}/check", json={"answer": "<schedule></schedule>", "call_id": "c-1"}
    )
    assert other.status_code == 409 and "another call" in other.json()["detail"]
    as_submit = client.post(f"/v1/episodes/{eid}/submit", json={"answer": gold, "call_id": "c-1"})
    assert as_submit.status_code == 409  # a check's id is not a submit's

    done, replay = (
        client.post(f"/v1/episodes/{eid}/submit", json={"answer": gold, "call_id": "s-1"}) for _ in "12"
    )
    assert done.status_code == replay.status_code == 200
    assert done.json() == replay.json() and done.json()["reward"] == 100.0
    assert client.post(f"/v1/episodes/{eid}/submit", json={"answer": gold}).status_code == 404  # ended
    assert (
        client.post(f"/v1/episodes/{eid}/check", json={"answer": gold, "call_id": "c-2"}).status_code == 404
    )
    bad = client.post(f"/v1/episodes/{eid}/check", json={"answer": gold, "call_id": "not ok"})
    assert bad.status_code == 422


def test_checks_cost_reward_when_asked(client: TestClient) -> None:
    problem = client.get(f"/v1/problems/{PID}").json()
    gold = gold_completion(ProblemSpec(events=problem["events"], priorities=problem["priorities"]))
    ep = start(client, checks=5, check_cost=7.5)
    for _ in range(2):
        client.post(f"/v1/episodes/{ep['episode_id']}/check", json={"answer": gold})
    done = client.post(f"/v1/episodes/{ep['episode_id']}/submit", json={"answer": gold}).json()
    assert (done["result"]["reward"], done["check_penalty"], done["reward"]) == (100.0, 15.0, 85.0)
    ep = start(client, checks=5, check_cost=100)
    client.post(f"/v1/episodes/{ep['episode_id']}/check", json={"answer": gold})
    assert (
        client.post(f"/v1/episodes/{ep['episode_id']}/submit", json={"answer": gold}).json()["reward"] == 0.0
    )


def test_picking_the_problem_as_openenv_reset_does(client: TestClient) -> None:
    by_index = start(client, problem_id=None, split="test", index=5)
    assert by_index["problem_id"] == "test-000005"
    seeded = [start(client, problem_id=None, seed=11)["problem_id"] for _ in range(2)]
    assert seeded[0] == seeded[1] and seeded[0].startswith("train-")
    guided = start(client, prompt_style="guided")
    assert "by start time" in guided["prompt"][1]["content"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"problem_id": "train-999999"}, 404, "unknown problem_id"),
        ({"problem_id": None, "split": "nope"}, 422, "'train' or 'test'"),
        ({"problem_id": None, "split": "test", "index": 10_000}, 404, "out of range"),
        ({"checks": 21}, 422, "limit of 20"),
        ({"checks": -1}, 422, "greater than or equal"),
        ({"checks": "2"}, 422, "integer"),
        ({"check_cost": 101}, 422, "less than or equal"),
        ({"profile": "nope"}, 422, "unknown profile"),
        ({"prompt_style": "nope"}, 422, "default"),
        ({"surprise": 1}, 422, "extra"),
    ],
)
def test_bad_starts_are_clear_4xx(client: TestClient, body: dict[str, Any], status: int, words: str) -> None:
    r = client.post("/v1/episodes", json={"problem_id": PID, **body})
    assert r.status_code == status and words in r.text, r.text


def test_bad_ids_and_answers(client: TestClient) -> None:
    assert client.get("/v1/episodes/nope").status_code == 404
    assert client.post("/v1/episodes/ep-0000000000000000/check", json={"answer": "x"}).status_code == 404
    ep = start(client)
    url = f"/v1/episodes/{ep['episode_id']}"
    assert client.post(f"{url}/check", json={}).status_code == 422
    assert client.post(f"{url}/check", json={"answer": 3}).status_code == 422
    assert client.get(url).json()["checks_used"] == 0  # a refused request spends nothing
    assert client.delete(url).status_code == 204 and client.get(url).status_code == 404


def test_episodes_expire_and_are_bounded() -> None:
    settings = Settings(**SMALL, access_log=False, episode_ttl_s=0.5, episode_max_sessions=3)
    with TestClient(create_app(settings)) as c:
        ids = [start(c)["episode_id"] for _ in range(3)]
        r = c.post("/v1/episodes", json={"problem_id": PID})
        assert r.status_code == 429 and "3 episodes are open" in r.json()["detail"]
        assert c.delete(f"/v1/episodes/{ids[0]}").status_code == 204
        start(c)  # a place freed by the delete
        time.sleep(0.6)
        assert c.get(f"/v1/episodes/{ids[1]}").status_code == 404  # expired
        assert [start(c) for _ in range(3)]  # the expired ones' places are free again


def test_concurrent_checks_never_overspend_and_one_submit_wins() -> None:
    with TestClient(create_app(Settings(**SMALL, access_log=False))) as c:
        ep = start(c, checks=5)
        url = f"/v1/episodes/{ep['episode_id']}"
        statuses: list[int] = []

        def call(path: str) -> None:
            statuses.append(c.post(f"{url}{path}", json={"answer": "x"}).status_code)

        threads = [threading.Thread(target=call, args=("/check",)) for _ in range(12)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(statuses) == [200] * 5 + [409] * 7
        statuses.clear()
        threads = [threading.Thread(target=call, args=("/submit",)) for _ in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(statuses) == [200] + [404] * 5


def test_two_workers_share_the_episodes() -> None:
    """`sched-env serve` with 2 workers: each call on a new connection (the balancer spreads them), and
    every episode is found by whichever worker answers."""
    server = start_server(workers=2)
    try:
        ids = []
        for _ in range(12):
            r = httpx.post(f"{server.url}/v1/episodes", json={"problem_id": PID, "checks": 2})
            assert r.status_code == 201
            ids.append(r.json()["episode_id"])
        for episode_id in ids:
            for left in (1, 0):
                r = httpx.post(f"{server.url}/v1/episodes/{episode_id}/check", json={"answer": "x"})
                assert r.status_code == 200 and r.json()["remaining_checks"] == left
            assert (
                httpx.post(f"{server.url}/v1/episodes/{episode_id}/check", json={"answer": "x"}).status_code
                == 409
            )
            assert (
                httpx.post(f"{server.url}/v1/episodes/{episode_id}/submit", json={"answer": "x"}).status_code
                == 200
            )
    finally:
        server.stop()
