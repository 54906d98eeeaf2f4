"""How `sched-env serve` runs uvicorn: connection limits that the app itself cannot set.

- WebSocket frames are limited to `max_body_bytes`, like HTTP bodies (uvicorn's default is 16 MiB).
- Idle keep-alive connections close after `keep_alive_timeout` seconds.
- A request's headers must arrive within `header_timeout` seconds of its first byte (or of the connection
  opening): uvicorn alone waits forever for headers that never finish, so a few slow clients could hold
  every connection open ("slowloris"). `HeaderTimeoutProtocol` adds that timer to uvicorn's protocol.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from env_server.settings import Settings


@cache
def _header_timeout() -> float:
    return Settings().header_timeout  # each worker process reads its settings once


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers do not finish in time."""

    header_timeout: float | None = None  # None: from Settings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True

    def _arm(self) -> None:
        if self._header_timer is None and self._awaiting_headers:
            timeout = self.header_timeout or _header_timeout()
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
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._arm()  # a kept-alive connection starts its next request's clock at its first byte
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._awaiting_headers = True  # the keep-alive timer covers the idle time until the next byte
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` beyond the app, host, port and workers."""
    return {
        "http": HeaderTimeoutProtocol,
        "ws_max_size": settings.max_body_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "log_level": settings.log_level,
        "access_log": False,
    }
