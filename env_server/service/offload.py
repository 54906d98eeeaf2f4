"""Requests with a large body are handled off the event loop, so one worker keeps answering `/health`.

FastAPI reads a JSON body with the standard library, validates it with pydantic and runs an `async` route,
all on the event loop. For a legal 8 MB body that is hundreds of milliseconds in which the worker answers
nothing else: an 8 MB `/get_reward` held `/health` for 0.32–0.71 s on one worker (docs/benchmarks.md).
`OffloadLargeBodies` runs the rest of the app for such a request on a worker thread, in an event loop of
its own, with the cyclic garbage collector paused (`collector_paused`: its full collections over a large
batch's results held the interpreter for 0.1 s at a time), and sends the response it wrote from the main
loop.

`/v1/score` is not taken here: `ScoreEndpoint` does its large-body work on a worker thread itself.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from env_server.scoring.batch import collector_paused
from env_server.service.score_api import read_body, replay_body


class OffloadLargeBodies:
    """ASGI middleware: a request whose body is over `min_bytes` goes through `app` on a worker thread.

    It sits inside `BodyLimit` (which has already read the body and replays it as one message) and outside
    the routes. The response is collected whole and then sent, which is what the app's routes write
    anyway (no route that takes a body streams its answer)."""

    def __init__(self, app: ASGIApp, min_bytes: int, skip: frozenset[str] = frozenset()) -> None:
        self.app, self.min_bytes, self.skip = app, min_bytes, skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or self._skipped(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # client went away
            return
        if len(body) <= self.min_bytes:
            await self.app(scope, replay_body(body, receive), send)
            return
        written: list[Message] = []

        async def collect(message: Message) -> None:
            written.append(message)

        async def connected() -> Message:  # after the body: no disconnect is reported until the answer
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def handle() -> None:
            await self.app(scope, replay_body(body, connected), collect)

        def run() -> None:
            with collector_paused() as pause:  # a large body makes many objects, and no reference cycles
                asyncio.run(handle())
                pause.freeze = any(m["type"] == "http.response.start" and m["status"] < 400 for m in written)

        await run_in_threadpool(run)
        for message in written:
            await send(message)

    def _skipped(self, scope: Scope) -> bool:
        return scope["path"] in self.skip and not scope.get("root_path")
