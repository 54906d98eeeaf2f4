"""Random JSON at every POST route: a 4xx with a `detail`, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = ["items", "problem", "problem_id", "completion", "events", "priorities", "name", "start", "end",
        "profile", "query", "prompts", "labels", "action", "x", "n", "groups", "rewards", "target", "spread",
        "window", "rungs", "level", "guided", "start_rung", "session_id", "config", "rung", "split", "index",
        "stop", "input", "task_spec"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["09:00", "24:60", "train-000000", "default", "<schedule>", ""]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=20,
)
ROUTES = ["/v1/score", "/v1/solve", "/v1/prompt", "/get_reward", "/openenv/reset", "/openenv/step",
          "/v1/curriculum", "/v1/curriculum/{sid}/next", "/v1/curriculum/{sid}/report",
          "/tasks", "/num_tasks", "/task", "/task_range", "/create", "/call"]  # fmt: skip
_SESSION: list[str] = []


def _route(client: TestClient, route: str) -> str:
    """The route, with a curriculum session of its own where it names one."""
    if "{sid}" not in route:
        return route
    if not _SESSION:
        _SESSION.append(client.post("/v1/curriculum", json={}).json()["state"]["session_id"])
    return route.replace("{sid}", _SESSION[0])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(ROUTES), json_values)
def test_random_json_never_gets_a_500(client: TestClient, route: str, body: Any) -> None:
    r = client.post(_route(client, route), json=body)
    assert r.status_code < 500, (route, body, r.text)
    if r.status_code >= 400:
        assert "detail" in r.json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(ROUTES), st.binary(max_size=200))
def test_random_bytes_never_get_a_500(client: TestClient, route: str, body: bytes) -> None:
    r = client.post(_route(client, route), content=body, headers={"content-type": "application/json"})
    assert r.status_code < 500, (route, body, r.text)


@pytest.mark.parametrize(
    "body", [b"Infinity", b"NaN", b'{"items": [{"problem_id": "x", "completion": -Infinity}]}']
)
def test_non_finite_json_numbers_get_a_422(client: TestClient, body: bytes) -> None:
    r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"]
