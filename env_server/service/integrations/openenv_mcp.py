"""OpenEnv's MCP tool door: the tool episode of `/v1/episodes` under `/openenv/tools`, as OpenEnv 0.10's
`MCPToolClient` speaks it (`MCPToolClient(base_url="http://HOST:8000/openenv/tools")`).

- `POST /openenv/tools/mcp`: JSON-RPC 2.0. `openenv/session/create` starts a session, which is one tool
  episode (its id is the episode id, `ep-…`; params may choose the problem and budget as
  `POST /v1/episodes` does, else a random train problem); `tools/list`; `tools/call` with the `session_id`
  (`get_problem`, `check_schedule`, `submit`); `openenv/session/close` ends the episode.
- `WebSocket /openenv/tools/ws`: OpenEnv's session messages. With `?session_id=` (what `MCPToolClient`
  does after creating its session) the socket attaches to that session; without, it gets a session of its
  own, ended when the socket closes. `reset` starts a new episode under the same session id (its data as
  `POST /v1/episodes`), `step` takes OpenEnv's MCP actions (`{"type": "list_tools"}`,
  `{"type": "call_tool", "tool_name", "arguments"}`) and answers observations whose reward is `submit`'s,
  `state`, `mcp` (a JSON-RPC request bound to the socket's session), `close`.
- `GET /openenv/tools/health`.

Sessions are the episodes' SQLite rows, so they are concurrent, shared by every worker of one service,
bounded by `episode_max_sessions` (a JSON-RPC error past it, with `data.max_sessions`) and expire after
`episode_ttl_s` unused, exactly as `/v1/episodes`. A failed tool call is a JSON-RPC error whose
`data.status` is the HTTP status `/v1/episodes` would answer (404 no open episode, 409 no checks left);
over `/ws` it is the observation's `error`. The single-answer environment stays under `/openenv`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from env_server.service.episodes import EpisodeCalls, is_episode_id, new_episode_id, tool_answer, tool_prompt
from env_server.service.integrations.openenv import ws_error
from env_server.service.integrations.openreward import describe_check
from env_server.task.prompts import build_prompt
from shared_schema.episodes import CALL_ID_SCHEMA, EpisodeStart
from shared_schema.integrations import OpenEnvHealth
from shared_schema.openenv_mcp import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    SERVER_ERROR,
    McpError,
    McpRequest,
    McpResponse,
    McpTool,
)
from shared_schema.text import clip, clip_message

PREFIX = "/openenv/tools"
log = logging.getLogger("env_server")

_ANSWER = {
    "type": "object",
    "properties": {
        "answer": {
            "type": "string",
            "description": "The answer as the task asks for it: a reasoning block, then <schedule><event>"
            "<name>…</name><start>HH:MM</start><end>HH:MM</end></event>…</schedule>, events in "
            "chronological order. A draft to check may be the <schedule> block alone; a submitted answer "
            "without the reasoning block loses the format points.",
        },
        "call_id": CALL_ID_SCHEMA,
    },
    "required": ["answer"],
    "additionalProperties": False,
}
TOOLS = [
    McpTool(
        name="get_problem",
        description="The episode's problem: the prompt (chat messages, with how to use the tools), the "
        "events, the priorities and the checks left. Free.",
        inputSchema={"type": "object", "properties": {}, "additionalProperties": False},
    ),
    McpTool(
        name="check_schedule",
        description="Check a draft schedule, spending one check of the episode's budget: the rules it "
        "breaks (overlapping pairs, unknown or altered events, order) and its value, never the optimum.",
        inputSchema=_ANSWER,
    ),
    McpTool(
        name="submit",
        description="Submit the final schedule: it is scored (the reward) and the episode ends.",
        inputSchema=_ANSWER,
    ),
]
_TOOL_NAMES = [t.name for t in TOOLS]
_START_FIELDS = set(EpisodeStart.model_fields)


class ToolFailure(Exception):
    """A request the door answers with a JSON-RPC error (over `/ws`: an observation's `error`)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = McpError(code=code, message=clip_message(message), data=data)


def _refused(e: HTTPException) -> ToolFailure:
    """An HTTP refusal of `/v1/episodes` (404, 409, 422, 429) as a JSON-RPC error."""
    code = INVALID_PARAMS if e.status_code == 422 else SERVER_ERROR
    data: dict[str, Any] = {"status": e.status_code}
    return ToolFailure(code, str(e.detail), data)


@dataclass
class Outcome:
    """A tool's answer: the JSON payload, and the episode's reward and end when it was `submit`."""

    payload: dict[str, Any]
    text: str
    reward: float | None = None
    done: bool = False


class ToolSessions:
    """Sessions of the door over the episodes of `calls`: one session is one episode under one id."""

    def __init__(self, calls: EpisodeCalls) -> None:
        self.calls = calls

    def _start(self, data: dict[str, Any], sid: str) -> dict[str, Any]:
        fields = {k: v for k, v in data.items() if k in _START_FIELDS}  # OpenEnv adds its own (episode_id, …)
        try:
            req = EpisodeStart.model_validate(fields)
        except ValidationError as e:
            raise ToolFailure(INVALID_PARAMS, f"invalid episode fields: {e}") from None
        try:
            started = self.calls.start(req, episode_id=sid)
        except HTTPException as e:
            failure = _refused(e)
            if e.status_code == 429 and failure.error.data is not None:
                failure.error.data["max_sessions"] = self.calls.settings.episode_max_sessions
            raise failure from None
        return started.model_dump(mode="json")

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """A new session: an episode under a fresh id; its `EpisodeStarted` fields."""
        return self._start(data, new_episode_id())

    def reset(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        """A new episode under the session's id (the one open under it, if any, ends)."""
        self.calls.episodes.end(sid)
        return self._start(data, sid)

    def close(self, sid: str) -> bool:
        return is_episode_id(sid) and self.calls.episodes.end(sid) is not None

    def is_open(self, sid: str) -> bool:
        return is_episode_id(sid) and self.calls.episodes.get(sid) is not None

    def state(self, sid: str) -> dict[str, Any]:
        """The open episode's state and `open: true`; once it ended (submitted, closed, expired), only
        `episode_id` and `open: false`."""
        row = self.calls.episodes.get(sid) if is_episode_id(sid) else None
        if row is None:
            return {"episode_id": sid, "open": False}
        return {**row.state(time.time()).model_dump(mode="json"), "open": True}

    def problem(self, sid: str) -> Outcome:
        state = self.calls.state(sid)
        entry = self.calls.store.get(state.problem_id)
        if entry is None:
            raise HTTPException(404, f"problem {clip(state.problem_id)} of this session is no longer served")
        p = entry.problem
        prompt = tool_prompt(build_prompt(p, "default"), state.checks)
        payload = {
            **state.model_dump(mode="json"),
            "prompt": [m.model_dump(mode="json") for m in prompt],
            "events": [e.model_dump(mode="json") for e in p.events],
            "priorities": list(p.priorities),
        }
        return Outcome(payload, "\n\n".join(m.content for m in prompt))

    async def call(self, sid: str, name: Any, arguments: Any) -> Outcome:
        """Run tool `name` in session `sid`; raises `ToolFailure` when it cannot run."""
        if not isinstance(name, str) or not name:
            raise ToolFailure(INVALID_PARAMS, "Missing 'name' in params")
        if name not in _TOOL_NAMES:
            raise ToolFailure(
                INVALID_PARAMS, f"Tool not found: {clip(name)}; tools: {', '.join(_TOOL_NAMES)}"
            )
        if not isinstance(arguments, dict):
            raise ToolFailure(INVALID_PARAMS, "'arguments' must be an object")
        if not is_episode_id(sid):
            raise ToolFailure(INVALID_PARAMS, f"Unknown session_id: {clip(sid)}")
        try:
            if name == "get_problem":
                if arguments:
                    raise ValueError(f"unknown argument(s) {sorted(arguments)}: get_problem takes none")
                return await run_in_threadpool(self.problem, sid)
            answer = tool_answer(arguments)
        except (ValidationError, ValueError) as e:
            raise ToolFailure(INVALID_PARAMS, f"invalid arguments: {e}") from None
        except HTTPException as e:
            raise _refused(e) from None
        try:
            if name == "check_schedule":
                checked = await self.calls.check(sid, answer)
                return Outcome(checked.model_dump(mode="json", exclude_none=True), describe_check(checked))
            done = await self.calls.submit(sid, answer)
        except HTTPException as e:
            raise _refused(e) from None
        verdict = done.result.verdict.value if done.result.verdict is not None else "error"
        payload = done.model_dump(mode="json", exclude={"result": {"events"}})
        return Outcome(payload, f"submitted: {verdict}, reward {done.reward:g}", done.reward, True)


def tool_result(out: Outcome) -> dict[str, Any]:
    """A `tools/call` result as MCP writes one (text content and structured content), with FastMCP's `data`,
    which OpenEnv's `MCPToolClient.call_tool` returns."""
    return {
        "content": [{"type": "text", "text": out.text}],
        "structuredContent": out.payload,
        "data": out.payload,
        "isError": False,
    }


async def rpc(sessions: ToolSessions, req: McpRequest, bound: str | None = None) -> McpResponse:
    """Answer one JSON-RPC request; `bound` is the session of the WebSocket it came over, if any."""
    params = req.params or {}
    try:
        result = await _rpc(sessions, req.method, params, bound)
    except ToolFailure as e:
        return McpResponse(error=e.error, id=req.id)
    except Exception:  # a bug must answer as JSON-RPC, not drop the connection
        log.exception("openenv mcp %s failed", req.method)
        return McpResponse(error=McpError(code=INTERNAL_ERROR, message="internal error"), id=req.id)
    return McpResponse(result=result, id=req.id)


async def _rpc(sessions: ToolSessions, method: str, params: dict[str, Any], bound: str | None) -> Any:
    if method == "openenv/session/create":
        if bound is not None:
            return {"session_id": bound}
        started = await run_in_threadpool(sessions.create, params)
        return {"session_id": started["episode_id"]}
    if method == "tools/list":
        return {"tools": [t.model_dump() for t in TOOLS]}
    sid = params.get("session_id")
    if method == "openenv/session/close":
        if not isinstance(sid, str) or not sid:
            raise ToolFailure(INVALID_PARAMS, "Invalid params - 'session_id' is required")
        if sid == bound:
            raise ToolFailure(INVALID_REQUEST, "close this WebSocket's own session with a close message")
        if not await run_in_threadpool(sessions.close, sid):
            raise ToolFailure(INVALID_PARAMS, f"Unknown session_id: {clip(sid)}")
        return {"session_id": sid, "closed": True}
    if method == "tools/call":
        sid = bound or sid
        if not isinstance(sid, str) or not sid:
            raise ToolFailure(
                INVALID_PARAMS, "tools/call needs a session_id: create one with openenv/session/create"
            )
        return tool_result(await sessions.call(sid, params.get("name"), _arguments(params)))
    raise ToolFailure(METHOD_NOT_FOUND, f"Method not found: {clip(method)}")


def _arguments(params: dict[str, Any]) -> Any:
    """A tool call's arguments: absent or null is none; anything else is checked as given."""
    arguments = params.get("arguments")
    return {} if arguments is None else arguments


def _observation(out: Outcome | None, tool: str, failure: ToolFailure | None = None) -> dict[str, Any]:
    """An MCP step's observation as OpenEnv serialises one (`CallToolObservation`)."""
    error = None
    if failure is not None:
        kind = "invalid_args" if failure.error.code == INVALID_PARAMS else "execution_error"
        if failure.error.message.startswith("Tool not found"):
            kind = "tool_not_found"
        error = {"error_type": kind, "message": failure.error.message}
    observation = {"tool_name": tool, "result": None if out is None else tool_result(out), "error": error}
    reward, done = (None, False) if out is None else (out.reward, out.done)
    return {"observation": {**observation, "metadata": {}}, "reward": reward, "done": done, "metadata": {}}


class _Frame(BaseModel):
    type: str
    data: dict[str, Any] | None = None


def openenv_mcp_router(calls: EpisodeCalls) -> APIRouter:
    """The MCP tool door under `/openenv/tools`, over `calls`' episodes."""
    sessions = ToolSessions(calls)
    settings = calls.settings
    router = APIRouter(prefix=PREFIX, tags=["openenv"])

    @router.post("/mcp", response_model=McpResponse)
    async def mcp(req: McpRequest) -> Response:
        """JSON-RPC 2.0: `openenv/session/create`, `tools/list`, `tools/call`, `openenv/session/close`.
        Always 200 when the request is valid JSON-RPC; a failure is the answer's `error`."""
        answer = await rpc(sessions, req)
        return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")

    @router.get("/health", response_model=OpenEnvHealth)
    async def health() -> OpenEnvHealth:
        return OpenEnvHealth(status="healthy")

    async def handle(frame: _Frame, sid: str, steps: list[int]) -> dict[str, Any]:
        data = frame.data or {}
        if frame.type == "reset":
            started = await run_in_threadpool(sessions.reset, sid, data)
            steps[0] = 0
            return {"type": "observation", "data": {"observation": started, "reward": None, "done": False}}
        if frame.type == "step":
            kind = data.get("type")
            if kind == "list_tools":
                tools = [t.model_dump() for t in TOOLS]
                return {
                    "type": "observation",
                    "data": {"observation": {"tools": tools, "metadata": {}}, "reward": None, "done": False},
                }
            if kind != "call_tool":
                raise ToolFailure(INVALID_PARAMS, "a step's action is list_tools or call_tool")
            tool = data.get("tool_name")
            steps[0] += 1
            try:
                out = await sessions.call(sid, tool, _arguments(data))
            except ToolFailure as e:
                return {"type": "observation", "data": _observation(None, str(tool), e)}
            return {"type": "observation", "data": _observation(out, str(tool))}
        if frame.type == "state":
            state = await run_in_threadpool(sessions.state, sid)
            return {"type": "state", "data": {**state, "step_count": steps[0]}}
        if frame.type == "mcp":
            try:
                req = McpRequest.model_validate(data)
            except ValidationError as e:
                answer = McpResponse(error=McpError(code=INVALID_REQUEST, message=f"Invalid request: {e}"))
            else:
                answer = await rpc(sessions, req, bound=sid)
            return {"type": "mcp", "data": answer.model_dump(mode="json", exclude_none=True)}
        raise ToolFailure(INVALID_REQUEST, f"Unknown message type: {clip(frame.type)}")

    @router.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        """OpenEnv's session messages over one tool session (attached with `?session_id=`, else owned)."""
        await websocket.accept()
        sid = websocket.query_params.get("session_id")
        owned = sid is None
        try:
            if sid is None:
                try:
                    sid = (await run_in_threadpool(sessions.create, {}))["episode_id"]
                except ToolFailure as e:
                    code = (
                        "CAPACITY_REACHED" if (e.error.data or {}).get("status") == 429 else "SESSION_ERROR"
                    )
                    await websocket.send_text(json.dumps(ws_error(e.error.message, code)))
                    await websocket.close()
                    return
            elif not await run_in_threadpool(sessions.is_open, sid):
                await websocket.send_text(
                    json.dumps(ws_error(f"Unknown session_id: {clip(sid)}", "SESSION_ERROR"))
                )
                await websocket.close()
                return
            steps = [0]
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                text = frame.get("text")
                if text is None or len(text) > settings.max_body_bytes:
                    why = "send JSON text frames" if text is None else "message over the size limit"
                    await websocket.send_text(json.dumps(ws_error(why, "INVALID_JSON")))
                    continue
                try:
                    message = _Frame.model_validate(json.loads(text))
                    if message.type == "close":
                        break
                    reply = await handle(message, sid, steps)
                except (json.JSONDecodeError, RecursionError) as e:
                    reply = ws_error(f"Invalid JSON: {e}", "INVALID_JSON")
                except ValidationError as e:
                    reply = ws_error(f"Invalid message: {e}", "VALIDATION_ERROR")
                except ToolFailure as e:
                    reply = ws_error(e.error.message, "EXECUTION_ERROR")
                except Exception:  # one bad message must not drop the session: log it, answer, go on
                    log.exception("openenv tools /ws message failed")
                    reply = ws_error("internal error while handling this message", "EXECUTION_ERROR")
                await websocket.send_text(json.dumps(reply))
        except WebSocketDisconnect:
            return
        finally:
            if owned and sid is not None:
                await run_in_threadpool(sessions.close, sid)
        await websocket.close()

    return router
