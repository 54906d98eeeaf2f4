"""Answers leave whole (`env_server.runtime.serving.WholeResponses`): a response head that promises a body is
sent in the same write as the body, so a replica killed mid-answer never leaves its balancer holding a head
it can neither complete nor retry elsewhere. The transport on its own, then the service's own protocol
answering real requests in-process, its writes counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from env_server.runtime.serving import HeaderTimeoutProtocol, WholeResponses
from env_server.service.app import create_app

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n"


class Recorder(asyncio.Transport):
    """A transport that records every write and whether it was closed or aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None: ...


@pytest.mark.parametrize(
    ("data", "held"),
    [
        (HEAD, True),
        (HEAD.replace(b"13", b"0"), False),  # nothing will follow
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", False),  # streamed: the head goes at once
        (b"HTTP/1.1 100 Continue\r\n\r\n", False),
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n", False),
        (HEAD + b'{"ok": true}\n', False),  # a whole answer in one write (uvicorn's own 400, 503)
        (b'{"ok": true}\n', False),  # a body
    ],
)
def test_only_a_head_that_promises_a_body_is_held(data: bytes, held: bool) -> None:
    assert WholeResponses.awaits_body(data) is held
    transport = Recorder()
    WholeResponses(transport).write(data)
    assert transport.writes == ([] if held else [data])


def test_a_held_head_leaves_with_the_body_in_one_write() -> None:
    transport = Recorder()
    whole = WholeResponses(transport)
    whole.write(HEAD)
    whole.write(memoryview(b'{"ok": true}\n'))
    whole.write(HEAD)
    whole.write(b"")  # an empty body message still sends what is held
    assert transport.writes == [HEAD + b'{"ok": true}\n', HEAD]


def test_close_sends_a_held_head_and_abort_drops_it() -> None:
    transport = Recorder()
    whole = WholeResponses(transport)
    whole.write(HEAD)
    whole.close()
    assert transport.writes == [HEAD] and transport.closed
    transport = Recorder()
    whole = WholeResponses(transport)
    whole.write(HEAD)
    whole.abort()
    assert transport.writes == [] and transport.aborted
    assert whole.get_extra_info("peername") == ("127.0.0.1", 50000)  # everything else is the transport's


async def serve(app: Any, requests: bytes) -> Recorder:
    """The service's protocol on a recording transport: feed the requests, wait until every answer is out."""
    config = uvicorn.Config(app, http=HeaderTimeoutProtocol, lifespan="off", log_level="warning")
    config.load()
    transport = Recorder()
    protocol = HeaderTimeoutProtocol(config, ServerState(), app_state={})
    protocol.connection_made(transport)
    protocol.data_received(requests)
    for _ in range(500):
        await asyncio.sleep(0.01)
        if transport.closed:
            break
    protocol.connection_lost(None)
    return transport


def request(method: str, path: str, body: bytes = b"", close: bool = False) -> bytes:
    headers = f"{method} {path} HTTP/1.1\r\nhost: env\r\ncontent-length: {len(body)}\r\n"
    headers += "content-type: application/json\r\n" if body else ""
    headers += "connection: close\r\n" if close else ""
    return headers.encode() + b"\r\n" + body


def answers(writes: list[bytes]) -> list[tuple[int, dict[str, Any]]]:
    """Each write parsed as one whole answer: its status and JSON body (the body length checked)."""
    out = []
    for data in writes:
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        length = int(next(h for h in lines if h.lower().startswith("content-length:")).split(":")[1])
        assert len(body) == length, data[:300]
        out.append((int(lines[0].split()[1]), json.loads(body)))
    return out


def test_the_service_writes_each_answer_whole() -> None:
    """The real app: a problem and its solution on one connection each, then three kept-alive requests on
    one (health, a score, a 404): every answer is one write holding its status line, head and whole body."""
    app = create_app()

    async def run() -> Recorder:
        first = await serve(app, request("GET", "/v1/problems/test-000000", close=True))
        ((status, problem),) = answers(first.writes)
        assert status == 200
        spec = json.dumps({"problem": {k: problem[k] for k in ("events", "priorities")}}).encode()
        second = await serve(app, request("POST", "/v1/solve", spec, close=True))
        ((status, gold),) = answers(second.writes)
        assert status == 200
        score = json.dumps(
            {"items": [{"problem_id": problem["id"], "completion": gold["completion"]}]}
        ).encode()
        return await serve(
            app,
            request("GET", "/health")
            + request("POST", "/v1/score", score)
            + request("GET", "/nope", close=True),
        )

    transport = asyncio.run(run())
    got = answers(transport.writes)
    assert [status for status, _ in got] == [200, 200, 404]
    assert got[1][1]["results"][0]["reward"] == 100.0


def test_a_streamed_answer_sends_its_head_before_the_body() -> None:
    """Held only when a body must follow: a streaming answer's head is not kept back until its first chunk."""
    gate = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        await gate.wait()
        yield b"late"

    async def stream(_: Request) -> Response:
        return StreamingResponse(chunks())

    async def whole(_: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/stream", stream), Route("/whole", whole)])

    async def run() -> tuple[list[bytes], Recorder]:
        config = uvicorn.Config(app, http=HeaderTimeoutProtocol, lifespan="off", log_level="warning")
        config.load()
        transport = Recorder()
        protocol = HeaderTimeoutProtocol(config, ServerState(), app_state={})
        protocol.connection_made(transport)
        protocol.data_received(request("GET", "/stream"))
        await asyncio.sleep(0.05)
        before = list(transport.writes)
        gate.set()
        await asyncio.sleep(0.05)
        protocol.data_received(request("GET", "/whole", close=True))
        await asyncio.sleep(0.05)
        protocol.connection_lost(None)
        return before, transport

    before, transport = asyncio.run(run())
    assert (
        len(before) == 1
        and before[0].startswith(b"HTTP/1.1 200")
        and b"transfer-encoding: chunked" in before[0]
    )
    assert transport.writes[1:3] == [b"4\r\nlate\r\n", b"0\r\n\r\n"]
    assert answers(transport.writes[3:]) == [(200, {"ok": True})]
