"""The HTTP service (docs/contract.md, "HTTP API"). Thin shell: validate, call the core, serialise.

`create_app(settings)` builds everything; nothing happens at import time. `app_factory()` is what
uvicorn runs (`--factory`), reading `Settings` from the environment in each worker.
"""

from __future__ import annotations

import gc
import logging
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from env_server.scoring.batch import collector_paused
from env_server.scoring.profiles import DEFAULT_PROFILE, PROFILES, REWARD_VERSION
from env_server.service.curriculum_api import Sessions, curriculum_router
from env_server.service.docs import install_docs
from env_server.service.episodes import EpisodeCalls, EpisodeStore, episodes_router
from env_server.service.errors import Unprocessable, complete_openapi, install_error_handlers
from env_server.service.integrations.openenv import openenv_router
from env_server.service.integrations.openenv_mcp import openenv_mcp_router
from env_server.service.integrations.openreward import openreward_router
from env_server.service.integrations.openrlhf import openrlhf_router
from env_server.service.metrics import install as install_metrics
from env_server.service.offload import OffloadLargeBodies
from env_server.service.playground import install as install_playground
from env_server.service.score_api import ScoreEndpoint, ScoreService, replay_body, score_router
from env_server.service.security import AccessControl
from env_server.service.settings import Settings
from env_server.service.store import ProblemStore, long_lived
from env_server.task.generator import PRESETS
from env_server.task.problems import gold_completion, solve
from env_server.task.prompts import build_prompt
from env_server.task.traces import traced_completion
from shared_schema import (
    HealthResponse,
    InfoResponse,
    Problem,
    ProblemList,
    ProblemWithPrompt,
    PromptRequest,
    PromptResponse,
    PromptStyle,
    ScoreResponse,
    SolveRequest,
    SolveResponse,
)
from shared_schema.text import clip

log = logging.getLogger("env_server")


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, by Content-Length or by counting a chunked stream.

    The body is read here (it would be read whole by the endpoint anyway) and replayed to the app, so an
    oversized stream is cut off as soon as it passes the limit, before any parsing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(b"".join(chunks), receive), send)

    async def _reject(self, send: Send) -> None:
        body = f'{{"detail":"request body over the {self.max_bytes}-byte limit"}}'.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _json(model: ProblemList | ScoreResponse | SolveResponse | InfoResponse | ProblemWithPrompt) -> Response:
    return Response(content=model.model_dump_json(), media_type="application/json")


def _with_prompt(p: Problem, style: PromptStyle = "default") -> ProblemWithPrompt:
    return ProblemWithPrompt(**p.model_dump(), prompt=build_prompt(p, style))


StyleQuery = Annotated[
    PromptStyle, Query(description="Prompt style: `default`, `compact` or `guided` (`/v1/info`).")
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    store = ProblemStore(settings)
    app = FastAPI(
        title="Scheduling environment",
        version=REWARD_VERSION,
        description="Generates day-scheduling problems, serves prompts and scores completions for RL.",
        docs_url=None,
        redoc_url=None,
    )
    scorer = ScoreService(store, settings)
    app.state.settings, app.state.store, app.state.scorer = settings, store, scorer
    scoring = score_router(scorer)
    app.add_middleware(ScoreEndpoint, service=scorer, routes=scoring.routes)  # innermost: inside the limits
    score_paths = frozenset(r.path for r in scoring.routes if isinstance(r, APIRoute))
    app.add_middleware(OffloadLargeBodies, min_bytes=settings.offload_body_bytes, skip=score_paths)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        AccessControl, api_keys=settings.api_key_set(), ws_origins=settings.ws_origin_set()
    )  # a request without a key is refused before its body is read
    metrics = install_metrics(app, settings, REWARD_VERSION)  # outermost: sees every request, 401/413 too
    scorer.metrics = metrics
    install_error_handlers(app)
    install_docs(app)
    complete_openapi(app, settings, {"profile": sorted(PROFILES), "difficulty": sorted(PRESETS)})

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        return HealthResponse(status="ok", reward_version=REWARD_VERSION)

    @app.get("/v1/info", response_model=InfoResponse)
    async def info() -> Response:
        return _json(
            InfoResponse(
                reward_version=REWARD_VERSION,
                profiles=[p.info() for p in PROFILES.values()],
                default_profile=DEFAULT_PROFILE,
                splits={s: store.size(s) for s in store.splits},
                difficulties=PRESETS,
                generator=store.describe(),
                limits={
                    "max_body_bytes": settings.max_body_bytes,
                    "max_batch_items": settings.max_batch_items,
                    "max_completion_chars": settings.max_completion_chars,
                    "max_page_size": settings.max_page_size,
                },
            )
        )

    @app.get("/v1/problems", response_model=ProblemList)
    async def problems(
        split: Literal["train", "test"] = "train",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: int = Query(100, ge=1, le=settings.max_page_size),  # a setting: not an Annotated alias
        difficulty: Annotated[
            str | None, Query(max_length=64, description="Preset name; default: the main split")
        ] = None,
        prompt_style: StyleQuery = "default",
    ) -> Response:
        deadline = scorer.deadline()

        def build() -> Response:
            with collector_paused():
                return build_unpaused()

        def build_unpaused() -> Response:
            try:
                page = store.page(split, offset, limit, difficulty, deadline)
            except ValueError as e:
                raise Unprocessable(str(e), ["query", "difficulty"]) from None
            except TimeoutError:
                raise HTTPException(503, scorer.over_budget()) from None
            items = [_with_prompt(p, prompt_style) for p in page]
            return _json(ProblemList(total=store.size(split), items=items))

        # a big page, or one that generates problems, is built on a worker thread: the loop stays free
        return await run_in_threadpool(build) if limit > 32 or difficulty is not None else build_unpaused()

    @app.get("/v1/problems/{problem_id}", response_model=ProblemWithPrompt)
    async def problem(problem_id: str, prompt_style: StyleQuery = "default") -> Response:
        entry = store.get(problem_id)
        if entry is None:
            raise HTTPException(404, f"unknown problem id {clip(problem_id)}")
        return _json(_with_prompt(entry.problem, prompt_style))

    @app.post("/v1/solve", response_model=SolveResponse)
    async def solve_endpoint(req: SolveRequest) -> Response:
        value, schedule = solve(req.problem)
        return _json(
            SolveResponse(
                reward_version=REWARD_VERSION,
                optimal_score=value,
                schedule=schedule,
                completion=(
                    traced_completion(req.problem, (value, schedule), req.trace_style)
                    if req.trace
                    else gold_completion(req.problem, (value, schedule))
                ),
            )
        )

    @app.post("/v1/prompt", response_model=PromptResponse)
    async def prompt_endpoint(req: PromptRequest) -> PromptResponse:
        """The chat prompt for an inline problem, so clients send exactly what `/v1/problems` serves."""
        return PromptResponse(prompt=build_prompt(req.problem, req.prompt_style))

    app.include_router(scoring)
    app.include_router(openrlhf_router(store, settings, scorer.problems))
    app.include_router(openenv_router(store, settings))
    sessions = Sessions(settings.curriculum_dir, settings.curriculum_max_sessions)
    app.include_router(curriculum_router(store, sessions))
    episodes = EpisodeStore(settings.episode_db, settings.episode_max_sessions, settings.episode_ttl_s)
    calls = EpisodeCalls(store, settings, episodes)
    app.include_router(episodes_router(calls))
    app.include_router(openreward_router(calls))
    app.include_router(openenv_mcp_router(calls))
    install_playground(app)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory env_server.service.app:app_factory` (settings from `SCHED_*`).

    The served problems then live as long as the process: they are moved out of the cyclic garbage
    collector's full scans (`long_lived`), which would otherwise pause every request in the worker. The
    young generation is collected every `gc_young_threshold` allocations instead of Python's 700: the
    worker process is the service's own, so its collector can be tuned for it."""
    settings = Settings()
    app = create_app(settings)
    long_lived()
    gc.set_threshold(settings.gc_young_threshold, *gc.get_threshold()[1:])
    return app
