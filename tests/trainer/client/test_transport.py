"""Replicas: round-robin spreading, failover with cool-down, and live servers (two replicas, 2 workers)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from shared_schema import ScoreItem
from tests.conftest import start_server
from trainer.client.env_client import EnvClient
from trainer.client.transport import AllReplicasFailedError, RoundRobinTransport, split_urls


class Fake(httpx.BaseTransport):
    """Answers per host: 200 echoing the path and body, or 503, or a connection error."""

    def __init__(self, broken: dict[str, str] | None = None) -> None:
        self.broken = broken or {}
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        mode = self.broken.get(request.url.host)
        if mode == "down":
            raise httpx.ConnectError("refused", request=request)
        if mode == "503":
            return httpx.Response(503, text="busy")
        body = request.read().decode()
        return httpx.Response(200, json={"host": request.url.host, "path": request.url.path, "body": body})


def _client(fake: Fake, urls: list[str], cooldown: float = 10.0) -> tuple[httpx.Client, RoundRobinTransport]:
    t = RoundRobinTransport(urls, cooldown=cooldown, transport=fake)
    return httpx.Client(base_url=urls[0], transport=t), t


def test_rotates_across_replicas_and_keeps_path_prefix_and_query() -> None:
    fake = Fake()
    http, t = _client(fake, ["http://a:1", "http://b:2/prefix"])
    hosts = [http.get("/v1/problems", params={"limit": 3}).json()["host"] for _ in range(4)]
    assert hosts == ["a", "b", "a", "b"]
    assert [str(r.url) for r in fake.seen[:2]] == [
        "http://a:1/v1/problems?limit=3",
        "http://b:2/prefix/v1/problems?limit=3",
    ]
    assert fake.seen[1].headers["host"] == "b:2"
    assert t.served == Counter({"http://a:1": 2, "http://b:2/prefix": 2})


@pytest.mark.parametrize("mode", ["down", "503"])
def test_fails_over_and_cools_down(mode: str) -> None:
    fake = Fake({"a": mode})
    http, t = _client(fake, ["http://a", "http://b"])
    replies = [http.post("/v1/score", content=b'{"x": 1}').json() for _ in range(4)]
    assert {r["host"] for r in replies} == {"b"}
    assert all(r["body"] == '{"x": 1}' for r in replies)  # the body is resent intact
    assert [r.url.host for r in fake.seen].count("a") == 1  # then `a` cools down and is skipped
    assert t.served == Counter({"http://b": 4})


def test_a_replica_comes_back_after_the_cooldown() -> None:
    fake = Fake({"a": "down"})
    http, _ = _client(fake, ["http://a", "http://b"], cooldown=0.0)
    http.get("/health")
    fake.broken.clear()
    assert {http.get("/health").json()["host"] for _ in range(2)} == {"a", "b"}


def test_every_replica_down() -> None:
    http, _ = _client(Fake({"a": "down", "b": "down"}), ["http://a", "http://b"])
    with pytest.raises(AllReplicasFailedError):
        http.get("/health")
    http503, _ = _client(Fake({"a": "503", "b": "503"}), ["http://a", "http://b"])
    assert http503.get("/health").status_code == 503  # EnvClient retries it with backoff


def test_split_urls_and_from_url() -> None:
    assert split_urls(" http://a:8000/ ,http://b:8000,, ") == ["http://a:8000", "http://b:8000"]
    one = EnvClient.from_url("http://a:8000/")
    assert one.base_url == "http://a:8000" and not isinstance(one.http._transport, RoundRobinTransport)  # type: ignore[attr-defined]
    two = EnvClient.from_url("http://a:8000,http://b:8000")
    assert isinstance(two.http._transport, RoundRobinTransport)  # type: ignore[attr-defined]


def _batch(client: TestClient, n: int = 8) -> list[ScoreItem]:
    problems = client.get("/v1/problems", params={"limit": n}).json()["items"]
    return [ScoreItem(problem_id=p["id"], completion="<think>x</think>") for p in problems]


def test_two_live_replicas_spread_and_survive_losing_one(client: TestClient) -> None:
    a, b = start_server(), start_server()
    try:
        env = EnvClient.from_url(f"{a.url},{b.url}", max_attempts=3, backoff_initial=0.05)
        transport = env.http._transport  # type: ignore[attr-defined]
        items = _batch(client)
        expected = [r.reward for r in env.score(items).results]
        for _ in range(5):
            assert [r.reward for r in env.score(items).results] == expected
        assert transport.served[a.url] == transport.served[b.url] == 3
        a.stop()
        for _ in range(4):
            assert [r.reward for r in env.score(items).results] == expected
        assert transport.served[a.url] == 3 and transport.served[b.url] == 7
    finally:
        a.stop()
        b.stop()


def test_server_with_two_workers_scores_concurrently(client: TestClient) -> None:
    server = start_server(workers=2)
    try:
        items = _batch(client, 16)
        local = threading.local()

        def score(_: int) -> list[float | None]:
            if not hasattr(local, "env"):
                local.env = EnvClient.from_url(server.url)
            return [r.reward for r in local.env.score(items).results]

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(score, range(16)))
        assert all(r == results[0] for r in results) and len(results[0]) == 16
    finally:
        server.stop()
