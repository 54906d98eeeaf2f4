"""Against a real `sched-env serve` process: memory stays bounded after oversized rejected requests, slow
or idle connections are closed, and WebSocket frames are held to the body limit."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, start_server

MIB = 1024 * 1024
LIMIT = 8 * MIB  # the default SCHED_MAX_BODY_BYTES
KEEP_ALIVE_REQUESTS = 3


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def oversized_bodies() -> dict[str, bytes]:
    """Bodies just under 8 MB that fail validation in the ways that used to cost the most memory: millions
    of invalid items (one error each), a huge string echoed by repr(), many unknown keys, long lists."""
    n = LIMIT // 2 - 64
    return {
        "/v1/score": b'{"items":[' + b",".join([b"1"] * n) + b"]}",
        "/v1/solve": json.dumps({"problem": {"events": [{"name": "\x00" * (LIMIT // 6 - 64)}]}}).encode(),
        "/get_reward": json.dumps({"query": [1] * (LIMIT // 3 - 64), "prompts": [], "labels": []}).encode(),
        "/v1/prompt": json.dumps({f"k{i}": 0 for i in range(LIMIT // 14)}).encode(),
    }


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    s = start_server(
        SCHED_HEADER_TIMEOUT="1",
        SCHED_KEEP_ALIVE_TIMEOUT="1",
        SCHED_KEEP_ALIVE_REQUESTS=str(KEEP_ALIVE_REQUESTS),
        SCHED_MAX_BODY_BYTES=str(LIMIT),
    )
    yield s
    s.stop()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_memory_stays_bounded_after_32_oversized_rejected_requests(server: LiveServer) -> None:
    """Issue 9: 32 such requests took a server from 107 MiB to 2.4 GiB. Bound: 250 MiB of growth."""
    bodies = oversized_bodies()
    assert all(LIMIT - MIB < len(b) <= LIMIT for b in bodies.values()), {k: len(b) for k, b in bodies.items()}
    pid = server.process.pid
    with httpx.Client(base_url=server.url, timeout=60) as http:
        http.get("/health")
        before = rss_mib(pid)
        peak = before
        for i in range(32):
            path = list(bodies)[i % len(bodies)]
            r = http.post(path, content=bodies[path], headers={"content-type": "application/json"})
            assert r.status_code == 422 and len(r.content) < 4000, (path, r.status_code, r.text[:200])
            peak = max(peak, rss_mib(pid))
        assert http.get("/health").status_code == 200
    after = rss_mib(pid)
    print(f"RSS before {before:.0f} MiB, peak {peak:.0f} MiB, after {after:.0f} MiB")
    assert after - before < 250 and peak - before < 400, (before, peak, after)


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    sock.settimeout(limit)
    start, data = time.monotonic(), b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_headers_that_never_finish_are_timed_out(server: LiveServer) -> None:
    with connect(server.url) as idle:  # connects, sends nothing
        assert read_until_closed(idle, 10)[1] < 5
    with connect(server.url) as slow:  # a request line and one header, then silence
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        data, waited = read_until_closed(slow, 10)
        assert data == b"" and waited < 5


def test_headers_timeout_also_covers_the_next_request_on_a_kept_alive_connection(server: LiveServer) -> None:
    with connect(server.url) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /health HTTP/1.1\r\n")  # the next request starts, and stalls
        _, waited = read_until_closed(s, 10)
        assert waited < 5


def test_idle_keep_alive_connections_close(server: LiveServer) -> None:
    with connect(server.url) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        _, waited = read_until_closed(s, 10)
        assert waited < 5


def test_a_slow_but_steady_client_is_served(server: LiveServer) -> None:
    with connect(server.url) as s:
        for part in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            s.sendall(part)
            time.sleep(0.3)
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")


def test_websocket_frames_over_the_limit_are_refused_by_the_server() -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect as ws_connect

    server = start_server(SCHED_MAX_BODY_BYTES=str(MIB))
    try:
        url = server.url.replace("http://", "ws://") + "/openenv/ws"
        with ws_connect(url, max_size=None) as ws:
            ws.send(json.dumps({"type": "state"}))
            assert json.loads(ws.recv())["type"] == "state"
            ws.send(b"\x00" * 16)  # a binary frame: an error reply, and the session goes on
            assert json.loads(ws.recv())["data"]["code"] == "BinaryFrame"
            ws.send("x" * (2 * MIB))  # uvicorn's default would take up to 16 MiB
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    finally:
        server.stop()


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers, then a body of its Content-Length), however the bytes arrive."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(h.split(b":")[1]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_closes_after_its_request_limit(server: LiveServer) -> None:
    """The last allowed request is answered in full with `connection: close`, then the server closes."""
    with connect(server.url) as s:
        s.settimeout(5)
        for _ in range(KEEP_ALIVE_REQUESTS - 1):
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_response(s)
            assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" not in answer.lower()
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data, waited = read_until_closed(s, 5)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower(), head
        assert json.loads(body)["status"] == "ok" and waited < 1


def test_a_client_past_the_request_limit_reconnects_transparently(server: LiveServer) -> None:
    """httpx (like http.client and requests) opens a new connection after `connection: close`; a POST with
    a body is answered in full every time."""
    item = {"problem_id": "train-000000", "completion": "<schedule></schedule>"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        results = [http.post("/v1/score", json={"items": [item]}) for _ in range(4 * KEEP_ALIVE_REQUESTS)]
        closes = sum(r.headers.get("connection", "").lower() == "close" for r in results)
    assert all(r.status_code == 200 and len(r.json()["results"]) == 1 for r in results)
    assert closes == 4


def test_websocket_upgrades_do_not_count_towards_the_request_limit(server: LiveServer) -> None:
    """A WebSocket session is one connection for as long as it lasts; the limit is about HTTP requests."""
    from websockets.sync.client import connect as ws_connect

    with ws_connect(server.url.replace("http", "ws") + "/openenv/ws", open_timeout=5) as ws:
        for _ in range(2 * KEEP_ALIVE_REQUESTS):
            ws.send(json.dumps({"type": "reset", "data": {}}))
            assert json.loads(ws.recv(timeout=5))["type"] == "observation"


def test_request_limit_zero_keeps_a_connection_open() -> None:
    server = start_server(SCHED_KEEP_ALIVE_REQUESTS="0")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            answers = [http.get("/health") for _ in range(20)]
        assert all(r.status_code == 200 and "connection" not in r.headers for r in answers)
    finally:
        server.stop()
