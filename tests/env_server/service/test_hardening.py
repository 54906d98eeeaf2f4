"""Hostile input, by class: never a 5xx, never an unbounded echo, exact times, strict integers.

Each class is tested on every route that can meet it, not only on the example that found it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from shared_schema import Event, ProblemSpec, ScoreItem, to_minutes
from shared_schema.integrations import label_to_item
from shared_schema.text import clean_text, clip

SURROGATE = "\udc80"
HUGE_ID = "train-hard-" + "9" * 5000  # int() refuses past 4,300 digits
GOLDEN_EVENTS = [
    {"name": "A", "start": "09:00", "end": "10:00"},
    {"name": "B", "start": "09:30", "end": "11:00"},
]


def post_raw(client: TestClient, path: str, body: Any) -> Any:
    """POST `body` serialised by `json.dumps` (which writes a lone surrogate as `\\udc80`, as any client may)."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def answer(name: str) -> str:
    return (
        "<think>x</think><schedule>"
        f"<event><name>{name}</name><start>09:00</start><end>10:00</end></event>"
        "<event><name>B</name><start>11:00</start><end>12:00</end></event></schedule>"
    )


# --- class 1: inputs that gave a 500 -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [SURROGATE, "\ud800", "a\udfffb", SURROGATE * 50])
def test_lone_surrogates_in_completions_are_scored_everywhere(client: TestClient, name: str) -> None:
    completion = answer(name)
    score = post_raw(
        client, "/v1/score", {"items": [{"problem_id": "train-000000", "completion": completion}]}
    )
    assert score.status_code == 200, score.text
    result = score.json()["results"][0]
    assert result["reward"] is not None and "\ufffd" in json.dumps(result, ensure_ascii=False)
    step = post_raw(
        client, "/openenv/step", {"action": {"problem_id": "train-000000", "completion": completion}}
    )
    assert step.status_code == 200 and step.json()["reward"] == result["reward"]
    reward = post_raw(
        client, "/get_reward", {"query": [f"P{completion}"], "prompts": ["P"], "labels": ["train-000000"]}
    )
    assert reward.status_code == 200 and reward.json()["rewards"] == [result["reward"]]
    inline = post_raw(
        client, "/v1/score", {"items": [{"problem": {"events": GOLDEN_EVENTS}, "completion": completion}]}
    )
    assert inline.status_code == 200


def test_a_surrogate_pair_written_as_two_escapes_is_its_character() -> None:
    assert clean_text("\ud83d\ude00") == "😀" and clean_text("a\udc80") == "a\ufffd"
    assert ScoreItem(problem_id="x", completion="\ud800").completion == "\ufffd"


@pytest.mark.parametrize("path", ["/v1/solve", "/v1/prompt"])
def test_event_names_with_surrogates_are_refused_not_a_500(client: TestClient, path: str) -> None:
    events = [{"name": f"a{SURROGATE}", "start": "09:00", "end": "10:00"}, GOLDEN_EVENTS[1]]
    r = post_raw(client, path, {"problem": {"events": events}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "name"


def test_ids_with_thousands_of_digits_are_unknown_on_every_id_route(client: TestClient) -> None:
    for pid in (HUGE_ID, "train-" + "1" * 5000, "train-000001\n"):
        assert client.get(f"/v1/problems/{quote(pid)}").status_code == 404
        r = client.post("/v1/score", json={"items": [{"problem_id": pid, "completion": "x"}]})
        assert r.status_code == 200 and "unknown problem_id" in r.json()["results"][0]["error"]
        assert client.post("/openenv/reset", json={"problem_id": pid}).status_code == 404
        step = client.post("/openenv/step", json={"action": {"problem_id": pid, "completion": "x"}})
        assert step.status_code == 404
        if pid.endswith("\n"):
            continue  # an OpenRLHF label is stripped of white space, so that one names train-000001
        reward = client.post("/get_reward", json={"query": ["x"], "prompts": [""], "labels": [pid]})
        assert reward.status_code == 422 and "unknown problem_id" in reward.text
        label = client.post(
            "/get_reward", json={"query": ["x"], "prompts": [""], "labels": [json.dumps({"id": pid})]}
        )
        assert label.status_code == 422


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_labels_are_a_422(client: TestClient, depth: int) -> None:
    for label in ('{"events":' + "[" * depth + "]" * depth + "}", "{" + '"a":{' * depth + "}" * depth + "}"):
        r = client.post("/get_reward", json={"query": ["x"], "prompts": [""], "labels": [label]})
        assert r.status_code == 422, r.text[:200]
    with pytest.raises(ValueError, match="nested too deeply"):
        label_to_item('{"events":' + "[" * 100_000 + "]" * 100_000 + "}", "x")


@pytest.mark.parametrize("path", ["/v1/score", "/get_reward", "/openenv/reset", "/openenv/step"])
def test_a_body_nested_past_the_parser_is_a_documented_400(client: TestClient, path: str) -> None:
    r = client.post(path, content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and isinstance(r.json()["detail"], str)


def test_websocket_survives_binary_deep_huge_and_invalid_frames(client: TestClient) -> None:
    with client.websocket_connect("/openenv/ws") as ws:
        ws.send_bytes(b"\x00\x01binary")
        assert ws.receive_json()["data"]["code"] == "BinaryFrame"
        ws.send_text("[" * 100_000)
        assert ws.receive_json()["type"] == "error"
        for data in ({"problem_id": HUGE_ID}, {"index": False}, {"index": 10**6}, {"split": "x" * 10**6}):
            ws.send_json({"type": "reset", "data": data})
            reply = ws.receive_json()
            assert reply["type"] == "error" and len(json.dumps(reply)) < 2000
        ws.send_text(json.dumps({"type": "step", "data": {"completion": answer(SURROGATE)}}))
        assert ws.receive_json()["type"] == "error"  # no reset yet: no problem to answer
        ws.send_json({"type": "reset", "data": {"index": 0}})
        assert ws.receive_json()["type"] == "observation"
        ws.send_text(json.dumps({"type": "step", "data": {"completion": answer(SURROGATE)}}))
        step = ws.receive_json()
        assert step["type"] == "observation" and step["data"]["done"] is True  # the session went on


# --- class 2: bounded echoes -------------------------------------------------------------------------------

BIG = "\x00" * 1_000_000  # repr() writes each byte as 4 characters: a 4 MB echo before the fix
ECHOES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/score", {"profile": BIG, "items": [{"problem_id": "a", "completion": "x"}]}),
    ("POST", "/v1/score", {"items": [{"problem_id": BIG, "completion": "x"}]}),  # 200, per-item error
    ("POST", "/v1/score", {"items": [{"problem_id": "a", "completion": "x"}], BIG: 1}),  # extra key in loc
    ("POST", "/v1/solve", {"problem": {"events": GOLDEN_EVENTS, "priorities": [BIG]}}),
    ("POST", "/v1/solve", {"problem": {"events": GOLDEN_EVENTS, "priorities": ["x"] * 1500}}),
    ("POST", "/v1/solve", {"problem": {"events": [{"name": "A", "start": BIG, "end": "10:00"}]}}),
    ("POST", "/v1/solve", {"problem": {"events": [{"name": BIG, "start": "09:00", "end": "10:00"}] * 2}}),
    ("POST", "/openenv/reset", {"problem_id": BIG}),
    ("POST", "/openenv/reset", {"split": BIG}),
    ("POST", "/openenv/step", {"action": {"problem_id": BIG, "completion": "x"}}),
    ("POST", "/get_reward", {"query": ["x"], "prompts": [""], "labels": [BIG]}),
    ("POST", "/get_reward", {"query": ["x"], "prompts": [""], "labels": ["{" + BIG]}),
    ("POST", "/get_reward", {"query": ["x"], "prompts": [""], "labels": [{"events": BIG}]}),
    ("POST", "/get_reward?profile=" + "p" * 5000, {"query": [], "prompts": [], "labels": []}),
    ("GET", "/v1/problems/" + "x" * 60_000, None),
    ("GET", "/v1/problems?difficulty=" + "d" * 60_000, None),
    ("POST", "/v1/score", {"items": [1] * 100_000}),  # 100,000 errors: the first few are listed
]


@pytest.mark.parametrize(("method", "path", "body"), ECHOES, ids=[f"{m} {p[:30]}" for m, p, _ in ECHOES])
def test_error_echoes_are_bounded(client: TestClient, method: str, path: str, body: Any) -> None:
    r = client.request(method, path, json=body) if body is not None else client.request(method, path)
    assert r.status_code < 500 and len(r.content) < 4000, (r.status_code, r.text[:300])
    detail = r.json().get("detail")
    if r.status_code == 422:
        assert isinstance(detail, list) and all({"loc", "msg", "type"} <= set(e) for e in detail)


def test_clip_keeps_a_prefix_and_the_length() -> None:
    assert clip("abc") == "'abc'"
    assert clip("x" * 1000) == "'" + "x" * 40 + "'… (1000 chars)"
    assert clip("\udc80") == "'\\udc80'"  # ASCII-safe


# --- class 4: exact times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["10:00\n", "\n10:00", " 10:00", "10:00 ", "10:0", "1000", "48:00", "10:60", "١٠:٠٠"]
)
def test_times_are_exactly_hh_mm(client: TestClient, bad: str) -> None:
    with pytest.raises(ValueError):
        to_minutes(bad)
    with pytest.raises(ValueError):
        Event(name="A", start=bad, end="47:59")
    events = [{"name": "A", "start": bad, "end": "47:59"}, GOLDEN_EVENTS[1]]
    assert client.post("/v1/solve", json={"problem": {"events": events}}).status_code == 422


@pytest.mark.parametrize(("good", "minutes"), [("00:00", 0), ("09:05", 545), ("47:59", 2879)])
def test_valid_times_still_parse(good: str, minutes: int) -> None:
    assert to_minutes(good) == minutes


def test_the_services_own_optimal_answer_earns_the_maximum(client: TestClient) -> None:
    """The defect of a time with a trailing newline: accepted, but never matched, so the optimum scored 0."""
    events = [*GOLDEN_EVENTS, {"name": "C", "start": "11:00", "end": "12:00"}]
    spec = ProblemSpec.model_validate({"events": events, "priorities": ["C"]})
    gold = client.post("/v1/solve", json={"problem": spec.model_dump()}).json()["completion"]
    r = client.post("/v1/score", json={"items": [{"problem": spec.model_dump(), "completion": gold}]})
    assert r.json()["results"][0]["reward"] == 100.0


# --- class 6: strict integers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [False, True, "1", 1.5, [1]])
def test_reset_integers_are_json_integers(client: TestClient, value: Any) -> None:
    for field in ("index", "seed"):
        assert client.post("/openenv/reset", json={field: value}).status_code == 422


def test_integral_numbers_are_integers_as_json_schema_says(client: TestClient) -> None:
    a = client.post("/openenv/reset", json={"index": 3.0}).json()["observation"]["problem_id"]
    assert a == client.post("/openenv/reset", json={"index": 3}).json()["observation"]["problem_id"]
