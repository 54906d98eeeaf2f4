"""Least-connections balancing between workers (`env_server.runtime.balance`): the shared table, the listener's
rules (least loaded first, liveness when the least loaded does not take a connection, dead workers
ignored), and a live 2-worker service splitting connections that arrive together evenly."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from env_server.runtime import balance
from env_server.runtime.balance import (
    PATIENCE,
    TABLE_ENV,
    BalancedListener,
    ConnectionTable,
    new_event_loop,
)
from env_server.runtime.serving import uvicorn_options
from env_server.service.settings import Settings
from tests.conftest import LiveServer, connections_per_worker, server_workers, start_server


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def table(tmp_path: Path) -> Iterator[ConnectionTable]:
    t = ConnectionTable.create(tmp_path / "table", slots=4)
    yield t
    t.close()


def test_table_slots_are_claimed_once_and_freed(table: ConnectionTable) -> None:
    me, parent, gone = os.getpid(), os.getppid(), dead_pid()
    assert table.entries() == [(0, 0)] * 4
    assert table.claim(me) == 0
    assert table.claim(me) == 0  # a process asking again gets its own slot back
    assert table.claim(parent) == 1
    table.publish(1, parent, 3)
    table.publish(2, gone, 1)  # left behind by a worker that died
    table.publish(3, parent, 2)
    assert table.claim(424242) == 2  # the first slot whose process is gone
    table.release(1)
    assert table.entries()[1] == (0, 0)
    assert ConnectionTable(table.path).entries() == table.entries()  # another process's view: the file


def test_a_slot_of_a_dead_worker_is_reclaimed(table: ConnectionTable) -> None:
    parent = os.getppid()
    for i in range(4):
        table.publish(i, parent, 0)
    assert table.claim() is None  # every slot belongs to a live process
    gone = dead_pid()
    table.publish(2, gone, 7)
    assert table.claim() == 2
    assert table.entries()[2] == (os.getpid(), 0)


def test_least_connections_rule(table: ConnectionTable) -> None:
    parent, gone = os.getppid(), dead_pid()
    table.publish(0, os.getpid(), 2)
    table.publish(1, parent, 2)
    assert table.may_accept(0, 2)  # a tie: both may take it
    table.publish(1, parent, 1)
    assert not table.may_accept(0, 2)  # another live worker holds fewer
    assert table.may_accept(1, 1)
    table.publish(1, gone, 0)  # fewer, but its process is gone
    assert table.may_accept(0, 2)
    table.release(1)
    assert table.may_accept(0, 5)


def test_a_file_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    for content in (b"", b"x" * 15):
        (tmp_path / "t").write_bytes(content)
        with pytest.raises(ValueError):
            ConnectionTable(tmp_path / "t")


class Listening:
    """A BalancedListener on the balanced loop in a thread, with a plain protocol; `other` is the slot
    of a pretend second worker."""

    def __init__(
        self,
        table: ConnectionTable,
        other_pid: int,
        loop_kind: str = "uvloop",
        sock: socket.socket | None = None,
    ) -> None:
        self.table = table
        table.publish(1, other_pid, 0)
        self.sock = sock or socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []
        # uvicorn's loop (uvloop), or asyncio's own where uvloop is missing
        self.loop = new_event_loop() if loop_kind == "uvloop" else ASYNCIO_BALANCED()
        ready = threading.Event()

        accepted = self.accepted

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.append(time.monotonic())

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            slot = table.claim()
            assert slot == 0
            self.listener = BalancedListener(self.loop, Protocol, self.sock, table, slot)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def connect(self) -> tuple[socket.socket, float]:
        t0 = time.monotonic()
        n = len(self.accepted)
        s = socket.create_connection(("127.0.0.1", self.port))
        deadline = t0 + 5
        while len(self.accepted) == n and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(self.accepted) == n + 1
        return s, self.accepted[-1] - t0

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.listener.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.sock.close()


LOOPS = pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
ASYNCIO_BALANCED = type("AsyncioBalancedLoop", (balance._BalancingMixin, asyncio.SelectorEventLoop), {})


@LOOPS
def test_a_refused_connection_is_taken_once_the_less_loaded_worker_leaves_it(
    table: ConnectionTable, loop_kind: str
) -> None:
    # The other worker (this test's parent process: alive) holds no connection and never accepts.
    on = Listening(table, os.getppid(), loop_kind)
    try:
        first, waited_first = on.connect()  # 0 against 0: a tie, taken at once
        assert table.entries()[0] == (os.getpid(), 1)
        second, waited_second = on.connect()  # 1 against 0: left for the other, then taken
        assert waited_first < PATIENCE / 2 <= PATIENCE * 0.9 <= waited_second < 2.0
        assert table.entries()[0] == (os.getpid(), 2)
        # a connection is counted until the worker reports it lost
        on.loop.call_soon_threadsafe(on.listener.lost)
        time.sleep(0.05)
        assert table.entries()[0] == (os.getpid(), 1)
        first.close()
        second.close()
    finally:
        on.stop()
    assert table.entries()[0] == (0, 0)  # closing the listener frees its slot


@LOOPS
def test_a_refusal_ends_when_one_of_the_workers_connections_is_lost(
    table: ConnectionTable, monkeypatch: pytest.MonkeyPatch, loop_kind: str
) -> None:
    # A client that reconnects as soon as its last connection closed: this worker still counts the
    # closing connection and refuses the new one; once the closing one is lost it takes it at once,
    # without waiting for its retry (made 10 s long here) or for the other worker.
    monkeypatch.setattr(balance, "RETRY", 10.0)
    monkeypatch.setattr(balance, "PATIENCE", 60.0)
    on = Listening(table, os.getppid(), loop_kind)
    try:
        first, _ = on.connect()
        n = len(on.accepted)
        t0 = time.monotonic()
        second = socket.create_connection(("127.0.0.1", on.port))
        time.sleep(0.05)
        assert len(on.accepted) == n  # refused: 1 against 0
        on.loop.call_soon_threadsafe(on.listener.lost)  # the first connection is gone: 0 against 0
        deadline = time.monotonic() + 5
        while len(on.accepted) == n and time.monotonic() < deadline:
            time.sleep(0.0005)
        assert len(on.accepted) == n + 1
        assert on.accepted[-1] - t0 < 5  # not at the retry, 10 s after the refusal
        assert table.entries()[0] == (os.getpid(), 1)
        first.close()
        second.close()
    finally:
        on.stop()


class OutOfDescriptors(socket.socket):
    """A listening socket whose first `accept` fails as when the process has no descriptor left."""

    failures = 1

    def accept(self) -> tuple[socket.socket, object]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_accepting_stops_for_a_second_when_out_of_descriptors(table: ConnectionTable) -> None:
    plain = socket.create_server(("127.0.0.1", 0))
    on = Listening(table, dead_pid(), sock=OutOfDescriptors(fileno=plain.detach()))
    try:
        s, waited = on.connect()  # the first accept fails: the connection waits in the backlog
        assert 0.8 < waited < 4
        s.close()
    finally:
        on.stop()


@LOOPS
def test_a_dead_workers_slot_does_not_hold_connections_back(table: ConnectionTable, loop_kind: str) -> None:
    on = Listening(table, dead_pid(), loop_kind)  # a slot with 0 connections whose process is gone
    try:
        socks = []
        for _ in range(3):
            s, waited = on.connect()
            socks.append(s)
            assert waited < PATIENCE * 0.9
        for s in socks:
            s.close()
    finally:
        on.stop()


def test_uvicorn_options_pick_the_balanced_loop_only_for_several_workers() -> None:
    assert "loop" not in uvicorn_options(Settings(workers=1))
    assert uvicorn_options(Settings(workers=2))["loop"] == "env_server.runtime.balance:new_event_loop"
    assert "loop" not in uvicorn_options(Settings(workers=2, balance_connections=False))


# A live service ---------------------------------------------------------------------------------------


def table_of(server: LiveServer, n: int) -> ConnectionTable:
    """The server's connection table, once `n` workers have claimed a slot in it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for w in server_workers(server.process.pid):
            path = w.environ().get(TABLE_ENV)
            if path:
                table = ConnectionTable(path)
                if sum(pid != 0 for pid, _ in table.entries()) == n:
                    return table
                table.close()
        time.sleep(0.1)
    raise AssertionError("the workers did not all claim a slot")


def connect_together(port: int, n: int) -> list[socket.socket]:
    """`n` keep-alive connections opened at the same moment, each having had one answer."""
    socks: list[socket.socket] = []
    barrier = threading.Barrier(n)
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b" 200 " in s.recv(65536).split(b"\r\n")[0] + b" "
        with lock:
            socks.append(s)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return socks


def settle(table: ConnectionTable, expected: list[int]) -> list[int]:
    deadline = time.monotonic() + 5
    while True:
        counts = sorted((c for pid, c in table.entries() if pid), reverse=True)
        if counts == expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def test_a_live_two_worker_service_splits_connections_evenly() -> None:
    from websockets.sync.client import connect as ws_connect

    server = start_server(workers=2)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        table = table_of(server, 2)
        for _ in range(3):  # 8 clients connecting at once, three times
            socks = connect_together(port, 8)
            assert settle(table, [4, 4]) == [4, 4]
            assert connections_per_worker(server.process.pid, port) == [
                4,
                4,
            ]  # what the kernel says each worker holds
            for s in socks:
                s.close()
            assert settle(table, [0, 0]) == [0, 0]
        # a connection upgraded to a WebSocket stays counted until it closes
        url = server.url.replace("http://", "ws://") + "/openenv/ws"
        with ws_connect(url) as ws:
            ws.send(json.dumps({"type": "state"}))
            assert json.loads(ws.recv())["type"] == "state"
            assert settle(table, [1, 0]) == [1, 0]
        assert settle(table, [0, 0]) == [0, 0]
        # one new connection at a time: each goes to the worker holding fewest
        socks = []
        for i in range(6):
            socks += connect_together(port, 1)
            half = (i + 1) // 2
            assert settle(table, [i + 1 - half, half]) == [i + 1 - half, half]
        for s in socks:
            s.close()
        table.close()
    finally:
        server.stop()
    assert not Path(table.path).exists()  # the supervisor removes its table on exit


def test_balancing_off_leaves_uvicorns_accepting() -> None:
    server = start_server(workers=2, SCHED_BALANCE_CONNECTIONS="false")
    try:
        deadline = time.monotonic() + 30
        while len(server_workers(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(TABLE_ENV not in w.environ() for w in server_workers(server.process.pid))
    finally:
        server.stop()


def test_a_worker_that_dies_is_replaced_in_the_table() -> None:
    import signal

    server = start_server(workers=2)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        table = table_of(server, 2)
        victim = server_workers(server.process.pid)[0].pid
        os.kill(victim, signal.SIGKILL)  # uvicorn's supervisor starts another worker
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            live = {pid for pid, _ in table.entries() if pid}
            if victim not in live and len(live) == 2:
                break
            time.sleep(0.1)
        live = {pid for pid, _ in table.entries() if pid}
        assert victim not in live and len(live) == 2  # the new worker took the dead one's slot
        socks = connect_together(port, 8)
        assert settle(table, [4, 4]) == [4, 4]
        assert connections_per_worker(server.process.pid, port) == [4, 4]
        for s in socks:
            s.close()
        table.close()
    finally:
        server.stop()


def test_the_supervisor_makes_the_table_or_leaves_balancing_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    from env_server.cli import _connection_table

    monkeypatch.delenv(TABLE_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _connection_table(3)
    table = ConnectionTable(os.environ[TABLE_ENV])
    assert Path(table.path).parent == tmp_path and table.entries() == [(0, 0)] * 6  # 2 slots per worker
    table.close()
    monkeypatch.delenv(TABLE_ENV)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))  # no temporary file can be made
    _connection_table(2)
    assert TABLE_ENV not in os.environ
    assert "connection balancing off" in capsys.readouterr().err.replace("\n", " ")
