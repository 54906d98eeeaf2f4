"""Client of the environment service: the only way the trainer side talks to `env_server`.

The HTTP client is injected (`EnvClient(httpx.Client(base_url=...))`), so tests pass a Starlette
`TestClient(app)` (an `httpx`-style client; Starlette builds it on `httpx2`) and run client → HTTP →
server in one process. Every call has a timeout; connection
errors and 5xx responses are retried with exponential backoff (tenacity); responses are parsed with the
`shared_schema` models.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from shared_schema import (
    ChatMessage,
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
from trainer.transport import RoundRobinTransport, split_urls

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)

_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError,)
try:  # Starlette's TestClient is built on httpx2
    import httpx2

    _TRANSPORT_ERRORS += (httpx2.TransportError,)
except ImportError:  # pragma: no cover
    pass


class HTTPClient(Protocol):
    """What EnvClient needs of its HTTP client: `httpx.Client` and Starlette's `TestClient` both fit."""

    base_url: Any

    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...

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


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (*_TRANSPORT_ERRORS, _ServerError))


class EnvClient:
    """Typed calls to the environment's HTTP API with timeouts and retries."""

    def __init__(
        self,
        http: HTTPClient,
        *,
        max_attempts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        url: str | None = None,
    ) -> None:
        self.http = http
        self.url = url or str(http.base_url)  # as given to from_url: every replica, for logs and pickling
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    @classmethod
    def from_url(cls, url: str, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT, **kwargs: Any) -> EnvClient:
        """A client for one URL, or for replicas given as a comma-separated list (spread round-robin,
        failing over when one is down: `trainer.transport.RoundRobinTransport`)."""
        urls = split_urls(url)
        if len(urls) > 1:
            transport = RoundRobinTransport(urls)
            http = httpx.Client(base_url=urls[0], timeout=timeout, transport=transport)
            return cls(http, url=",".join(urls), **kwargs)
        return cls(httpx.Client(base_url=url.rstrip("/"), timeout=timeout), url=url.rstrip("/"), **kwargs)

    def retry_settings(self) -> dict[str, float]:
        """The keyword arguments that rebuild this client's retry policy (used when pickling)."""
        return {
            "max_attempts": self.max_attempts,
            "backoff_initial": self.backoff_initial,
            "backoff_max": self.backoff_max,
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

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            retry=retry_if_exception(_retryable),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.http.request(method, path, **kwargs)
                    if response.status_code >= 500:
                        raise _ServerError(response.status_code, response.text)
        except RetryError as e:
            cause = e.last_attempt.exception()
            raise EnvUnavailableError(
                f"environment at {self.base_url} failed {self.max_attempts} times on {method} {path}: "
                f"{cause!r}. Is `sched-env serve` running and reachable at --env_url?"
            ) from cause
        if response.status_code >= 400:
            raise EnvRequestError(response.status_code, f"{method} {path}: {response.text[:500]}")
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
                extra = {"timeout": 5.0} if isinstance(self.http, httpx.Client) else {}
                response = self.http.request("GET", "/health", **extra)
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

    def solve(self, problem: ProblemSpec, trace: bool = False) -> SolveResponse:
        """The optimum; `trace=True` writes its `completion` with the step-by-step reasoning trace."""
        spec = ProblemSpec(events=problem.events, priorities=problem.priorities)
        body = SolveRequest(problem=spec, trace=trace).model_dump(mode="json")
        return SolveResponse.model_validate_json(self._request("POST", "/v1/solve", json=body).content)

    def score(self, items: Sequence[ScoreItem], profile: str = "default") -> ScoreResponse:
        """Score a batch in one request; results come back in order."""
        req = ScoreRequest(profile=profile, items=list(items))
        content = req.model_dump_json(exclude_none=True)
        response = self._request(
            "POST", "/v1/score", content=content, headers={"content-type": "application/json"}
        )
        return ScoreResponse.model_validate_json(response.content)

    def prompt(self, problem: ProblemSpec, prompt_style: str = "default") -> list[ChatMessage]:
        """The service's chat prompt for an inline problem (`POST /v1/prompt`), e.g. one read from a file."""
        spec = ProblemSpec(events=problem.events, priorities=problem.priorities)
        body = PromptRequest.model_validate({"problem": spec, "prompt_style": prompt_style}).model_dump(
            mode="json"
        )
        response = self._request("POST", "/v1/prompt", json=body)
        return PromptResponse.model_validate_json(response.content).prompt


def _reconnect(url: str, timeout: httpx.Timeout, retry: dict[str, float]) -> EnvClient:
    """Unpickle an `EnvClient`: a fresh connection to every replica it knew."""
    return EnvClient.from_url(url, timeout=timeout, **retry)
