"""verl reward functions: verl's signatures, one request per batch, scores equal to `/v1/score`'s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from trainer.client.env_client import EnvClient
from trainer.integrations import verl


class CountingHTTP:
    """A TestClient wrapper that counts requests per path."""

    def __init__(self, inner: TestClient) -> None:
        self.inner, self.base_url, self.paths = inner, inner.base_url, []  # type: ignore[var-annotated]

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.paths.append(url)
        return self.inner.request(method, url, **kwargs)

    def close(self) -> None:
        pass


@pytest.fixture
def http(client: TestClient) -> Iterator[CountingHTTP]:
    counting = CountingHTTP(client)
    verl.set_client(EnvClient(counting))
    yield counting
    verl.set_client(None)


def _problems(client: TestClient, n: int) -> list[dict[str, Any]]:
    return list(client.get("/v1/problems", params={"limit": n}).json()["items"])


def _gold(client: TestClient, p: dict[str, Any]) -> str:
    spec = {"events": p["events"], "priorities": p["priorities"]}
    return str(client.post("/v1/solve", json={"problem": spec}).json()["completion"])


def test_batch_is_one_request_and_equals_v1_score(client: TestClient, http: CountingHTTP) -> None:
    problems = _problems(client, 6)
    solutions = [_gold(client, p) if i % 2 == 0 else "<think>hm</think>" for i, p in enumerate(problems)]
    truths: list[Any] = [p["id"] if i % 3 else json.dumps(p) for i, p in enumerate(problems)]
    got = verl.compute_score_batch(
        data_sources=["sched"] * 6, solution_strs=solutions, ground_truths=truths, extra_infos=[None] * 6
    )
    assert http.paths == ["/v1/score"]
    items = [{"problem_id": p["id"], "completion": s} for p, s in zip(problems, solutions, strict=True)]
    expected = client.post("/v1/score", json={"items": items}).json()["results"]
    assert [g["score"] for g in got] == [e["reward"] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert {k: g[f"reward_{k}"] for k in e["components"]} == e["components"]
        assert g["score_ratio"] == e["score_ratio"]
    assert got[0]["score"] == 100.0 and got[0]["valid"] == 1.0


def test_single_sample_signature_and_profile(client: TestClient, http: CountingHTTP) -> None:
    p = _problems(client, 1)[0]
    gold = _gold(client, p)
    spec = json.dumps({"events": p["events"], "priorities": p["priorities"]})
    assert verl.compute_score("sched", gold, p["id"])["score"] == 100.0
    assert verl.compute_score("sched", gold, spec, extra_info={"index": 0})["score"] == 100.0
    assert verl.compute_score("sched", gold, p["id"], profile="original")["score"] == 100.0


def test_unscorable_sample_raises(http: CountingHTTP) -> None:
    with pytest.raises(ValueError, match="unknown problem_id"):
        verl.compute_score("sched", "x", "train-999999")


def test_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    verl.set_client(None)
    monkeypatch.setenv("SCHED_ENV_URL", "http://env-a:8000,http://env-b:8000")
    try:
        assert verl.get_client().base_url == "http://env-a:8000"
        assert verl.get_client() is verl.get_client()
    finally:
        verl.set_client(None)


def test_against_live_service(live_server: Any, monkeypatch: pytest.MonkeyPatch, client: TestClient) -> None:
    """The function as verl runs it: a fresh process-level client built from SCHED_ENV_URL."""
    verl.set_client(None)
    monkeypatch.setenv("SCHED_ENV_URL", live_server.url)
    try:
        p = _problems(client, 1)[0]
        assert verl.compute_score("sched", _gold(client, p), p["id"])["score"] == 100.0
    finally:
        verl.set_client(None)
