"""The HTTP service (docs/contract.md, "HTTP API"). Thin shell: validate, call the core, serialise.

`create_app(settings)` builds everything; nothing happens at import time. `app_factory()` is what
uvicorn runs (`--factory`), reading `Settings` from the environment in each worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from env_server.generator import PRESETS
from env_server.integrations.openenv import openenv_router
from env_server.integrations.openrlhf import openrlhf_router
from env_server.metrics import install as install_metrics
from env_server.playground import install as install_playground
from env_server.problems import gold_completion, solve
from env_server.prompts import build_prompt
from env_server.rewards import DEFAULT_PROFILE, PROFILES, REWARD_VERSION, get_profile
from env_server.scoring import score_items
from env_server.settings import Settings
from env_server.store import ProblemStore
from shared_schema import (
    HealthResponse,
    InfoResponse,
    Problem,
    ProblemList,
    ProblemWithPrompt,
    PromptRequest,
    PromptResponse,
    ScoreRequest,
    ScoreResponse,
    SolveRequest,
    SolveResponse,
)

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
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        body = f'{{"detail":"request body over the {self.max_bytes}-byte limit"}}'.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _error_list(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the offending input: it may be megabytes long, or not even JSON
    (`Infinity`), and the location and message already name the field."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
    ]


def _json(model: ProblemList | ScoreResponse | SolveResponse | InfoResponse | ProblemWithPrompt) -> Response:
    return Response(content=model.model_dump_json(), media_type="application/json")


def _with_prompt(p: Problem) -> ProblemWithPrompt:
    return ProblemWithPrompt(**p.model_dump(), prompt=build_prompt(p))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    store = ProblemStore(settings)
    app = FastAPI(
        title="Scheduling environment",
        version=REWARD_VERSION,
        description="Generates day-scheduling problems, serves prompts and scores completions for RL.",
    )
    app.state.settings, app.state.store = settings, store
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    metrics = install_metrics(app, settings, REWARD_VERSION)  # outermost: sees every request, 413s too

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: ValidationError | RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _error_list(exc.errors())})

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
        limit: Annotated[int, Query(ge=1)] = 100,
        difficulty: Annotated[str | None, Query(description="Preset name; default: the main split")] = None,
    ) -> Response:
        if limit > settings.max_page_size:
            raise HTTPException(422, f"limit must be at most {settings.max_page_size}")
        try:
            page = store.page(split, offset, limit, difficulty)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        return _json(ProblemList(total=store.size(split), items=[_with_prompt(p) for p in page]))

    @app.get("/v1/problems/{problem_id}", response_model=ProblemWithPrompt)
    async def problem(problem_id: str) -> Response:
        entry = store.get(problem_id)
        if entry is None:
            raise HTTPException(404, f"unknown problem id {problem_id!r}")
        return _json(_with_prompt(entry.problem))

    @app.post("/v1/solve", response_model=SolveResponse)
    async def solve_endpoint(req: SolveRequest) -> Response:
        value, schedule = solve(req.problem)
        return _json(
            SolveResponse(
                reward_version=REWARD_VERSION,
                optimal_score=value,
                schedule=schedule,
                completion=gold_completion(req.problem, (value, schedule)),
            )
        )

    @app.post("/v1/prompt", response_model=PromptResponse)
    async def prompt_endpoint(req: PromptRequest) -> PromptResponse:
        """The chat prompt for an inline problem, so clients send exactly what `/v1/problems` serves."""
        return PromptResponse(prompt=build_prompt(req.problem))

    @app.post("/v1/score", response_model=ScoreResponse)
    @app.post("/score", response_model=ScoreResponse, summary="Score (unversioned alias of /v1/score)")
    async def score(req: ScoreRequest) -> Response:
        if len(req.items) > settings.max_batch_items:
            raise HTTPException(
                413, f"{len(req.items)} items; the limit is {settings.max_batch_items} per request"
            )
        try:
            profile = get_profile(req.profile)
        except KeyError as e:
            raise HTTPException(422, str(e.args[0])) from None
        results = score_items(req.items, profile, store.index, settings.max_completion_chars)
        metrics.record_batch(profile.name, [r.verdict.value if r.verdict else None for r in results])
        return _json(ScoreResponse(reward_version=REWARD_VERSION, profile=profile.name, results=results))

    app.include_router(openrlhf_router(store, settings))
    app.include_router(openenv_router(store, settings))
    install_playground(app)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory env_server.app:app_factory` (settings from `SCHED_*`)."""
    return create_app(Settings())
