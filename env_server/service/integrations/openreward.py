"""The OpenReward Standard (ORS) routes: the tool episodes as an ORS environment named `scheduling`.

What the `openreward` SDK (0.1.167) calls, and so TRL's `OpenRewardSpec` (docs/integrations.md), served
natively at the service's own port: no `openreward` import here. A task is a served problem (splits
`train` and `test`, index = position); a session is one tool episode of `/v1/episodes` (the session id
*is* the episode id, so `GET /v1/episodes/{sid}` shows it); the tools are `check_schedule(answer)` and
`submit(answer)`, run by the same `EpisodeCalls` as `/v1/episodes`, so `submit`'s reward is `/v1/score`'s
less the checks' cost, and `finished` is set by `submit`.

Routes (the SDK calls the bare paths and names the environment in `X-Deployment`; the reference server
also answers under `/{env_name}/…`, so `/scheduling/tools` and the like are served too, outside the
OpenAPI page): `GET /list_environments`, `GET /splits`, `POST /tasks`, `POST /num_tasks`, `POST /task`,
`POST /task_range`, `GET /tools`; sessions: `POST /create_session` (SSE: a fresh id), `POST /create`,
`GET /prompt`, `GET /task_tools`, `POST /call` (SSE: the tool's output), `POST /ping`, `POST /delete`,
`POST /delete_session`. Session routes take the id in `X-Session-ID`.

Not served: toolsets, `/messages` (the SDK falls back to `/prompt`), `/score_group`, secrets, and the
resumption of a `/call` stream by `task_id` (the answer is written at once, in one response). A session
has the service's default check budget (`episode_checks`) and costs no points per check.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import ValidationError

from env_server.service.episodes import (
    ConflictingCall,
    EpisodeCalls,
    is_episode_id,
    new_episode_id,
    tool_answer,
    tool_prompt,
)
from env_server.task.prompts import build_prompt
from shared_schema.episodes import CALL_ID_SCHEMA, CheckResult, EpisodeStart
from shared_schema.models import Problem
from shared_schema.openreward import (
    OrsCreate,
    OrsNumTasks,
    OrsSession,
    OrsSplit,
    OrsSplitRequest,
    OrsStatus,
    OrsTask,
    OrsTaskRangeRequest,
    OrsTaskRequest,
    OrsTasks,
    OrsTaskSpec,
    OrsTextBlock,
    OrsToolCall,
    OrsToolError,
    OrsToolOutput,
    OrsTools,
    OrsToolSpec,
    OrsToolSuccess,
)
from shared_schema.text import clip

ENV_NAME = "scheduling"
SPLITS: tuple[Literal["train", "test"], ...] = ("train", "test")

_ANSWER = {
    "type": "object",
    "properties": {
        "answer": {
            "type": "string",
            "description": "The answer as the task asks for it: a reasoning block, then a <schedule> block "
            "with one <event> (name, start, end) per kept event. A draft to check may be the <schedule> "
            "block alone; a submitted answer without the reasoning block loses the format points.",
        },
        "call_id": CALL_ID_SCHEMA,
    },
    "required": ["answer"],
    "additionalProperties": False,
}
TOOLS = OrsTools(
    tools=[
        OrsToolSpec(
            name="check_schedule",
            description="Check a draft schedule without ending the task. It says which rules the draft "
            "breaks and its total value, but not the best possible value; each call spends one of your "
            "checks.",
            input_schema=_ANSWER,
        ),
        OrsToolSpec(
            name="submit",
            description="Submit the final schedule. It is scored once and the task ends.",
            input_schema=_ANSWER,
        ),
    ]
)

_SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `task_id` (an id), then `end` (the result as JSON)",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
                }
            }
        },
    }
}
SessionId = Annotated[str, Header(alias="X-Session-ID", max_length=64, description="The session id.")]
_ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
_NO_TASK: dict[int | str, dict[str, Any]] = {404: {"description": "No such task", **_ERR}}
_NO_SESSION: dict[int | str, dict[str, Any]] = {404: {"description": "No open session", **_ERR}}
_CREATE: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a session id from `/create_session`, or no task named", **_ERR},
    404: {"description": "No such environment or task", **_ERR},
    409: {"description": "The session is open already", **_ERR},
    429: {"description": "As many episodes are open as the service holds", **_ERR},
}


class EventStream(Response):
    """A complete server-sent-event stream, written at once."""

    media_type = "text/event-stream"


def sse(task_id: str, result: str | None) -> EventStream:
    """The events the SDK's `resumable_sse` reads: `task_id`, then the result as `end`."""
    body = f"event: task_id\ndata: {task_id}\n\nevent: end\ndata: {result or ''}\n\n"
    return EventStream(content=body, headers={"Cache-Control": "no-cache"})


def task_spec(problem: Problem, split: str, index: int) -> OrsTaskSpec:
    return OrsTaskSpec(
        problem_id=problem.id,
        split=split,
        index=index,
        n_events=len(problem.events),
        optimal_score=problem.optimal_score,
    )


def describe_check(result: CheckResult) -> str:
    """What a check tells the model: the verdict, each broken rule, the value, the budget."""
    lines = [f"verdict: {result.verdict.value}"]
    lines += [f"- {v.message}" for v in result.violations[:20]]
    if len(result.violations) > 20:
        lines.append(f"- and {len(result.violations) - 20} more")
    lines += [f"value: {result.value}", f"checks left: {result.remaining_checks}"]
    return "\n".join(lines)


def openreward_router(calls: EpisodeCalls) -> APIRouter:
    """The ORS routes over `calls`' episodes and problems."""
    router = APIRouter(tags=["openreward"])
    store = calls.store

    def route(path: str, method: str, scoped: bool = True, **kwargs: Any) -> Callable[[Any], Any]:
        """Register at `path` and, when `scoped`, at `/scheduling{path}` (hidden from the OpenAPI page)."""

        def register(fn: Any) -> Any:
            router.add_api_route(path, fn, methods=[method], **kwargs)
            if scoped:
                router.add_api_route(
                    f"/{ENV_NAME}{path}", fn, methods=[method], include_in_schema=False, **kwargs
                )
            return fn

        return register

    def split_of(name: str) -> Literal["train", "test"]:
        for split in SPLITS:
            if name == split and split in store.splits:
                return split
        raise HTTPException(404, f"unknown split {clip(name)}; splits: {list(SPLITS)}")

    def tasks_at(split: str, start: int, stop: int) -> list[OrsTaskSpec]:
        problems = store.page(split, start, max(0, stop - start)) if stop > start else []
        return [task_spec(p, split, start + i) for i, p in enumerate(problems)]

    def open_session(sid: str) -> str:
        if not is_episode_id(sid) or calls.episodes.get(sid) is None:
            raise HTTPException(
                404, f"no open session {clip(sid)}: it ended (submitted or deleted), expired, or never began"
            )
        return sid

    @route("/list_environments", "GET", scoped=False, response_model=list[str])
    def list_environments() -> list[str]:
        """The environments served: `scheduling`."""
        return [ENV_NAME]

    @route("/splits", "GET", response_model=list[OrsSplit])
    def splits() -> list[OrsSplit]:
        """The task splits: `train` and `test`."""
        return [OrsSplit(name=s, type=s) for s in SPLITS if s in store.splits]

    @route("/tasks", "POST", response_model=OrsTasks, responses=_NO_TASK)
    def tasks(req: OrsSplitRequest) -> OrsTasks:
        """Every task of a split, in order (one per served problem)."""
        split = split_of(req.split)
        return OrsTasks(tasks=tasks_at(split, 0, store.size(split)), env_name=ENV_NAME)

    @route("/num_tasks", "POST", response_model=OrsNumTasks, responses=_NO_TASK)
    def num_tasks(req: OrsSplitRequest) -> OrsNumTasks:
        """How many tasks a split holds."""
        return OrsNumTasks(num_tasks=store.size(split_of(req.split)))

    @route("/task", "POST", response_model=OrsTask, responses=_NO_TASK)
    def task(req: OrsTaskRequest) -> OrsTask:
        """The task at a position of a split."""
        split = split_of(req.split)
        size = store.size(split)
        if req.index >= size:
            raise HTTPException(404, f"index {req.index} is out of range: split {split!r} has {size} tasks")
        return OrsTask(task=tasks_at(split, req.index, req.index + 1)[0], env_name=ENV_NAME)

    @route("/task_range", "POST", response_model=OrsTasks, responses=_NO_TASK)
    def task_range(req: OrsTaskRangeRequest) -> OrsTasks:
        """The tasks at `range(start, stop)` of a split (Python slice rules)."""
        split = split_of(req.split)
        start, stop, _ = slice(req.start, req.stop).indices(store.size(split))
        return OrsTasks(tasks=tasks_at(split, start, stop), env_name=ENV_NAME)

    @route("/tools", "GET", response_model=OrsTools)
    def tools() -> OrsTools:
        """The tools, with JSON Schemas of their input."""
        return TOOLS

    @route("/create_session", "POST", scoped=False, response_class=EventStream, responses=_SSE)
    def create_session() -> EventStream:
        """A fresh session id, as server-sent events (`task_id`, then `end`); nothing is opened until
        `POST /create` with it."""
        sid = new_episode_id()
        return sse(sid, json.dumps({"sid": sid}))

    @route("/delete_session", "POST", scoped=False, response_model=OrsSession)
    def delete_session(sid: SessionId) -> OrsSession:
        """Forget a session id (nothing is held for one: `POST /delete` ends the episode)."""
        return OrsSession(sid=sid)

    @route("/create", "POST", scoped=False, response_model=OrsSession, responses=_CREATE)
    def create(req: OrsCreate, sid: SessionId) -> OrsSession:
        """Open the session: a tool episode on the task (`split` and `index`, or `task_spec`), under the
        session id."""
        if not is_episode_id(sid):
            raise HTTPException(400, "X-Session-ID must be a session id from POST /create_session")
        if req.env_name is not None and req.env_name.lower() != ENV_NAME:
            raise HTTPException(
                404, f"unknown environment {clip(req.env_name)}; environments: [{ENV_NAME!r}]"
            )
        if req.toolset_name is not None:
            raise HTTPException(400, "toolsets are not served here")
        problem_id = (req.task_spec or {}).get("problem_id")
        if isinstance(problem_id, str):
            start = EpisodeStart(problem_id=problem_id[:200])
        elif req.split is not None and req.index is not None:
            start = EpisodeStart(split=split_of(req.split), index=req.index)
        else:
            raise HTTPException(400, "name the task: split and index, or a task_spec from /task")
        calls.start(start, episode_id=sid)
        return OrsSession(sid=sid)

    @route("/ping", "POST", scoped=False, response_model=OrsStatus, responses=_NO_SESSION)
    def ping(sid: SessionId) -> OrsStatus:
        """Keep an open session alive (renews its episode's TTL)."""
        if not is_episode_id(sid) or not calls.episodes.touch(sid):
            open_session(sid)
        return OrsStatus(status="ok")

    @route("/delete", "POST", scoped=False, response_model=OrsSession)
    def delete(sid: SessionId) -> OrsSession:
        """End the session's episode if it is open (answers the same when it is not)."""
        if is_episode_id(sid):
            calls.episodes.end(sid)
        return OrsSession(sid=sid)

    @route("/prompt", "GET", response_model=list[OrsTextBlock], responses=_NO_SESSION)
    def prompt(sid: SessionId) -> list[OrsTextBlock]:
        """The task as the model sees it: the system message (with the tool instructions), then the
        user message."""
        state = calls.state(open_session(sid))
        entry = store.get(state.problem_id)
        if entry is None:
            raise HTTPException(404, f"problem {clip(state.problem_id)} of this session is no longer served")
        messages = tool_prompt(build_prompt(entry.problem, "default"), state.checks)
        return [OrsTextBlock(text=m.content) for m in messages]

    @route("/task_tools", "GET", response_model=OrsTools, responses=_NO_SESSION)
    def task_tools(sid: SessionId) -> OrsTools:
        """The session's tools (the same for every task)."""
        open_session(sid)
        return TOOLS

    @route("/call", "POST", response_class=EventStream, responses={**_SSE, **_NO_SESSION})
    async def call(req: OrsToolCall, sid: SessionId) -> EventStream:
        """Run a tool in the session; its output (or why it did not run) as server-sent events."""
        if req.name != "submit" or req.input.get("call_id") is None:
            open_session(sid)  # a submit naming itself may retry the one that ended the session: it finds it
        result = await run_tool(sid, req)
        return sse(req.task_id or secrets.token_hex(16), result.model_dump_json())

    async def run_tool(sid: str, req: OrsToolCall) -> OrsToolSuccess | OrsToolError:
        if req.name not in ("check_schedule", "submit"):
            return OrsToolError(
                error=f"{clip(req.name)} is not a valid tool; tools: check_schedule, submit",
                reason="not_found",
            )
        try:
            answer = tool_answer(req.input)
        except (ValidationError, ValueError) as e:
            return OrsToolError(
                error=f"Tool input validation error: {clip(str(e))}", reason="input_validation"
            )
        try:
            if req.name == "check_schedule":
                checked = await calls.check(sid, answer)
                meta = checked.model_dump(mode="json", exclude_none=True)
                return OrsToolSuccess(
                    output=OrsToolOutput(blocks=[OrsTextBlock(text=describe_check(checked))], metadata=meta)
                )
            done = await calls.submit(sid, answer)
        except ConflictingCall as e:  # a call_id reused for another call: the input is at fault
            return OrsToolError(
                error=f"Tool input validation error: {clip(str(e.detail))}", reason="input_validation"
            )
        except HTTPException as e:
            if e.status_code != 409 or req.name != "check_schedule":
                raise
            text = "no checks left: submit your answer with submit(answer)"
            return OrsToolSuccess(output=OrsToolOutput(blocks=[OrsTextBlock(text=text)]))
        verdict = done.result.verdict.value if done.result.verdict is not None else "error"
        text = f"submitted: {verdict}, reward {done.reward:g}"
        meta = done.model_dump(mode="json", exclude={"result": {"events"}})
        return OrsToolSuccess(
            output=OrsToolOutput(
                blocks=[OrsTextBlock(text=text)], metadata=meta, reward=done.reward, finished=True
            )
        )

    return router
