"""`/v1/score`'s fast path answers exactly what the validated FastAPI route answers, for every body."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from env_server.scoring.batch import ProblemCache, collector_paused
from env_server.service.app import create_app
from env_server.service.score_api import ScoreService
from env_server.service.settings import Settings
from env_server.task.generator import generate_problem
from env_server.task.problems import gold_completion
from tests.conftest import SMALL

P = generate_problem(0, "train", 3)
WIRE = {"events": [e.model_dump() for e in P.events], "priorities": list(P.priorities)}
GOLD = gold_completion(P)
ITEM = {"problem": WIRE, "completion": GOLD}


def _client(**overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(**{**SMALL, **overrides}))) as c:
        yield c


@pytest.fixture(scope="module")
def fast() -> Iterator[TestClient]:
    yield from _client()


@pytest.fixture(scope="module")
def offloaded() -> Iterator[TestClient]:
    """Every body takes the large-body path (parsed, validated and scored on a worker thread)."""
    yield from _client(offload_body_bytes=0)


@pytest.fixture(scope="module")
def validated() -> Iterator[TestClient]:
    """The same service with the fast path switched off: every request goes through FastAPI's validation."""
    app: FastAPI = create_app(Settings(**SMALL))
    service: ScoreService = app.state.scorer

    async def never(_: Any) -> None:
        return None

    service.fast = never  # type: ignore[method-assign]
    with TestClient(app) as c:
        yield c


BODIES: list[Any] = [
    {"items": [ITEM]},
    {"profile": "original", "items": [ITEM, {"problem_id": "train-000001", "completion": GOLD}]},
    {"items": [{"problem_id": "train-000001", "completion": GOLD}] * 3},
    {"items": [{"problem_id": "nope", "completion": GOLD}]},  # unknown id: an error result, not a 4xx
    {"items": [{"problem_id": "train-hard-000002", "completion": GOLD}]},  # generated on demand
    {"items": [{"problem_id": None, "problem": WIRE, "completion": ""}]},
    {"profile": "nope", "items": [ITEM]},
    {"profile": "x" * 65, "items": [ITEM]},  # over the schema's 64 characters: its 422, not "unknown"
    {"profile": "nope", "items": [{"problem": WIRE}]},  # the item's error comes first
    {"items": []},
    {"items": [{"problem": WIRE}]},
    {"items": [{"problem": WIRE, "problem_id": "train-000001", "completion": "x"}]},
    {"items": [{"completion": "x"}]},
    {"items": [{**ITEM, "extra": 1}]},
    {"items": [ITEM], "extra": 1},
    {"items": [{"problem": {**WIRE, "priorities": ["Nobody"]}, "completion": "x"}]},
    {"items": [{"problem": {"events": WIRE["events"][:1] * 2}, "completion": "x"}]},
    {"items": [{"problem": {"events": [{"name": "A", "start": "9:00", "end": "10:00"}]}, "completion": "x"}]},
    {"items": [{"problem": WIRE, "completion": 5}]},
    {"items": [{"problem_id": 5, "completion": "x"}]},
    {"items": "x"},
    {"profile": 3, "items": [ITEM]},
    {"return_events": True, "items": [ITEM, {"problem_id": "nope", "completion": GOLD}]},
    {"return_events": True, "profile": "original", "items": [ITEM, {"problem": WIRE, "completion": GOLD}]},
    {"return_events": False, "items": [ITEM]},
    {"return_events": 1, "items": [ITEM]},  # a strict boolean: 1 is a 422 on both paths
    {"return_events": "true", "items": [ITEM]},
    {"return_events": None, "items": [ITEM]},
    [ITEM],
    "x",
    None,
]
RAW: list[bytes] = [
    b"",
    b"{",
    b"NaN",
    b'{"items": [{"problem_id": "x", "completion": -Infinity}]}',
    b"\xff\xfe",
]


def _same(a: Any, b: Any) -> None:
    assert (a.status_code, a.json()) == (b.status_code, b.json())


@pytest.mark.parametrize("body", BODIES)
def test_fast_path_answers_as_the_validated_route(
    fast: TestClient, offloaded: TestClient, validated: TestClient, body: Any
) -> None:
    want = validated.post("/v1/score", json=body)
    _same(fast.post("/v1/score", json=body), want)
    _same(offloaded.post("/v1/score", json=body), want)


@pytest.mark.parametrize("raw", RAW)
@pytest.mark.parametrize("ctype", ["application/json", "application/problem+json", "text/plain", None])
def test_raw_bodies_answer_as_the_validated_route(
    fast: TestClient, offloaded: TestClient, validated: TestClient, raw: bytes, ctype: str | None
) -> None:
    headers = {"content-type": ctype} if ctype else {}
    want = validated.post("/v1/score", content=raw, headers=headers)
    assert want.status_code in (400, 422)
    for c in (fast, offloaded):
        got = c.post("/v1/score", content=raw, headers=headers)
        assert got.status_code == want.status_code
        assert got.json() == want.json()


_WIRE_JSON = json.dumps(WIRE)
_GOLD_JSON = json.dumps(GOLD)
# JSON texts that dictionaries cannot express, or that the fast path reads as text: inline problems are
# kept as the JSON sent (the cache's key) and decoded only when first met.
RAW_JSON: list[bytes] = [
    f'{{"items": [{{"problem":  \n {_WIRE_JSON} \n, "completion": {_GOLD_JSON}}}]}}'.encode(),
    f'{{"items": [{{"problem": null, "problem_id": "train-000001", "completion": {_GOLD_JSON}}}]}}'.encode(),
    b'{"items": [{"problem_id": null, "problem": null, "completion": "x"}]}',
    f'{{"items": [{{"problem_id": "train-000001", "completion": "a", "completion": {_GOLD_JSON}}}]}}'.encode(),
    f'{{"items": [{{"problem": {_WIRE_JSON}, "problem": [1], "completion": "x"}}]}}'.encode(),
    b'{"items": [{"problem": [1], "completion": "x"}]}',
    b'{"items": [{"problem": "x", "completion": "x"}]}',
    b'{"items": [{"problem": 1e400, "completion": "x"}]}',
    b'{"items": [{"problem": {"events": [{"name": "\\ud800", "start": "09:00", "end": "10:00"}, '
    b'{"name": "B", "start": "10:00", "end": "11:00"}]}, "completion": "x"}]}',
    b'{"items": [{"problem_id": "train-000001", "completion": "\\ud800 lone"}]}',
    b'{"items": [{"problem": {"events": ' + b"[" * 3000 + b"]" * 3000 + b'}, "completion": "x"}]}',
    b'{"items": [{"problem": {"events": [], "events": '
    + _WIRE_JSON.encode()[11:-1]
    + b', "completion": "x"}]}',
    b'\xef\xbb\xbf{"items": [{"problem_id": "train-000001", "completion": "x"}]}',
]


@pytest.mark.parametrize("raw", RAW_JSON)
def test_json_texts_answer_as_the_validated_route(
    fast: TestClient, offloaded: TestClient, validated: TestClient, raw: bytes
) -> None:
    headers = {"content-type": "application/json"}
    want = validated.post("/v1/score", content=raw, headers=headers)
    for c in (fast, offloaded):
        got = c.post("/v1/score", content=raw, headers=headers)
        assert (got.status_code, got.content) == (want.status_code, want.content)


def test_over_the_item_limit_is_a_413_on_every_path() -> None:
    body = {"items": [ITEM] * 3}
    for overrides in ({}, {"offload_body_bytes": 0}):
        for c in _client(max_batch_items=2, **overrides):
            r = c.post("/v1/score", json=body)
            assert r.status_code == 413 and "limit is 2" in r.json()["detail"]


KEYS = [
    "items",
    "problem",
    "problem_id",
    "completion",
    "events",
    "priorities",
    "name",
    "start",
    "end",
    "profile",
    "return_events",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12),
    st.sampled_from(["09:00", "10:30", "train-000000", "default", "original", GOLD, "A"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=16,
)
near_valid = st.fixed_dictionaries(
    {"items": st.lists(st.sampled_from([ITEM, {"problem_id": "train-000002", "completion": GOLD}]) | values, min_size=0, max_size=3)},
    optional={"profile": st.sampled_from(["default", "original"]) | values,
              "return_events": st.booleans() | values},
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(values, near_valid))
def test_random_bodies_answer_as_the_validated_route(
    fast: TestClient, offloaded: TestClient, validated: TestClient, body: Any
) -> None:
    want = validated.post("/v1/score", json=body)
    _same(fast.post("/v1/score", json=body), want)
    _same(offloaded.post("/v1/score", json=body), want)


def test_inline_problems_are_indexed_once_per_content(fast: TestClient) -> None:
    service: ScoreService = fast.app.state.scorer  # type: ignore[attr-defined]
    other = generate_problem(0, "train", 40)
    body = {
        "items": [ITEM] * 8
        + [{"problem": json.loads(other.model_dump_json(include={"events"})), "completion": "x"}]
    }
    before = (service.problems.hits, service.problems.misses)
    assert fast.post("/v1/score", json=body).status_code == 200
    assert fast.post("/v1/score", json=body).status_code == 200
    hits, misses = service.problems.hits - before[0], service.problems.misses - before[1]
    assert misses <= 2 and hits >= 16


def test_problem_cache_is_bounded() -> None:
    cache = ProblemCache(2)
    for i in range(5):
        p = generate_problem(0, "train", i)
        cache.index_json(json.dumps({"events": [e.model_dump() for e in p.events]}).encode())
    assert len(cache) == 2 and cache.misses == 5


def test_over_the_time_budget_is_a_503() -> None:
    for c in _client(request_time_budget_s=1e-9):
        r = c.post("/v1/score", json={"items": [ITEM]})
        assert r.status_code == 503 and "time budget" in r.json()["detail"]
        r = c.get("/v1/problems", params={"limit": 50, "difficulty": "hard"})
        assert r.status_code == 503 and "time budget" in r.json()["detail"]
        assert c.get("/health").status_code == 200


def test_collector_paused_nests_and_restores() -> None:
    assert gc.isenabled()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_what_a_paused_success_leaves_is_frozen_and_a_failure_is_not() -> None:
    """After a large request, what it left alive is out of the collector's scans (else the first young
    collection walks it all at once, holding the interpreter); after a failure, nothing is frozen, so
    the collection after a failed large request still frees its reference cycles."""
    try:
        with collector_paused():
            kept = [[i] for i in range(1000)]
        assert gc.get_freeze_count() >= len(kept)
        gc.unfreeze()
        with collector_paused() as pause:
            kept = [[i] for i in range(1000)]
            pause.freeze = False  # an error answered inside the block
        assert gc.get_freeze_count() == 0
        with pytest.raises(ValueError), collector_paused():
            raise ValueError("failed")
        assert gc.get_freeze_count() == 0 and gc.isenabled()
        # one failure inside a paused stretch: none of the stretch is frozen
        with collector_paused(), pytest.raises(ValueError), collector_paused():
            raise ValueError("failed")
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


def test_served_worker_collects_young_garbage_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """`app_factory` (what each uvicorn worker runs) tunes the worker's collector from the settings;
    `create_app` alone, for embedding the app, leaves the host process's collector as it is."""
    from env_server.service.app import app_factory

    for key, value in {**SMALL, "gc_young_threshold": 12_345}.items():
        monkeypatch.setenv(f"SCHED_{key.upper()}", str(value))
    before = gc.get_threshold()
    try:
        create_app(Settings())
        assert gc.get_threshold() == before
        app_factory()
        assert gc.get_threshold() == (12_345, *before[1:])
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
