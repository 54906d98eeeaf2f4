"""OpenEnv's MCP tool door (`/openenv/tools`): JSON-RPC over `POST /mcp` and the `/ws` session messages, in
process. The real clients (`openenv` 0.10's and `openenv-core` 0.3's `MCPToolClient`) run against a live
service in tests/env_server/service/test_openenv_clients.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from env_server.service.app import create_app
from env_server.service.settings import Settings
from shared_schema.openenv_mcp import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    SERVER_ERROR,
    McpResponse,
)
from tests.conftest import SMALL

MCP = "/openenv/tools/mcp"
EMPTY = "<schedule></schedule>"


def rpc(client: TestClient, method: str, **params: Any) -> dict[str, Any]:
    r = client.post(MCP, json={"jsonrpc": "2.0", "method": method, "params": params, "id": 7})
    assert r.status_code == 200
    body = r.json()
    McpResponse.model_validate(body)
    assert body["id"] == 7 and ("result" in body) != ("error" in body)
    return dict(body)


def call(client: TestClient, sid: str, name: str, **arguments: Any) -> dict[str, Any]:
    return rpc(client, "tools/call", name=name, arguments=arguments, session_id=sid)


def gold(client: TestClient, problem: dict[str, Any]) -> str:
    spec = {"events": problem["events"], "priorities": problem["priorities"]}
    return str(client.post("/v1/solve", json={"problem": spec}).json()["completion"])


def v1_reward(client: TestClient, pid: str, completion: str) -> float:
    body = {"items": [{"problem_id": pid, "completion": completion}]}
    return float(client.post("/v1/score", json=body).json()["results"][0]["reward"])


def test_a_session_checks_then_submits_over_json_rpc(client: TestClient) -> None:
    created = rpc(client, "openenv/session/create", problem_id="train-000003", checks=2)
    sid = created["result"]["session_id"]
    assert sid.startswith("ep-")
    tools = rpc(client, "tools/list")["result"]["tools"]
    assert [t["name"] for t in tools] == ["get_problem", "check_schedule", "submit"]
    assert all(set(t) == {"name", "description", "inputSchema"} for t in tools)
    assert tools[1]["inputSchema"]["required"] == ["answer"]

    problem = call(client, sid, "get_problem")["result"]["data"]
    assert problem["problem_id"] == "train-000003" and problem["remaining_checks"] == 2
    served = client.get("/v1/problems/train-000003").json()
    assert problem["events"] == served["events"] and problem["priorities"] == served["priorities"]
    assert (
        problem["prompt"][1] == served["prompt"][1]
    )  # the user message as served; the system one adds the tools
    assert "check_schedule" in problem["prompt"][0]["content"]

    answer = gold(client, problem)
    checked = call(client, sid, "check_schedule", answer=EMPTY)["result"]
    assert checked["isError"] is False and checked["data"] == checked["structuredContent"]
    assert checked["data"]["verdict"] == "format_error" and checked["data"]["remaining_checks"] == 1
    assert "optimal" not in str(checked["data"])  # a check never tells the optimum
    assert checked["content"][0]["text"].startswith("verdict: format_error")
    good = call(client, sid, "check_schedule", answer=answer)["result"]["data"]
    assert good["verdict"] == "valid" and good["violations"] == [] and good["remaining_checks"] == 0

    spent = call(client, sid, "check_schedule", answer=answer)["error"]
    assert spent["code"] == SERVER_ERROR and spent["data"] == {"status": 409}

    submitted = call(client, sid, "submit", answer=answer)["result"]["data"]
    assert submitted["reward"] == v1_reward(client, "train-000003", answer) == 100.0
    assert submitted["result"]["verdict"] == "valid" and submitted["checks_used"] == 2

    ended = call(client, sid, "submit", answer=answer)["error"]
    assert ended["code"] == SERVER_ERROR and ended["data"] == {"status": 404}
    closed = rpc(client, "openenv/session/close", session_id=sid)["error"]
    assert closed["code"] == INVALID_PARAMS and "Unknown session_id" in closed["message"]


def test_closing_a_session_ends_its_episode(client: TestClient) -> None:
    sid = rpc(client, "openenv/session/create")["result"]["session_id"]
    assert client.get(f"/v1/episodes/{sid}").status_code == 200  # the session is an episode of /v1/episodes
    assert rpc(client, "openenv/session/close", session_id=sid)["result"] == {
        "session_id": sid,
        "closed": True,
    }
    assert client.get(f"/v1/episodes/{sid}").status_code == 404


@pytest.mark.parametrize(
    ("method", "params", "code", "words"),
    [
        (
            "tools/call",
            {"name": "submit", "arguments": {"answer": EMPTY}},
            INVALID_PARAMS,
            "needs a session_id",
        ),
        (
            "tools/call",
            {"arguments": {}, "session_id": "ep-0000000000000000"},
            INVALID_PARAMS,
            "Missing 'name'",
        ),
        (
            "tools/call",
            {"name": "solve", "session_id": "ep-0000000000000000"},
            INVALID_PARAMS,
            "Tool not found",
        ),
        (
            "tools/call",
            {"name": "submit", "arguments": {}, "session_id": "x"},
            INVALID_PARAMS,
            "Unknown session_id",
        ),
        (
            "tools/call",
            {"name": "submit", "arguments": [], "session_id": "ep-0000000000000000"},
            INVALID_PARAMS,
            "must be an object",
        ),
        ("openenv/session/close", {}, INVALID_PARAMS, "'session_id' is required"),
        ("openenv/session/create", {"checks": -1}, INVALID_PARAMS, "invalid episode fields"),
        ("openenv/session/create", {"problem_id": "train-999999"}, SERVER_ERROR, "train-999999"),
        ("resources/list", {}, METHOD_NOT_FOUND, "Method not found"),
    ],
)
def test_bad_requests_get_json_rpc_errors(
    client: TestClient, method: str, params: dict[str, Any], code: int, words: str
) -> None:
    error = rpc(client, method, **params)["error"]
    assert error["code"] == code and words in error["message"]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [({}, "answer"), ({"answer": EMPTY, "draft": 1}, "unknown argument"), ({"answer": 3}, "answer")],
)
def test_tool_arguments_are_checked(client: TestClient, arguments: dict[str, Any], words: str) -> None:
    sid = rpc(client, "openenv/session/create")["result"]["session_id"]
    error = call(client, sid, "check_schedule", **arguments)["error"]
    assert error["code"] == INVALID_PARAMS and words in error["message"]
    assert call(client, sid, "get_problem")["result"]["data"]["remaining_checks"] == 3  # nothing spent


def test_a_retried_tool_call_with_its_call_id_is_answered_not_redone(client: TestClient) -> None:
    """`call_id` (contract section 8, Retries) through the MCP door: the retry of a check is not spent
    twice, the retry of a submit finds its result, and a call_id reused for another answer is a 409."""
    schema = rpc(client, "tools/list")["result"]["tools"][1]["inputSchema"]
    assert schema["properties"]["call_id"]["maxLength"] == 64 and schema["required"] == ["answer"]
    sid = rpc(client, "openenv/session/create", checks=2)["result"]["session_id"]
    first = call(client, sid, "check_schedule", answer=EMPTY, call_id="check-1")["result"]
    again = call(client, sid, "check_schedule", answer=EMPTY, call_id="check-1")["result"]
    assert first["data"]["remaining_checks"] == again["data"]["remaining_checks"] == 1
    assert again["content"] == first["content"]
    clash = call(client, sid, "check_schedule", answer="<schedule> </schedule>", call_id="check-1")["error"]
    assert (
        clash["code"] == SERVER_ERROR and clash["data"] == {"status": 409} and "call_id" in clash["message"]
    )
    malformed = call(client, sid, "check_schedule", answer=EMPTY, call_id="not an id")["error"]
    assert malformed["code"] == INVALID_PARAMS and "call_id" in malformed["message"]
    assert call(client, sid, "get_problem")["result"]["data"]["remaining_checks"] == 1
    done = call(client, sid, "submit", answer=EMPTY, call_id="submit-1")["result"]["data"]
    retried = call(client, sid, "submit", answer=EMPTY, call_id="submit-1")["result"]["data"]
    assert retried == done and done["checks_used"] == 1


def test_an_invalid_json_rpc_body_is_a_422(client: TestClient) -> None:
    assert client.post(MCP, json={"jsonrpc": "1.0", "method": "tools/list"}).status_code == 422
    assert client.post(MCP, json={"params": {}}).status_code == 422


@pytest.fixture()
def small_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(**SMALL, episode_max_sessions=2))) as c:
        yield c


def test_sessions_are_bounded_with_a_clear_error(small_client: TestClient) -> None:
    sids = [rpc(small_client, "openenv/session/create")["result"]["session_id"] for _ in range(2)]
    full = rpc(small_client, "openenv/session/create")["error"]
    assert full["code"] == SERVER_ERROR and full["data"] == {"status": 429, "max_sessions": 2}
    with small_client.websocket_connect("/openenv/tools/ws") as ws:  # an own session needs a place too
        reply = ws.receive_json()
        assert reply["type"] == "error" and reply["data"]["code"] == "CAPACITY_REACHED"
    rpc(small_client, "openenv/session/close", session_id=sids[0])
    assert "result" in rpc(small_client, "openenv/session/create")


def test_a_websocket_of_its_own_runs_episodes_and_ends_its_session(client: TestClient) -> None:
    with client.websocket_connect("/openenv/tools/ws") as ws:
        ws.send_json({"type": "state"})
        state = ws.receive_json()["data"]
        sid = state["episode_id"]
        assert state["open"] is True and state["step_count"] == 0
        ws.send_json({"type": "reset", "data": {"seed": 3, "checks": 1, "episode_id": "theirs"}})
        reset = ws.receive_json()
        obs = reset["data"]["observation"]
        assert reset["type"] == "observation" and reset["data"]["done"] is False
        assert obs["episode_id"] == sid and obs["remaining_checks"] == 1  # a reset keeps the session's id
        ws.send_json({"type": "step", "data": {"type": "list_tools"}})
        assert ws.receive_json()["data"]["observation"]["tools"][0]["name"] == "get_problem"
        ws.send_json({"type": "step", "data": {"type": "call_tool", "tool_name": "check_schedule",
                                               "arguments": {"answer": EMPTY}}})  # fmt: skip
        checked = ws.receive_json()["data"]
        assert checked["reward"] is None and checked["done"] is False
        assert checked["observation"]["tool_name"] == "check_schedule"
        assert checked["observation"]["result"]["data"]["remaining_checks"] == 0
        ws.send_json({"type": "step", "data": {"type": "call_tool", "tool_name": "check_schedule",
                                               "arguments": {"answer": EMPTY}}})  # fmt: skip
        spent = ws.receive_json()["data"]["observation"]
        assert spent["result"] is None and spent["error"]["error_type"] == "execution_error"
        answer = gold(client, obs)
        ws.send_json({"type": "step", "data": {"type": "call_tool", "tool_name": "submit",
                                               "arguments": {"answer": answer}}})  # fmt: skip
        done = ws.receive_json()["data"]
        assert done["done"] is True and done["reward"] == v1_reward(client, obs["problem_id"], answer)
        ws.send_json({"type": "state"})
        assert ws.receive_json()["data"] == {"episode_id": sid, "open": False, "step_count": 3}
        ws.send_json({"type": "mcp", "data": {"jsonrpc": "2.0", "method": "openenv/session/close",
                                              "params": {"session_id": sid}, "id": 1}})  # fmt: skip
        assert ws.receive_json()["data"]["error"]["code"] == INVALID_REQUEST  # not its own session
        ws.send_json({"type": "reset", "data": {}})  # a new episode under the same id
        assert ws.receive_json()["data"]["observation"]["episode_id"] == sid
        ws.send_json({"type": "close"})
    assert client.get(f"/v1/episodes/{sid}").status_code == 404  # its own session ended with it


def test_a_websocket_attaches_to_a_session_and_leaves_it_open(client: TestClient) -> None:
    sid = rpc(client, "openenv/session/create", problem_id="train-000004")["result"]["session_id"]
    with client.websocket_connect(f"/openenv/tools/ws?session_id={sid}") as ws:
        ws.send_json({"type": "mcp", "data": {"jsonrpc": "2.0", "method": "tools/call", "id": 2,
                                              "params": {"name": "get_problem", "arguments": {}}}})  # fmt: skip
        reply = ws.receive_json()
        assert reply["type"] == "mcp" and reply["data"]["result"]["data"]["problem_id"] == "train-000004"
        ws.send_json({"type": "reset", "data": {"problem_id": "train-000005"}})
        assert ws.receive_json()["data"]["observation"]["problem_id"] == "train-000005"
        for bad, code in (
            ("{", "INVALID_JSON"),
            ('{"type": 3}', "VALIDATION_ERROR"),
            ('{"type": "x"}', "EXECUTION_ERROR"),
        ):
            ws.send_text(bad)
            assert ws.receive_json()["data"]["code"] == code  # answered; the session goes on
        ws.send_json({"type": "close"})
    problem = call(client, sid, "get_problem")["result"]["data"]  # over HTTP: the same session, reset
    assert problem["problem_id"] == "train-000005"
    with client.websocket_connect("/openenv/tools/ws?session_id=ep-0000000000000000") as ws:
        reply = ws.receive_json()
        assert reply["type"] == "error" and "Unknown session_id" in reply["data"]["message"]
