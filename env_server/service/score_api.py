"""`POST /v1/score`: the scoring route, with a fast path for well-formed requests.

The route is an ordinary FastAPI route (`ScoreRequest` in, `ScoreResponse` out: same schema, same errors).
In front of it, `ScoreService.fast` decodes the body with msgspec and accepts it only when it has exactly
the shape `ScoreRequest` accepts (JSON content type, an object with `items`, optionally a known `profile`
and a boolean `return_events`, every item an object with a string `completion` and exactly one of a string
`problem_id` or an object `problem`). An inline problem is kept as the JSON text it was sent as (not
decoded): that text is its key in the `ProblemCache`, so a problem is decoded, validated by `ProblemSpec`
and indexed once per distinct content, and a GRPO group's repeats of it cost a dictionary look-up. Anything
else (bad JSON, a wrong type, an invalid problem) goes to the ordinary route, which validates with pydantic
and answers with the usual 422. Both paths score with `score_batch` and write the response with orjson, so
results are the same whichever path a request takes.

Why not the FastAPI route alone: a GRPO trainer calls this route for every group of every step, and
pydantic validation plus FastAPI's routing and serialisation were most of a small request's cost. In-process
through the ASGI app, a batch-1 request took 70 µs on the route and 43 µs on the fast path, and a batch
of 64 by id 0.94 → 0.83 ms (docs/benchmarks.md; `bench/score_targets.py` reproduces them). The route stays
the one definition of the schema, its errors and its OpenAPI page.

Work that could hold the event loop (a body over `offload_body_bytes`, ids of problems that must first be
generated, or a large validated batch) runs on a worker thread, and every request has a time budget
(`request_time_budget_s`): past it, the work stops and the service answers 503. A large body the fast path
declines (a lone surrogate in a completion, say) is validated and scored on that thread too, never handed
to the route to parse again on the event loop: on one worker, a legal 8 MB request that took that way held
`/health` for 0.5–0.7 s, 1.3–1.6 s under load (docs/benchmarks.md). The thread also holds the interpreter
in short steps only (`encode_results`), so the event loop gets it back within milliseconds.
"""

from __future__ import annotations

import email.message
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from env_server.scoring.batch import (
    Entry,
    ProblemCache,
    TimeBudgetExceeded,
    collector_paused,
    entries_of,
    score_batch,
)
from env_server.scoring.profiles import DEFAULT_PROFILE, PROFILES, REWARD_VERSION, WireResult, get_profile
from env_server.service.errors import (
    Unprocessable,
    collect_after_large_failure,
    http_error_response,
    validation_error_response,
)
from env_server.service.metrics import ServiceMetrics
from env_server.service.settings import Settings
from env_server.service.store import ProblemStore
from shared_schema import ScoreRequest, ScoreResponse

# A validated batch with more items or completion characters than this is scored on a worker thread (a
# few milliseconds of work at most inline).
_INLINE_ITEMS = 256
_INLINE_CHARS = 256 * 1024
# Results encoded (and freed) per step of a large response: one step holds the interpreter for at most a
# few milliseconds, even when each result carries a thousand violations.
_ENCODE_STEP = 16


def is_large(items: int, chars: int) -> bool:
    """A batch scored off the event loop, and scored, encoded and sent in steps (`ScoreService.respond`)."""
    return items > _INLINE_ITEMS or chars > _INLINE_CHARS


def dumps(obj: Any) -> bytes:
    """JSON bytes: orjson, or the standard library for what orjson refuses (lone surrogates)."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return json.dumps(obj).encode()


class _WireItem(msgspec.Struct, forbid_unknown_fields=True):
    """An item as the fast path reads it; `problem` is the JSON text as sent (empty when absent)."""

    completion: str
    problem_id: str | None = None
    problem: msgspec.Raw = msgspec.Raw()


class _WireRequest(msgspec.Struct, forbid_unknown_fields=True):
    items: list[_WireItem]
    profile: str = DEFAULT_PROFILE
    return_events: bool = False  # msgspec takes only JSON true/false, as `StrictBool` does


_decode = msgspec.json.Decoder(_WireRequest).decode
_NO_PROBLEM = (b"", b"null")  # `problem` absent or null


@dataclass(frozen=True, slots=True)
class _Plan:
    """A request in the simple shape, before its problems are resolved."""

    profile: str
    items: list[tuple[str | None, bytes | None, str]]  # (problem_id, inline problem's JSON, completion)
    heavy: bool  # resolving needs generation: do it off the event loop
    events: bool  # `return_events`


class ScoreService:
    """Everything `/v1/score` needs: the store, the inline-problem cache, limits and the time budget."""

    def __init__(self, store: ProblemStore, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.problems = ProblemCache(settings.problem_cache_size)
        self.metrics: ServiceMetrics | None = None  # set by create_app: items per profile and verdict

    def deadline(self) -> float:
        return time.monotonic() + self.settings.request_time_budget_s

    # The fast path ------------------------------------------------------------------------------------

    def _plan(self, body: bytes) -> _Plan | None:
        """The body in exactly a shape `ScoreRequest` accepts (problems still to validate), else None."""
        try:
            request = _decode(body)
        except (msgspec.DecodeError, RecursionError):  # not JSON, not this shape, or nested too deep
            return None
        if not request.items or request.profile not in PROFILES:  # the route says what is wrong
            return None
        out: list[tuple[str | None, bytes | None, str]] = []
        heavy = False
        resident = self.store.resident
        for item in request.items:
            pid, problem = item.problem_id, bytes(item.problem)
            if problem in _NO_PROBLEM:
                if pid is None:
                    return None
                heavy = heavy or resident(pid) is None
                out.append((pid, None, item.completion))
            elif pid is not None or problem[:1] != b"{":
                return None
            else:
                out.append((None, problem, item.completion))
        return _Plan(request.profile, out, heavy, request.return_events)

    def _entries(self, plan: _Plan) -> list[Entry] | None:
        """Resolve the plan's problems; None if an inline problem is invalid (the route says why)."""
        entries: list[Entry] = []
        index, cached = self.store.index, self.problems.index_json
        for pid, problem, completion in plan.items:
            if problem is None:
                entries.append((index(pid or ""), pid, completion))
                continue
            try:
                entries.append((cached(problem), None, completion))
            except (ValidationError, orjson.JSONDecodeError):
                return None
        return entries

    def _run(self, plan: _Plan, deadline: float) -> Response | None:
        entries = self._entries(plan)
        return None if entries is None else self.respond(plan.profile, entries, deadline, plan.events)

    def _run_paused(self, plan: _Plan, deadline: float) -> Response | None:
        with collector_paused():
            return self._run(plan, deadline)

    def _run_body(self, body: bytes, deadline: float) -> Response:
        """The whole of `/v1/score` for a large body, on a worker thread: the fast path, else FastAPI's
        validation (its 422 is raised from here) and the route's scoring, so none of it runs on the event
        loop."""
        with collector_paused():
            return self._run_body_unpaused(body, deadline)

    def _run_body_unpaused(self, body: bytes, deadline: float) -> Response:
        plan = self._plan(body)
        response = None if plan is None else self._run(plan, deadline)
        if response is not None:
            return response
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = _stdlib_json(body)
        try:
            req = ScoreRequest.model_validate(data, from_attributes=True)  # as FastAPI validates bodies
        except ValidationError as e:
            errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        del data
        return self.respond_validated(req, deadline)  # what the route would answer, off the event loop

    async def fast(self, request: Request) -> Response | None:
        """The response, or None to let the ordinary route validate and answer."""
        if not is_json(request.headers.get("content-type", "")):
            return None
        body = await request.body()
        deadline = self.deadline()
        if len(body) > self.settings.offload_body_bytes:
            return await run_in_threadpool(self._run_body, body, deadline)
        plan = self._plan(body)
        if plan is None:
            return None
        if plan.heavy:
            return await run_in_threadpool(self._run_paused, plan, deadline)
        return self._run(plan, deadline)

    # Both paths ---------------------------------------------------------------------------------------

    def respond(
        self, profile_name: str, entries: list[Entry], deadline: float, events: bool = False
    ) -> Response:
        """Limits, profile, scoring and the JSON response: the same for both paths. `events`: each result
        also carries the events read (`ScoreRequest.return_events`)."""
        limit = self.settings.max_batch_items
        if len(entries) > limit:
            raise HTTPException(413, f"{len(entries)} items; the limit is {limit} per request")
        try:
            profile = get_profile(profile_name)
        except KeyError as e:
            raise Unprocessable(str(e.args[0]), ["body", "profile"]) from None
        max_chars, verdicts = self.settings.max_completion_chars, list[str | None]()
        large = is_large(len(entries), sum(len(e[2]) for e in entries))

        def scored() -> Iterator[list[WireResult]]:
            # A large batch is scored, encoded and freed `_ENCODE_STEP` items at a time: its results (a
            # thousand violations each, for the longest completions) never all live at once.
            step = _ENCODE_STEP if large else len(entries)
            for i in range(0, len(entries), step):
                results = score_batch(entries[i : i + step], profile, max_chars, deadline, events)
                verdicts.extend(r["verdict"] for r in results)
                yield results

        try:
            parts = encode_parts(REWARD_VERSION, profile.name, scored())
        except TimeBudgetExceeded:
            raise HTTPException(503, self.over_budget()) from None
        if self.metrics is not None:
            self.metrics.record_batch(profile.name, verdicts)
        if large:  # sent part by part: no joined copy of a response that can reach 30 MB
            return PartsResponse(parts)
        return Response(content=b"".join(parts), media_type=_JSON)

    def respond_validated(self, req: ScoreRequest, deadline: float) -> Response:
        entries = entries_of(req.items, self.store.index, self.problems)
        return self.respond(req.profile, entries, deadline, req.return_events)

    def respond_validated_paused(self, req: ScoreRequest, deadline: float) -> Response:
        with collector_paused():
            return self.respond_validated(req, deadline)

    def over_budget(self) -> str:
        return (
            f"the request ran past its {self.settings.request_time_budget_s:g} s time budget; "
            "send fewer items (or a smaller page) per request"
        )


def _stdlib_json(body: bytes) -> Any:
    """Parse as FastAPI does (the standard library), raising FastAPI's 422 for malformed JSON."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        error = {"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": e.msg}}]) from None
    except Exception:  # as FastAPI: undecodable bytes, JSON nested too deep for the parser, …
        raise HTTPException(400, "There was an error parsing the body") from None


_JSON = "application/json"


def is_json(content_type: str) -> bool:
    """Whether FastAPI reads a body with this `Content-Type` as JSON: `application/json` or
    `application/*+json`, parameters and case aside (a missing type is not JSON: strict content types)."""
    if content_type.split(";", 1)[0].strip().lower() == _JSON:
        return True
    if not content_type:
        return False
    message = email.message.Message()  # FastAPI's own parsing, for everything else
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def encode_results(
    reward_version: str, profile: str, results: list[WireResult] | Iterable[list[WireResult]]
) -> bytes:
    """A `ScoreResponse` written from wire dicts (same fields, same order as the model): the bytes of
    `dumps({"reward_version": …, "profile": …, "results": results})`. `results` is a list, which this
    **empties**, or an iterable of lists (chunks): see `encode_parts`, whose parts this joins."""
    return b"".join(encode_parts(reward_version, profile, results))


def encode_parts(
    reward_version: str, profile: str, results: list[WireResult] | Iterable[list[WireResult]]
) -> list[bytes]:
    """`encode_results`' bytes in parts (joined, they are the response), `_ENCODE_STEP` results per part.

    `results` is a list, which this **empties**, freeing it a step at a time too, or an iterable of lists
    (chunks), each encoded and freed before the next is drawn. One orjson call over 120 results with a
    thousand violations each (a 27 MB response) holds the interpreter for about 30 ms, and freeing them in
    one go as long again; a worker thread that does either keeps the event loop (and `/health`) waiting
    that long. In steps, the loop gets the interpreter back between two of them. Drawn as chunks and sent
    as parts (`PartsResponse`), a large batch's results never all live at once, nor does a joined copy of
    its answer: the peak is one chunk's objects and the encoded parts (issue 24's 512 MB limit)."""
    head = {"reward_version": reward_version, "profile": profile}
    chunks = [results] if isinstance(results, list) else results
    parts = [orjson.dumps(head)[:-1] + b',"results":[']
    first = True
    for chunk in chunks:
        for i in range(0, len(chunk), _ENCODE_STEP):
            part = chunk[i : i + _ENCODE_STEP]
            if not part:
                continue
            try:
                text = orjson.dumps(part)
            except orjson.JSONEncodeError:  # what orjson refuses (lone surrogates), by the standard library
                text = json.dumps(part, separators=(",", ":")).encode()
            parts.append(text[1:-1] if first else b"," + text[1:-1])
            first = False
        while chunk:
            del chunk[-_ENCODE_STEP:]
    parts.append(b"]}")
    return parts


class PartsResponse(Response):
    """A JSON response sent as the parts `encode_parts` wrote, each dropped once sent; its
    `Content-Length` is their total, so a client sees the same response as one body would give."""

    media_type = _JSON

    def __init__(self, parts: list[bytes]) -> None:
        super().__init__(content=b"")
        self.parts = parts
        self.headers["content-length"] = str(sum(map(len, parts)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        parts, self.parts = self.parts, []
        parts.reverse()
        while parts:
            await send({"type": "http.response.body", "body": parts.pop(), "more_body": bool(parts)})
        if self.background is not None:
            await self.background()


async def read_body(receive: Receive) -> bytes | None:
    """A request's whole body from its ASGI messages; None if the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def score_router(service: ScoreService) -> APIRouter:
    """The validated `/v1/score` route (and its `/score` alias): what `ScoreEndpoint` does not answer,
    and what the OpenAPI schema documents."""
    router = APIRouter()

    @router.post("/v1/score", response_model=ScoreResponse)
    @router.post("/score", response_model=ScoreResponse, summary="Score (unversioned alias of /v1/score)")
    async def score(req: ScoreRequest) -> Response:
        """Score completions against served (`problem_id`) or inline (`problem`) problems."""
        deadline = service.deadline()
        if is_large(len(req.items), sum(len(item.completion) for item in req.items)):
            return await run_in_threadpool(service.respond_validated_paused, req, deadline)
        return service.respond_validated(req, deadline)

    return router


class ScoreEndpoint:
    """ASGI middleware: `POST /v1/score` (and `/score`) answered by `ScoreService.fast` directly.

    The fast path reads the body as bytes and writes orjson bytes, so FastAPI's routing, request and
    dependency machinery would only add time (about as much as scoring a dozen completions). This sits
    inside the metrics, access-control and body-limit middleware, which apply as before. A request the
    fast path declines goes on, body replayed, to the validated route of `score_router`; an error the fast
    path raises gets the response the app's exception handlers give it.
    """

    def __init__(self, app: ASGIApp, service: ScoreService, routes: list[BaseRoute]) -> None:
        self.app, self.service = app, service
        # path -> route: what the metrics label a request with (`scope["route"]`, as the router sets it)
        self.routes = {r.path: r for r in routes if isinstance(r, APIRoute) and "POST" in (r.methods or ())}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # client went away
            return
        request = Request(scope, replay_body(body, receive))
        failed = True
        try:
            response = await self.service.fast(request)
            failed = False
        except HTTPException as exc:
            response = http_error_response(exc)
        except (RequestValidationError, ValidationError) as exc:
            response = validation_error_response(exc)
        if failed:
            collect_after_large_failure(request)
        if response is None:
            await self.app(scope, replay_body(body, receive), send)
            return
        scope["route"] = route
        await response(scope, receive, send)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` as one message, then whatever `receive` gives."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
