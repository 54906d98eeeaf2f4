"""Spread requests over several environment replicas, and survive losing one: an httpx transport.

The service is stateless (every replica with the same settings serves the same problems under the same
ids), so any request can go to any replica. `RoundRobinTransport` rewrites each request to the next replica
in turn; on a connection error, a timeout or a 5xx it marks that replica down for `cooldown` seconds and
sends the same request to the next one. Only when every replica fails does the error reach the caller,
whose own retries (`EnvClient`'s backoff) take over. Being a transport, it leaves `EnvClient` unchanged:
`EnvClient.from_url("http://a:8000,http://b:8000")` builds an `httpx.Client` with it.

Every request of this API is safe to resend (`/v1/score` is a pure function of its body).

Why not the standard way, a load balancer in front of the replicas: there often is none between a
training job and the environment machines it was given (a cluster's nodes, a second GPU box), and
httpx can name only one host per client. Where a balancer exists, give its one URL and this transport is
not used.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence

import httpx


class AllReplicasFailedError(httpx.TransportError):
    """Every replica failed this request; raised as a transport error so callers' retries apply."""


class RoundRobinTransport(httpx.BaseTransport):
    """Rotate requests across `urls` (base URLs, optionally with a path prefix); fail over on errors."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        cooldown: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not urls:
            raise ValueError("RoundRobinTransport needs at least one URL")
        self.replicas = [httpx.URL(u.strip().rstrip("/")) for u in urls]
        self.cooldown = cooldown
        self.served: Counter[str] = Counter()  # replica URL → requests it answered (for logs and tests)
        self._inner = transport or httpx.HTTPTransport()
        self._down_until = [0.0] * len(self.replicas)
        self._next = 0
        self._lock = threading.Lock()

    def _order(self) -> list[int]:
        """Replica indices to try for one request: live ones in rotation, then those cooling down."""
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.replicas)
            now = time.monotonic()
            ring = [(start + k) % len(self.replicas) for k in range(len(self.replicas))]
            live = [i for i in ring if self._down_until[i] <= now]
            return live + [i for i in ring if self._down_until[i] > now]

    def _mark_down(self, i: int) -> None:
        with self._lock:
            self._down_until[i] = time.monotonic() + self.cooldown

    def _target(self, request: httpx.Request, replica: httpx.URL) -> httpx.Request:
        prefix = replica.raw_path.rstrip(b"/")
        url = request.url.copy_with(
            scheme=replica.scheme,
            host=replica.host,
            port=replica.port,
            raw_path=prefix + request.url.raw_path,
        )
        headers = request.headers.copy()
        headers["host"] = url.netloc.decode("ascii")
        return httpx.Request(
            request.method, url, headers=headers, stream=request.stream, extensions=request.extensions
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        last_error: Exception | None = None
        last_response: httpx.Response | None = None
        for i in self._order():
            if last_response is not None:
                last_response.close()
                last_response = None
            try:
                response = self._inner.handle_request(self._target(request, self.replicas[i]))
            except httpx.TransportError as e:
                self._mark_down(i)
                last_error = e
                continue
            if response.status_code >= 500:
                self._mark_down(i)
                last_response = response
                continue
            self.served[str(self.replicas[i])] += 1
            return response
        if last_response is not None:
            return last_response  # every replica answered 5xx: let the caller see (and retry) it
        raise AllReplicasFailedError(
            f"all {len(self.replicas)} environment replicas failed; last error: {last_error!r}"
        )

    def close(self) -> None:
        self._inner.close()


def split_urls(url: str) -> list[str]:
    """`"http://a:8000, http://b:8000"` → `["http://a:8000", "http://b:8000"]` (empty parts dropped)."""
    return [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
