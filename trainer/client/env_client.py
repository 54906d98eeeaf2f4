"""Client of the environment service: the only way the trainer side talks to `env_server`.

The HTTP client is injected (`EnvClient(httpx.Client(base_url=...))`), so tests pass a Starlette
`TestClient(app)` (an `httpx`-style client; Starlette builds it on `httpx2`) and run client → HTTP →
server in one process. Every call has a timeout; responses are parsed with the `shared_schema` models.

Retries go by time, not by count: connection errors and 5xx answers are retried with exponential backoff
and jitter for up to `retry_timeout` seconds (default 120), logging each wait, so a service that restarts
(about 5 s) or a short network outage costs a training run some seconds instead of ending it. A 4xx is the
caller's mistake and is never retried. With `api_key` (default: the `SCHED_API_KEY` environment variable)
every request carries `Authorization: Bearer <key>`, for a service started with `SCHED_API_KEYS`.
"""

from __future__ import annotations

import logging
import os
import random
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from shared_schema import (
    ChatMessage,
    Event,
    HealthResponse,
    InfoResponse,
    ProblemList,
    ProblemSpec,
    ProblemWithPrompt,
    PromptRequest,
    PromptResponse,
    ScoreItem,
    ScoreRequest,
    ScoreResponse,
    SolveRequest,
    SolveResponse,
)
from shared_schema.curriculum import (
    CurriculumConfig,
    CurriculumState,
    CurriculumStatus,
    GroupReport,
    NextResponse,
    ReportRequest,
)
from shared_schema.episodes import CheckResult, EpisodeStart, EpisodeStarted, EpisodeState, SubmitResult
from shared_schema.models import TraceStyle
from trainer.client.rewards import RewardResponse, decode_rewards
from trainer.client.transport import RoundRobinTransport, split_urls

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
POOL_LIMITS = httpx.Limits(max_connections=1024, max_keepalive_connections=1024, keepalive_expiry=4.0)
"""The connection pool: a connection per concurrent call (up to 1,024), every one kept between calls, and
dropped after 4 s idle: before a server with uvicorn's 5 s keep-alive would close it (this service keeps
them 75 s, `SCHED_KEEP_ALIVE_TIMEOUT`). httpx's defaults (100 connections, 20 kept) reconnect past 20
concurrent calls: 1,000 threads sharing the client made 165 calls/s with 2 errors, against 341 calls/s
and none with this pool (bench/episodes_load.py, docs/benchmarks.md)."""
DEFAULT_RETRY_TIMEOUT = 120.0
"""Seconds a failing call is retried before `EnvUnavailableError`: well past a service restart."""
API_KEY_VARIABLE = "SCHED_API_KEY"
log = logging.getLogger("trainer.client.env_client")
_JSON_CONTENT = {"content-type": "application/json"}
_httpx_log = logging.getLogger("httpx")

_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError,)
try:  # Starlette's TestClient is built on httpx2
    import httpx2

    _TRANSPORT_ERRORS += (httpx2.TransportError,)
except ImportError:  # pragma: no cover
    pass


class HTTPClient(Protocol):
    """What EnvClient needs of its HTTP client: `httpx.Client` and Starlette's `TestClient` both fit."""

    base_url: Any

    @property
    def request(self) -> Callable[..., httpx.Response]: ...  # (method, url, **httpx's keyword arguments)

    def close(self) -> None: ...


class EnvUnavailableError(RuntimeError):
    """The environment service could not be reached (or kept failing) after every retry."""


class EnvRequestError(RuntimeError):
    """The service rejected a request (4xx): retrying will not help."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"environment answered {status_code}: {detail}")
        self.status_code, self.detail = status_code, detail


class _ServerError(Exception):
    def __init__(self, status_code: int, text: str) -> None:
        super().__init__(f"HTTP {status_code}: {text[:200]}")


def backoff_wait(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): `initial` doubling up to `maximum`, with
    "equal jitter" (uniform in the upper half), so many clients that lost one service do not return in
    lockstep."""
    cap = min(maximum, initial * 2 ** min(attempt - 1, 32))
    return (rng or random).uniform(cap / 2, cap)


class EnvClient:
    """Typed calls to the environment's HTTP API with timeouts and time-bounded retries."""

    def __init__(
        self,
        http: HTTPClient,
        *,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        max_attempts: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        api_key: str | None = None,
        url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.url = url or str(http.base_url)  # as given to from_url: every replica, for logs and pickling
        self.retry_timeout = retry_timeout
        self.max_attempts = max_attempts  # optional cap on attempts within retry_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.api_key = api_key
        self.sleep = sleep
        self._direct: tuple[httpx.Client, httpx.BaseTransport] | None = None

    def _send_directly(self, http: httpx.Client, transport: httpx.BaseTransport) -> None:
        """Send bodies straight to `transport`, the one `http` sends through (see `_post`)."""
        self._direct = (http, transport)

    @classmethod
    def from_url(
        cls,
        url: str,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        api_key: str | None = None,
        limits: httpx.Limits = POOL_LIMITS,
        **kwargs: Any,
    ) -> EnvClient:
        """A client for one URL, or for replicas given as a comma-separated list (spread round-robin,
        failing over when one is down: `trainer.client.transport.RoundRobinTransport`). `api_key` defaults to
        the `SCHED_API_KEY` environment variable (so no key needs to be on a command line)."""
        kwargs["api_key"] = api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE) or None
        urls = split_urls(url)
        transport: httpx.BaseTransport
        if len(urls) > 1:
            transport = RoundRobinTransport(urls, transport=httpx.HTTPTransport(limits=limits))
            http = httpx.Client(base_url=urls[0], timeout=timeout, transport=transport)
            client = cls(http, url=",".join(urls), **kwargs)
        else:
            transport = httpx.HTTPTransport(limits=limits)  # what httpx.Client builds, with our pool
            http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, transport=transport)
            client = cls(http, url=url.rstrip("/"), **kwargs)
        if not urllib.request.getproxies():  # with a proxy variable set, httpx.Client picks the route
            client._send_directly(http, transport)
        return client

    def retry_settings(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this client's retry policy and key (used when pickling)."""
        return {
            "retry_timeout": self.retry_timeout,
            "max_attempts": self.max_attempts,
            "backoff_initial": self.backoff_initial,
            "backoff_max": self.backoff_max,
            "api_key": self.api_key,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as "reconnect to the same URL(s) with the same timeout and retries", never the socket,
        so reward functions holding a client can travel to other processes (TRL, accelerate)."""
        timeout = self.http.timeout if isinstance(self.http, httpx.Client) else DEFAULT_TIMEOUT
        return (_reconnect, (self.url, timeout, self.retry_settings()))

    @property
    def base_url(self) -> str:
        return str(self.http.base_url)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> EnvClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _auth(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.api_key:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "authorization": f"Bearer {self.api_key}"}
        return kwargs

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call, retried on connection errors and 5xx until `retry_timeout` (or `max_attempts`)."""
        kwargs = self._auth(kwargs)
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, path, kwargs)
                if response.status_code < 500:
                    break
                cause: BaseException = _ServerError(response.status_code, response.text)
            except _TRANSPORT_ERRORS as e:
                cause = e
            elapsed = time.monotonic() - start
            remaining = self.retry_timeout - elapsed
            if remaining <= 0 or (self.max_attempts is not None and attempt >= self.max_attempts):
                raise EnvUnavailableError(
                    f"environment at {self.base_url} failed {attempt} times on {method} {path} over "
                    f"{elapsed:.0f}s: {cause!r}. Is `sched-env serve` running and reachable at --env_url?"
                ) from cause
            wait = min(backoff_wait(attempt, self.backoff_initial, self.backoff_max), remaining)
            log.warning(
                "environment at %s: %s %s failed (%s); retry %d in %.1fs, giving up in %.0fs",
                self.base_url, method, path, _short(cause), attempt, wait, remaining,
            )  # fmt: skip
            self.sleep(wait)
        if response.status_code >= 400:
            raise EnvRequestError(response.status_code, f"{method} {path}: {response.text[:500]}")
        return response

    def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        """One attempt. A body posted by a client `from_url` built skips `httpx.Client`'s per-request
        work (merging the URL and default headers, cookies, auth and redirect flows, event hooks: about
        0.5 ms a request, as long as scoring half a batch) and goes to the client's own transport, so
        replicas, failover and errors are the same; anything else goes through `self.http.request`."""
        direct = self._direct
        if direct is None or direct[0] is not self.http or kwargs.keys() - {"headers"} != {"content"}:
            return self.http.request(method, path, **kwargs)
        http, transport = direct
        base = http.base_url
        url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + path.encode("ascii"))
        request = httpx.Request(
            method,
            url,
            content=kwargs.get("content"),
            headers=kwargs.get("headers"),
            extensions={"timeout": http.timeout.as_dict()},
        )
        response = transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        _httpx_log.info(  # the line httpx.Client logs for every request
            'HTTP Request: %s %s "%s %d %s"', method, url, response.http_version,
            response.status_code, response.reason_phrase,
        )  # fmt: skip
        return response

    def health(self) -> HealthResponse:
        return HealthResponse.model_validate_json(self._request("GET", "/health").content)

    def wait_until_healthy(self, timeout: float = 60.0, interval: float = 0.5) -> HealthResponse:
        """Poll `/health` until it answers, or raise `EnvUnavailableError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            try:
                # A hung server must not block one poll for the client's full read timeout.
                extra: dict[str, Any] = {"timeout": 5.0} if isinstance(self.http, httpx.Client) else {}
                response = self.http.request("GET", "/health", **self._auth(extra))
                if response.status_code == 200:
                    return HealthResponse.model_validate_json(response.content)
                last = RuntimeError(f"/health answered {response.status_code}")
            except _TRANSPORT_ERRORS as e:
                last = e
            if time.monotonic() >= deadline:
                raise EnvUnavailableError(
                    f"environment at {self.base_url} not healthy after {timeout:.0f}s ({last!r}). "
                    "Start it with `sched-env serve` or check --env_url."
                )
            time.sleep(interval)

    def info(self) -> InfoResponse:
        return InfoResponse.model_validate_json(self._request("GET", "/v1/info").content)

    def problems(
        self,
        split: str = "train",
        offset: int = 0,
        limit: int = 100,
        difficulty: str | None = None,
        prompt_style: str = "default",
    ) -> ProblemList:
        params: dict[str, Any] = {"split": split, "offset": offset, "limit": limit}
        if difficulty is not None:
            params["difficulty"] = difficulty
        if prompt_style != "default":
            params["prompt_style"] = prompt_style
        return ProblemList.model_validate_json(self._request("GET", "/v1/problems", params=params).content)

    def all_problems(
        self,
        split: str = "train",
        limit: int | None = None,
        difficulty: str | None = None,
        page_size: int = 500,
        prompt_style: str = "default",
        offset: int = 0,
    ) -> list[ProblemWithPrompt]:
        """Every problem of a split from `offset` on (or the next `limit`), fetched page by page."""
        items: list[ProblemWithPrompt] = []
        while limit is None or len(items) < limit:
            want = page_size if limit is None else min(page_size, limit - len(items))
            page = self.problems(split, offset, want, difficulty, prompt_style)
            items.extend(page.items)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        return items

    def problem(self, problem_id: str) -> ProblemWithPrompt:
        return ProblemWithPrompt.model_validate_json(
            self._request("GET", f"/v1/problems/{quote(problem_id, safe='')}").content
        )

    def solve(
        self, problem: ProblemSpec, trace: bool = False, trace_style: TraceStyle = "sorted"
    ) -> SolveResponse:
        """The optimum; `trace=True` writes its `completion` with the step-by-step reasoning trace
        (`trace_style`: `sorted`, `by_hour` or `checked`, contract section 2)."""
        spec = ProblemSpec(events=problem.events, priorities=problem.priorities)
        body = SolveRequest(problem=spec, trace=trace, trace_style=trace_style).model_dump(mode="json")
        return SolveResponse.model_validate_json(self._request("POST", "/v1/solve", json=body).content)

    def score(
        self, items: Sequence[ScoreItem], profile: str = "default", return_events: bool = False
    ) -> ScoreResponse:
        """Score a batch in one request; results come back in order. `return_events`: each result also
        carries the events the service read from its completion (`ScoreResult.events`)."""
        req = ScoreRequest(profile=profile, items=list(items), return_events=return_events)
        content = score_request_json(req)  # as before unless asked
        response = self._request("POST", "/v1/score", content=content, headers=_JSON_CONTENT)
        return ScoreResponse.model_validate_json(response.content)

    def rewards(self, items: Sequence[ScoreItem], profile: str = "default") -> RewardResponse:
        """`score`'s request, answered with what a reward function reads: each result's reward,
        components, verdict, score ratio, optimum and error (`trainer.client.rewards`), decoded in a
        fifth of the time of the whole `ScoreResponse`. The GRPO reward path (`EnvScorer`) uses it."""
        req = ScoreRequest(profile=profile, items=list(items))
        response = self._request("POST", "/v1/score", content=score_request_json(req), headers=_JSON_CONTENT)
        return decode_rewards(response.content)

    def prompt(self, problem: ProblemSpec, prompt_style: str = "default") -> list[ChatMessage]:
        """The service's chat prompt for an inline problem (`POST /v1/prompt`), e.g. one read from a file."""
        spec = ProblemSpec(events=problem.events, priorities=problem.priorities)
        body = PromptRequest.model_validate({"problem": spec, "prompt_style": prompt_style}).model_dump(
            mode="json"
        )
        response = self._request("POST", "/v1/prompt", json=body)
        return PromptResponse.model_validate_json(response.content).prompt

    # -- curriculum sessions (docs/contract.md section 7) ----------------------------------------------

    def curriculum_start(self, config: CurriculumConfig | None = None) -> CurriculumStatus:
        """A new curriculum session (`POST /v1/curriculum`)."""
        body = (config or CurriculumConfig()).model_dump(mode="json", exclude_defaults=True)
        return CurriculumStatus.model_validate_json(
            self._request("POST", "/v1/curriculum", json=body).content
        )

    def curriculum_next(self, session_id: str, n: int) -> NextResponse:
        """The session's next `n` problems, with their prompts."""
        path = f"/v1/curriculum/{quote(session_id, safe='')}/next"
        return NextResponse.model_validate_json(self._request("POST", path, json={"n": n}).content)

    def curriculum_report(self, session_id: str, groups: Sequence[GroupReport]) -> CurriculumStatus:
        """Report each served problem's group of rewards; the session may move a rung."""
        path = f"/v1/curriculum/{quote(session_id, safe='')}/report"
        body = ReportRequest(groups=list(groups)).model_dump(mode="json")
        return CurriculumStatus.model_validate_json(self._request("POST", path, json=body).content)

    def curriculum_restore(self, state: CurriculumState) -> CurriculumStatus:
        """Put a session back (`PUT`), e.g. on a service restarted without `SCHED_CURRICULUM_DIR`."""
        path = f"/v1/curriculum/{quote(state.session_id, safe='')}"
        body = state.model_dump(mode="json")
        return CurriculumStatus.model_validate_json(self._request("PUT", path, json=body).content)

    # -- tool episodes (docs/contract.md section 8) ----------------------------------------------------
    # A check or submit names itself with a fresh `call_id`, which its retries repeat: a retry after a lost
    # answer gets the first attempt's answer (the check is not spent twice; the submit finds its own
    # result, not an ended episode).

    def episode_start(self, start: EpisodeStart | None = None) -> EpisodeStarted:
        """A new check-and-submit episode (`POST /v1/episodes`)."""
        body = (start or EpisodeStart()).model_dump(mode="json", exclude_defaults=True)
        return EpisodeStarted.model_validate_json(self._request("POST", "/v1/episodes", json=body).content)

    def episode_check(self, episode_id: str, answer: str) -> CheckResult:
        """Check a draft, spending one check (`EnvRequestError` 409 when none is left)."""
        path = f"/v1/episodes/{quote(episode_id, safe='')}/check"
        body = {"answer": answer, "call_id": uuid.uuid4().hex}
        return CheckResult.model_validate_json(self._request("POST", path, json=body).content)

    def episode_submit(self, episode_id: str, answer: str) -> SubmitResult:
        """Score the answer and end the episode."""
        path = f"/v1/episodes/{quote(episode_id, safe='')}/submit"
        body = {"answer": answer, "call_id": uuid.uuid4().hex}
        return SubmitResult.model_validate_json(self._request("POST", path, json=body).content)

    def episode_state(self, episode_id: str) -> EpisodeState:
        path = f"/v1/episodes/{quote(episode_id, safe='')}"
        return EpisodeState.model_validate_json(self._request("GET", path).content)


def score_request_json(req: ScoreRequest) -> bytes:
    """The body `EnvClient.score` posts: `req.model_dump_json(exclude_none=True, exclude_defaults=True)`,
    byte for byte, in a third of the time or less.

    pydantic's serializer spends about 6 µs on each inline problem, 0.4–0.6 ms on a batch of 64: longer
    than the service takes to score the batch. This writes the same JSON with orjson from the fields of the
    validated models (so it writes nothing `ScoreRequest` would refuse), field order and omitted defaults
    included; `tests/trainer/client/test_env_client.py` checks the two agree on generated requests and that
    the models have no field this does not write. What orjson refuses goes to pydantic."""
    items: list[dict[str, Any]] = []
    for item in req.items:
        out: dict[str, Any] = {}
        if item.problem_id is not None:
            out["problem_id"] = item.problem_id
        if item.problem is not None:
            # an `Event`'s instance dict is its three fields in order (it has no extras: `extra="forbid"`)
            events = [e.__dict__ if type(e) is Event else _event_fields(e) for e in item.problem.events]
            spec: dict[str, Any] = {"events": events}
            if item.problem.priorities:
                spec["priorities"] = item.problem.priorities
            out["problem"] = spec
        out["completion"] = item.completion
        items.append(out)
    body: dict[str, Any] = {"profile": req.profile} if req.profile != "default" else {}
    body["items"] = items
    if req.return_events:
        body["return_events"] = True
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return req.model_dump_json(exclude_none=True, exclude_defaults=True).encode()


def _event_fields(e: Event) -> dict[str, Any]:
    """An event of a subclass of `Event`: its declared fields only, as pydantic writes it."""
    return {"name": e.name, "start": e.start, "end": e.end}


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 120 else text[:117] + "..."


def _reconnect(url: str, timeout: httpx.Timeout, retry: dict[str, Any]) -> EnvClient:
    """Unpickle an `EnvClient`: a fresh connection to every replica it knew."""
    return EnvClient.from_url(url, timeout=timeout, **retry)
