"""`openai` backend: any OpenAI-compatible chat endpoint (vLLM's or llama.cpp's server, a hosted model).

Requests run concurrently under a semaphore (`concurrency`), each with a timeout; connection errors,
timeouts, 429 and 5xx answers are retried with exponential backoff (tenacity). A request that still
fails becomes an empty completion with its `error` recorded, so one bad request does not lose a whole
run: the report counts generation errors separately.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from trainer.evaluation.dataset import EvalProblem
from trainer.evaluation.generation import Generation, Progress, SamplingConfig

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (httpx.TransportError, _Retryable))


class OpenAIBackend:
    """`POST {base_url}/chat/completions` once per problem, `concurrency` at a time."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        sampling: SamplingConfig,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff_initial: float = 0.5,
    ) -> None:
        self.base_url, self.model, self.sampling = base_url.rstrip("/"), model, sampling
        self.api_key, self.concurrency, self.timeout = api_key, max(1, concurrency), timeout
        self.max_retries, self.backoff_initial = max(1, max_retries), backoff_initial

    def _body(self, problem: EvalProblem) -> dict[str, Any]:
        s = self.sampling
        return {
            "model": self.model,
            "messages": problem.messages(),
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": s.seed,
        }

    async def _one(self, http: httpx.AsyncClient, problem: EvalProblem) -> Generation:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries),
            wait=wait_exponential(multiplier=self.backoff_initial, max=10.0),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                response = await http.post("/chat/completions", json=self._body(problem))
                if response.status_code in RETRY_STATUS:
                    raise _Retryable(response.status_code, response.text)
                if response.status_code >= 400:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
                choice = response.json()["choices"][0]
                text = (choice.get("message") or {}).get("content") or ""
                return Generation(text, choice.get("finish_reason"))
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _all(self, problems: Sequence[EvalProblem], progress: Progress | None) -> list[Generation]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        gate = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=self.timeout, limits=limits
        ) as http:

            async def guarded(p: EvalProblem) -> Generation:
                async with gate:
                    try:
                        g = await self._one(http, p)
                    except Exception as e:  # recorded per row; the run goes on
                        g = Generation("", None, f"{type(e).__name__}: {e}"[:500])
                if progress is not None:
                    progress(1)
                return g

            return list(await asyncio.gather(*(guarded(p) for p in problems)))

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        return asyncio.run(self._all(problems, progress))
