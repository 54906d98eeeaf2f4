"""How `sched-env serve` runs uvicorn: connection limits that the app itself cannot set.

- WebSocket frames are limited to `max_body_bytes`, like HTTP bodies (uvicorn's default is 16 MiB).
- Idle keep-alive connections close after `keep_alive_timeout` seconds.
- A connection carries at most `keep_alive_requests` requests (0, the default: no limit); the last one's
  answer says `Connection: close` and the client reconnects, as with nginx's `keepalive_requests`: for
  long-lived clients behind a connection-level balancer. It does not balance the workers of one service
  (docs/security.md, docs/history.md "Sixth pass").
- Several workers: each runs on `env_server.runtime.balance`'s event loop, which balances connections
  between them (least connections at accept) unless `balance_connections` is off.
- A request's headers must arrive within `header_timeout` seconds of its first byte (or of the connection
  opening): uvicorn alone waits forever for headers that never finish, so a few slow clients could hold
  every connection open ("slowloris"). `HeaderTimeoutProtocol` adds that timer to uvicorn's protocol.
- A response with a body of known length leaves in one write, head and body together (`WholeResponses`).
  uvicorn writes the head as soon as the app starts its answer and the body in a later write; a replica
  killed between the two leaves its balancer holding a head with no body, which it can neither complete
  nor retry on another replica (nginx retries only before a byte has reached the client). Measured once in
  the compose load test: 1 call in 55,032 lost to a `kill -9` landing there. In one write, a kill comes
  before the answer (the balancer retries it) or after it (the kernel still delivers it).
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from env_server.service.settings import Settings


@cache
def _settings() -> Settings:
    return Settings()  # each worker process reads its settings once


class WholeResponses:
    """A transport that holds a response head announcing a body (`content-length` above 0) until the
    body's first write, and sends the two in one write. Everything else passes through at once: chunked
    and streamed answers, `100 Continue`, a WebSocket upgrade (no `content-length`), and whole answers
    uvicorn writes itself (their body is in the same bytes, so the data does not end at the head).
    `close()` sends a held head first; `abort()` drops it, as the transport drops its buffer."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    @staticmethod
    def awaits_body(data: bytes) -> bool:
        """A response head alone (uvicorn lower-cases header names) that promises a body."""
        if not (data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n"):
            return False
        at = data.find(b"\r\ncontent-length: ")
        if at < 0:
            return False
        value = data[at + 18 : data.index(b"\r\n", at + 2)].strip()
        return value.isdigit() and int(value) > 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head is not None:
            data, self._head = self._head + bytes(data), None
        elif data[:5] == b"HTTP/" and self.awaits_body(bytes(data)):  # a body is never copied to check
            self._head = bytes(data)
            return
        if data:
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        if self._head is not None:
            self._transport.write(self._head)
            self._head = None
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, set_protocol, ...
        return getattr(self._transport, name)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers do not finish in time,
    and one that has carried `keep_alive_requests` requests once it has answered the last of them; its
    answers leave whole (`WholeResponses`)."""

    header_timeout: float | None = None  # None: from Settings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._requests = 0
        self._request_limit = _settings().keep_alive_requests  # 0: no limit

    def _arm(self) -> None:
        if self._header_timer is None and self._awaiting_headers:
            timeout = self.header_timeout or _settings().header_timeout
            self._header_timer = self.loop.call_later(timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        idle = (self.cycle is None or self.cycle.response_complete) and not self.pipeline
        if self._awaiting_headers and idle and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # flow control and addresses from the socket's own transport
        self.transport = WholeResponses(transport)  # type: ignore[assignment]  # what each answer writes to
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._arm()  # a kept-alive connection starts its next request's clock at its first byte
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm()
        cycle = self.cycle
        super().on_headers_complete()
        if self.cycle is not cycle and self._request_limit:  # a new request (not a WebSocket upgrade)
            self._requests += 1
            if self._requests >= self._request_limit:
                # uvicorn then writes `connection: close` and closes the transport after the answer
                self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        self._awaiting_headers = True  # the keep-alive timer covers the idle time until the next byte
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` beyond the app, host, port and workers."""
    balanced = (
        {"loop": "env_server.runtime.balance:new_event_loop"}
        if settings.workers > 1 and settings.balance_connections
        else {}
    )
    return {
        **balanced,
        "http": HeaderTimeoutProtocol,
        "ws_max_size": settings.max_body_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "log_level": settings.log_level,
        "access_log": False,
    }
