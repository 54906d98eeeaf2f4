"""What the service's metrics cost: the request middleware per request, and `record_batch` per batch.

    .venv/bin/python bench/metrics_overhead.py

Prints microseconds, measured in this run against a bare ASGI app (ratios, not absolute promises).
"""

from __future__ import annotations

import asyncio
import time
import timeit
from typing import Any

from env_server.service.metrics import Observability, ServiceMetrics

N = 20_000


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x"})


async def _recv() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_: Any) -> None:
    return None


def per_request(app: Any) -> float:
    scope = {"type": "http", "method": "POST", "path": "/v1/score", "headers": []}

    async def loop() -> None:
        for _ in range(N):
            await app(dict(scope), _recv, _send)

    started = time.perf_counter()
    asyncio.run(loop())
    return (time.perf_counter() - started) / N * 1e6


def main() -> None:
    metrics = ServiceMetrics("bench")
    for size in (1, 64, 512):
        verdicts = (["valid", "overlap", "format_error", "unknown_event"] * size)[:size]
        t = timeit.timeit(lambda v=verdicts: metrics.record_batch("default", v), number=N) / N * 1e6
        print(f"record_batch, {size:>3} items: {t:6.1f} us per batch")
    bare, observed = per_request(_app), per_request(Observability(_app, metrics, log_requests=False))
    print(f"request middleware: {observed - bare:6.1f} us per request (bare app {bare:.1f} us)")


if __name__ == "__main__":
    main()
