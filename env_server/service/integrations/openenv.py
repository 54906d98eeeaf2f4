"""OpenEnv: the task as a single-step environment, under `/openenv` (`/reset`, `/step`, `/state`, `/schema`,
`/metadata`, `/health`, and the `/ws` session protocol of openenv-core's `EnvClient`).

An episode is one answer: `reset` serves a problem as the observation, `step` scores the completion and
returns `done=true`. Plain HTTP is stateless (like OpenEnv's own HTTP routes, which build a fresh
environment per request), so the observation carries `problem_id` and the action sends it back; any worker
or replica can then score it. A `/ws` session remembers its last reset, so there the id may be left out.
Scoring goes through `score_items`, so the reward equals `/v1/score`'s for the same completion. The step's
result always carries the events read (`/v1/score`'s `return_events`): an episode is one answer, so the
second reading costs little, and a client can draw the violations without parsing the answer itself.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from env_server.scoring.batch import score_items
from env_server.scoring.index import ProblemIndex
from env_server.scoring.profiles import DEFAULT_PROFILE, REWARD_VERSION, get_profile
from env_server.service.errors import Unprocessable
from env_server.service.settings import Settings
from env_server.service.store import ProblemStore
from env_server.task.prompts import build_prompt
from shared_schema import Problem, ScoreItem
from shared_schema.integrations import (
    OpenEnvHealth,
    OpenEnvMetadata,
    OpenEnvResetRequest,
    OpenEnvResult,
    OpenEnvSchema,
    OpenEnvState,
    OpenEnvStepRequest,
    SchedulingAction,
    SchedulingObservation,
)
from shared_schema.text import clip, clip_message

PREFIX = "/openenv"
log = logging.getLogger("env_server")


class EnvError(Exception):
    """A request this environment cannot serve: a 422 (or 404, for a problem it does not have) over HTTP,
    an error message over /ws."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _http_error(e: EnvError) -> Exception:
    return HTTPException(404, str(e)) if e.status == 404 else Unprocessable(str(e))


@dataclass
class Episode:
    """What a `/ws` session remembers between messages."""

    episode_id: str | None = None
    problem_id: str | None = None
    step_count: int = 0

    def state(self) -> OpenEnvState:
        return OpenEnvState(
            episode_id=self.episode_id, step_count=self.step_count, problem_id=self.problem_id
        )


def _json(model: BaseModel) -> Response:
    return Response(content=model.model_dump_json(), media_type="application/json")


class SchedulingEnv:
    """The environment logic, shared by the HTTP routes and the `/ws` sessions."""

    def __init__(self, store: ProblemStore, settings: Settings) -> None:
        self.store, self.settings = store, settings

    def pick(self, req: OpenEnvResetRequest) -> Problem:
        """The problem a reset asks for (also `/v1/episodes`' pick)."""
        if req.problem_id is not None:
            entry = self.store.get(req.problem_id)
            if entry is None:
                raise EnvError(f"unknown problem_id {clip(req.problem_id)}", 404)
            return entry.problem
        if req.split not in self.store.splits:
            raise EnvError(f"unknown split {clip(req.split)}; splits: {sorted(self.store.splits)}")
        size = self.store.size(req.split)
        if size == 0:
            raise EnvError(f"split {req.split!r} is empty")
        if req.index is not None:
            if req.index >= size:
                raise EnvError(
                    f"index {req.index} is out of range: split {req.split!r} has {size} problems", 404
                )
            i = req.index
        else:  # seeded: reproducible on any replica; unseeded: random, so no counter to share
            i = random.Random(req.seed).randrange(size) if req.seed is not None else random.randrange(size)
        return self.store.page(req.split, i, 1)[0]

    def reset(self, req: OpenEnvResetRequest) -> OpenEnvResult:
        p = self.pick(req)
        obs = SchedulingObservation(
            problem_id=p.id, prompt=build_prompt(p), events=p.events, priorities=p.priorities
        )
        return OpenEnvResult(observation=obs, reward=None, done=False)

    def step(self, action: SchedulingAction, profile: str = DEFAULT_PROFILE) -> OpenEnvResult:
        if action.problem_id is None:
            raise EnvError("action.problem_id is required: send back the reset observation's problem_id")
        entry = self.store.get(action.problem_id)
        if entry is None:
            raise EnvError(f"unknown problem_id {clip(action.problem_id)}", 404)
        try:
            prof = get_profile(profile)
        except KeyError as e:
            raise EnvError(str(e.args[0])) from None

        def lookup(_: str) -> ProblemIndex:
            return entry.index

        item = ScoreItem(problem_id=entry.problem.id, completion=action.completion)
        result = score_items([item], prof, lookup, self.settings.max_completion_chars, events=True)[0]
        p = entry.problem
        obs = SchedulingObservation(
            problem_id=p.id, prompt=build_prompt(p), events=p.events, priorities=p.priorities, result=result
        )
        return OpenEnvResult(observation=obs, reward=result.reward, done=True)

    def schema(self) -> OpenEnvSchema:
        return OpenEnvSchema(
            action=SchedulingAction.model_json_schema(),
            observation=SchedulingObservation.model_json_schema(),
            state=OpenEnvState.model_json_schema(),
        )

    def handle_ws(self, message: dict[str, Any], episode: Episode) -> dict[str, Any]:
        """One `/ws` message (`{"type": "reset"|"step"|"state", "data": …}`) → the reply to send."""
        kind, data = message.get("type"), message.get("data") or {}
        if kind == "reset":
            req = OpenEnvResetRequest.model_validate(data)
            result = self.reset(req)
            episode.episode_id, episode.step_count = req.episode_id, 0
            episode.problem_id = result.observation.problem_id
            return {"type": "observation", "data": result.model_dump(mode="json")}
        if kind == "step":
            action = SchedulingAction.model_validate(data)
            if action.problem_id is None:
                action = action.model_copy(update={"problem_id": episode.problem_id})
            result = self.step(action)
            episode.step_count += 1
            return {"type": "observation", "data": result.model_dump(mode="json")}
        if kind == "state":
            return {"type": "state", "data": episode.state().model_dump(mode="json")}
        raise EnvError(f"unknown message type {clip(kind)}; expected reset, step, state or close")


def openenv_router(store: ProblemStore, settings: Settings) -> APIRouter:
    """The OpenEnv routes under `/openenv`, serving `store`'s problems."""
    env = SchedulingEnv(store, settings)
    router = APIRouter(prefix=PREFIX, tags=["openenv"])

    @router.post("/reset", response_model=OpenEnvResult)
    async def reset(req: OpenEnvResetRequest | None = None) -> Response:
        """Start an episode: a problem (by `problem_id`, `index`, `seed`, or at random) as the observation."""
        try:
            return _json(env.reset(req or OpenEnvResetRequest()))
        except EnvError as e:
            raise _http_error(e) from None

    @router.post("/step", response_model=OpenEnvResult)
    async def step(req: OpenEnvStepRequest) -> Response:
        """Score the completion for `action.problem_id`; the episode is then done."""
        try:
            return _json(env.step(req.action))
        except EnvError as e:
            raise _http_error(e) from None

    @router.get("/state", response_model=OpenEnvState)
    async def state() -> OpenEnvState:
        """Plain HTTP keeps no episode, so this is always the empty state (a `/ws` session has its own)."""
        return OpenEnvState()

    @router.get("/schema", response_model=OpenEnvSchema)
    async def schema() -> OpenEnvSchema:
        return env.schema()

    @router.get("/metadata", response_model=OpenEnvMetadata)
    async def metadata() -> OpenEnvMetadata:
        return OpenEnvMetadata(
            name="scheduling",
            description="Pick non-overlapping events that maximise weighted time; one answer per episode.",
            version=REWARD_VERSION,
        )

    @router.get("/health", response_model=OpenEnvHealth)
    async def health() -> OpenEnvHealth:
        return OpenEnvHealth(status="healthy")

    @router.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        """openenv-core's session protocol: one episode state per connection.

        Every frame gets a reply: a bad one (binary, not JSON, too deep, too large, invalid) gets an
        `error` message and the session goes on; only a frame over the size limit also ends it (1009)."""
        await websocket.accept()
        episode = Episode()
        try:
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                text, data = frame.get("text"), frame.get("bytes")
                size = len(text) if text is not None else len(data or b"")
                if size > settings.max_body_bytes:
                    reply = ws_error(f"message over the {settings.max_body_bytes}-byte limit", "TooLarge")
                    await websocket.send_text(json.dumps(reply))
                    await websocket.close(code=1009)
                    return
                if text is None:
                    reply = ws_error("send messages as JSON text frames, not binary", "BinaryFrame")
                    await websocket.send_text(json.dumps(reply))
                    continue
                try:
                    message = json.loads(text)
                    if not isinstance(message, dict):
                        raise EnvError("a message must be a JSON object")
                    if message.get("type") == "close":
                        break
                    reply = env.handle_ws(message, episode)
                except (json.JSONDecodeError, EnvError, ValidationError) as e:
                    reply = ws_error(str(e), type(e).__name__)
                except RecursionError:
                    reply = ws_error("message is JSON nested too deeply to read", "RecursionError")
                except Exception:  # one bad message must not drop the session: log it, answer, go on
                    log.exception("openenv /ws message failed")
                    reply = ws_error("internal error while handling this message", "InternalError")
                await websocket.send_text(json.dumps(reply))
        except WebSocketDisconnect:
            return
        await websocket.close()

    return router


def ws_error(message: str, code: str) -> dict[str, Any]:
    return {"type": "error", "data": {"message": clip_message(message), "code": code}}
