"""Large requests never hold the event loop: one worker answers `/health` while it scores the heaviest
legal requests, and work moved off the loop answers exactly what it answered on it."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from env_server.service.app import create_app
from env_server.service.score_api import dumps, encode_results, is_json
from env_server.service.settings import Settings
from env_server.task.generator import generate_problem
from tests.conftest import SMALL, LiveServer, start_server

P = generate_problem(0, "train", 1)
WIRE = {"events": [e.model_dump() for e in P.events], "priorities": list(P.priorities)}
EVENTS = "".join(
    f"<event><name>{e.name}</name><start>{e.start}</start><end>{e.end}</end></event>\n" for e in P.events
)
LIMITS = Settings()
# The longest completion scored whole: events listed over and over (a thousand violations each, the
# largest answer per character of request), in a body as large as the service accepts.
MAXIMAL = ("<think>x</think><schedule>" + EVENTS * 2000)[: LIMITS.max_completion_chars - 11] + "</schedule>"


def _fill(item: Any, wrap: Any = lambda items: {"items": items}) -> bytes:
    """The largest body of copies of `item` that stays within the body limit."""
    one = len(orjson.dumps(wrap([item]))) - len(orjson.dumps(wrap([])))
    n = (LIMITS.max_body_bytes - len(orjson.dumps(wrap([])))) // (one + 1)
    body = orjson.dumps(wrap([item] * n))
    assert LIMITS.max_body_bytes - one < len(body) <= LIMITS.max_body_bytes
    return body


def _openrlhf(n: int) -> dict[str, Any]:
    return {"query": ["Q" + MAXIMAL] * n, "prompts": ["Q"] * n, "labels": [json.dumps(WIRE)] * n}


def _lone_surrogate(body: bytes) -> bytes:
    """`body` with a lone surrogate in every completion (legal: read as U+FFFD), written as `\\ud800`."""
    return body.replace(b"<think>x</think>", b"<think>\\ud800</think>")


HEAVIEST = {
    "score, fast path": ("/v1/score", "application/json", _fill({"problem": WIRE, "completion": MAXIMAL})),
    "score, declined by the fast path": (
        "/v1/score",
        "application/json",
        _lone_surrogate(_fill({"problem": WIRE, "completion": MAXIMAL})),
    ),
    "score, +json content type": (
        "/v1/score",
        "application/problem+json",
        _fill({"problem": WIRE, "completion": MAXIMAL}),
    ),
    "get_reward": ("/get_reward", "application/json", orjson.dumps(_openrlhf(118))),
}


@pytest.fixture(scope="module")
def one_worker() -> Iterator[LiveServer]:
    server = start_server(workers=1)
    yield server
    server.stop()


def _post(port: int, path: str, ctype: str, body: bytes, out: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    conn.request("POST", path, body, {"content-type": ctype})
    response = conn.getresponse()
    out["answer"] = response.read()
    out["status"], out["seconds"] = response.status, time.perf_counter() - t0
    conn.close()


@pytest.mark.parametrize("case", list(HEAVIEST))
def test_health_answers_while_one_worker_scores_the_heaviest_legal_request(
    one_worker: LiveServer, case: str
) -> None:
    path, ctype, body = HEAVIEST[case]
    assert len(body) <= LIMITS.max_body_bytes
    port = int(one_worker.url.rsplit(":", 1)[1])
    health = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: dict[str, Any] = {}
    sender = threading.Thread(target=_post, args=(port, path, ctype, body, out))
    waits: list[float] = []
    sender.start()
    time.sleep(0.02)
    while sender.is_alive():
        t0 = time.perf_counter()
        health.request("GET", "/health")
        answer = health.getresponse()
        answer.read()
        waits.append(time.perf_counter() - t0)
        assert answer.status == 200
        time.sleep(0.01)
    sender.join()
    health.close()
    assert out["status"] == 200, out["answer"][:300]
    worst = max(waits, default=0.0)
    print(
        f"\n{case}: {len(body) / 2**20:.2f} MiB answered in {out['seconds']:.2f} s; /health answered "
        f"{len(waits)} times meanwhile, the slowest in {worst * 1000:.1f} ms (target < 100 ms)"
    )
    # Loose bounds, stable on a loaded machine (the figure above is the benchmark's, docs/benchmarks.md).
    # Before issue 24 the last three cases held the event loop for the whole request: /health waited
    # 85-95 % of the request's time (0.32-0.66 s here, 1.3-1.6 s under load); since, 7-14 %. A machine
    # under load slows both alike, so the share is the stable test; the absolute bound is the loose one.
    assert worst < 1.0 and worst < 0.5 * out["seconds"] + 0.05


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 64, 100])
def test_results_encoded_in_steps_are_the_bytes_of_one_call(n: int) -> None:
    results = [{"reward": float(i), "violations": [{"message": "x" * i}], "error": None} for i in range(n)]
    want = dumps({"reward_version": "1.0.0", "profile": "default", "results": list(results)})
    assert encode_results("1.0.0", "default", results) == want
    assert results == []  # freed as it went


def test_results_orjson_refuses_are_written_by_the_standard_library() -> None:
    results = [{"message": "\ud800"}] * 20 + [{"message": "fine"}] * 20
    want = dumps({"reward_version": "1.0.0", "profile": "default", "results": list(results)})
    got = encode_results("1.0.0", "default", results)
    assert json.loads(got) == json.loads(want)
    assert b"\\ud800" in got and b", " not in got  # escaped, and as compact as the rest


@pytest.mark.parametrize("sizes", [[], [0], [3], [16, 16, 5], [40, 0, 17]])
def test_results_drawn_as_chunks_are_the_bytes_of_one_call(sizes: list[int]) -> None:
    chunks = [[{"reward": float(i), "verdict": "valid"} for i in range(n)] for n in sizes]
    want = dumps({"reward_version": "1.0.0", "profile": "default", "results": [r for c in chunks for r in c]})
    drawn: list[list[dict[str, object]]] = []

    def chunked() -> Iterator[list[dict[str, object]]]:
        for chunk in chunks:
            assert all(not c for c in drawn)  # the chunk before was encoded and freed first
            drawn.append(chunk)
            yield chunk

    assert encode_results("1.0.0", "default", chunked()) == want


@pytest.mark.parametrize(
    ("ctype", "json_"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/vnd.api+json ; charset=utf-8", True),
        ("", False),
        ("text/plain", False),
        ("text/json", False),
        ("application/json-seq", False),
        ("application/x-www-form-urlencoded", False),
    ],
)
def test_the_fast_path_reads_as_json_what_fastapi_reads_as_json(ctype: str, json_: bool) -> None:
    assert is_json(ctype) is json_


def _client(**overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(**{**SMALL, **overrides}))) as c:
        yield c


@pytest.fixture(scope="module")
def offloaded() -> Iterator[TestClient]:
    """Every request with a body goes through `OffloadLargeBodies`' worker thread."""
    yield from _client(offload_body_bytes=0)


@pytest.fixture(scope="module")
def on_the_loop() -> Iterator[TestClient]:
    yield from _client(offload_body_bytes=LIMITS.max_body_bytes)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/get_reward", _openrlhf(3)),
        ("/get_reward", {**_openrlhf(2), "labels": ["nope", "train-000001"]}),  # a 422
        ("/get_reward", {"query": ["x"]}),
        ("/v1/solve", {"problem": WIRE}),
        ("/v1/prompt", {"problem": WIRE, "prompt_style": "compact"}),
        ("/openenv/step", {"action": {"completion": MAXIMAL[:500]}}),
        ("/v1/curriculum/nope/next", {"n": 1}),  # a sync route: FastAPI runs it on a thread of that loop
    ],
)
def test_offloaded_requests_answer_as_on_the_event_loop(
    offloaded: TestClient, on_the_loop: TestClient, path: str, body: dict[str, Any]
) -> None:
    got, want = offloaded.post(path, json=body), on_the_loop.post(path, json=body)
    assert (got.status_code, got.content) == (want.status_code, want.content)


def test_offloaded_requests_leave_no_threads_behind(offloaded: TestClient) -> None:
    offloaded.post("/v1/curriculum/nope/next", json={"n": 1})
    before = threading.active_count()
    for _ in range(20):
        assert offloaded.post("/v1/curriculum/nope/next", json={"n": 1}).status_code == 404
    assert threading.active_count() <= before + 1


def test_a_large_batch_is_scored_in_chunks_as_item_by_item(on_the_loop: TestClient) -> None:
    """Over 256 items (or 256 K completion characters) `respond` scores, encodes and frees 16 items at a
    time; the answer is still the one batch-1 requests give, in order, and /metrics counts one batch."""
    from tests.env_server.service.test_metrics import value

    kinds = [MAXIMAL[:3000] + "</schedule>", "nothing", MAXIMAL, "<think>x</think><schedule></schedule>"]
    items = [{"problem": WIRE, "completion": kinds[i % 4]} for i in range(300)]
    before = value(on_the_loop.get("/metrics").text, "sched_score_batch_size_count", profile="default")
    got = on_the_loop.post("/v1/score", json={"items": items, "return_events": True})
    assert got.status_code == 200
    one = [on_the_loop.post("/v1/score", json={"items": [k], "return_events": True}) for k in items[:4]]
    want = [r.json()["results"][0] for r in one]
    assert got.json()["results"] == [want[i % 4] for i in range(300)]
    after = value(on_the_loop.get("/metrics").text, "sched_score_batch_size_count", profile="default")
    assert after == before + 5  # the large batch once, the four batch-1 requests
