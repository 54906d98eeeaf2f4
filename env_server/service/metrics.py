"""Operations: Prometheus metrics at `/metrics`, a request id on every response, an access log.

`Observability` is one pure-ASGI middleware (no per-request Python objects beyond a few locals): it
takes the caller's `X-Request-ID` when it is a sane token (else makes one), returns it on the response,
times the request, counts it by method, route *template* (`/v1/problems/{problem_id}`, never the raw
path, so the label set stays bounded) and status, and writes one access-log line. Scoring metrics are
recorded once per batch by `ServiceMetrics.record_batch`.

Several uvicorn workers: each worker is a process with its own counters. `sched-env serve --workers N`
(N > 1) points prometheus_client's multiprocess mode at a fresh directory (`PROMETHEUS_MULTIPROC_DIR`,
the library's own variable, set before the workers start) and `/metrics` then sums every worker's
files, so whichever worker answers the scrape reports the whole service. See docs/operations.md.

The metrics themselves are prometheus_client's; only the middleware is ours, because one pass over each
request also sets its id and writes its access-log line, which an instrumentation library would leave to
two more middlewares. It costs 7–9 µs per request (`bench/metrics_overhead.py`; docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from env_server.service.settings import Settings

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
UNMATCHED = "unmatched"  # route label of requests no route answered (404s): a bounded label set
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

access_log = logging.getLogger("env_server.access")


def multiprocess_dir() -> str | None:
    """prometheus_client's multiprocess directory, when the service runs several workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServiceMetrics:
    """The service's metrics, in a registry of their own (several apps can live in one test process)."""

    def __init__(self, reward_version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sched_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "sched_http_request_duration_seconds",
            "Time from request to the end of the response body.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "sched_scored_items",
            "Completions scored, by profile and verdict.",
            ["profile", "verdict"],
            registry=r,
        )
        self.item_errors = Counter(
            "sched_score_item_errors",
            "Items of a scoring batch that could not be scored (e.g. unknown problem_id).",
            ["profile"],
            registry=r,
        )
        self.batch_size = Histogram(
            "sched_score_batch_size",
            "Items per /v1/score request.",
            ["profile"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        info = Gauge(
            "sched_build_info", "Constant 1, labelled with the reward version.", ["reward_version"],
            registry=r, multiprocess_mode="max",
        )  # fmt: skip
        info.labels(reward_version).set(1)
        # Labelled children, looked up once: `labels()` takes a lock and builds a tuple on every call.
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def record_batch(self, profile: str, verdicts: Iterable[str | None]) -> None:
        """One scoring batch: its size, the count of each verdict, and the items that failed (None)."""
        tally = Tally(verdicts)
        self.child(self.batch_size, profile).observe(sum(tally.values()))
        for verdict, count in tally.items():
            self.child(self.items, profile, verdict or "error").inc(count)
        if tally.get(None):
            self.child(self.item_errors, profile).inc(tally[None])

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's registry, or every worker's in multiprocess mode."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return UNMATCHED


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class Observability:
    """ASGI middleware: request id, per-route request count and latency, one access-log line."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, log_requests: bool = True) -> None:
        self.app, self.metrics, self.log_requests = app, metrics, log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route, method = _route_label(scope), scope["method"]
            self.metrics.child(self.metrics.requests, method, route, str(status)).inc()
            self.metrics.child(self.metrics.latency, method, route).observe(elapsed)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1fms",
                    method,
                    scope["path"],
                    status,
                    elapsed * 1000,
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )


_ACCESS_FIELDS = ("request_id", "method", "path", "route", "status", "duration_ms", "client")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and the access fields when present."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime(datefmt or "%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _ACCESS_FIELDS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger [request id] message`."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        prefix = f"[{rid}] " if rid else ""
        record.message = record.getMessage()
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name} {prefix}{record.message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_HANDLER_NAME = "sched-env"


def configure_logging(settings: Settings) -> None:
    """Give the `env_server` loggers one stderr handler, text or JSON (`SCHED_LOG_FORMAT`); idempotent."""
    logger = logging.getLogger("env_server")
    logger.setLevel(settings.log_level.upper())
    formatter: logging.Formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()
    for handler in logger.handlers:
        if handler.get_name() == _HANDLER_NAME:
            handler.setFormatter(formatter)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.propagate = False


def install(app: FastAPI, settings: Settings, reward_version: str) -> ServiceMetrics:
    """Add the middleware and the `/metrics` route to `app`; returns the metrics for the scoring path."""
    configure_logging(settings)
    metrics = ServiceMetrics(reward_version)
    app.add_middleware(Observability, metrics=metrics, log_requests=settings.access_log)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics
