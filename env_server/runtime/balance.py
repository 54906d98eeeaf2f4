"""Least-connections balancing between the worker processes of one service.

Why not the standard ways. uvicorn's workers share one listening socket, and a worker that wakes up
accepts every connection that is pending; SO_REUSEPORT gives each worker its own socket and lets the
kernel pick one by a hash of each connection's addresses; one worker per container behind Docker's or
Kubernetes' default balancing picks a replica per connection the same way (at random, not by load).
`bench/connection_split.py` measured, for 8 connections opened at once to 2 workers over 200 rounds
(2026-12-04): an even 4/4 split in 12 % of rounds with the shared socket (8/0 in 22 %) and in 24 % with
SO_REUSEPORT (5/3 in 52 %), the binomial odds of a hash. With long-lived clients (a trainer's reward
pool) the unlucky worker then serves up to twice the load for as long as they stay connected. Through
`sched-env serve` with this module, the same 8 clients split 4/4 every time (docs/benchmarks.md). A
least-connections load balancer in front of one-worker containers would do it too, but it is one more
component that `docker compose up` and a single machine do not have.

With several workers and `SCHED_BALANCE_CONNECTIONS` on (the default), `sched-env serve` runs every worker
on `new_event_loop`'s loop (uvicorn's `loop` option), which takes over accepting on the shared socket:

- a worker accepts a connection only while no other live worker holds fewer open connections;
- the counts live in a small table shared by the workers (`ConnectionTable`: a file the supervisor creates,
  mapped into every worker, one slot per worker holding its pid and its open connections); each worker
  writes only its own slot;
- a worker counts a connection from the moment it accepts it until the connection is lost, whatever
  protocol it carries by then (an HTTP connection upgraded to a WebSocket stays counted);
- liveness: a worker that was refused a pending connection looks again every `RETRY` s and takes the
  connection anyway once it has waited `PATIENCE` s (the less loaded worker may be busy with a request),
  and the slot of a process that is gone is ignored.

Connections that arrive together are therefore split as evenly as they can be (8 over 2 workers: 4/4),
and a new connection goes to the worker with the fewest. Everything else is uvicorn's: the protocol, the
request handling, the graceful shutdown (which closes the listener this module returns).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import mmap
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger("uvicorn.error")

TABLE_ENV = "_SCHED_CONNECTION_TABLE"  # set by `sched-env serve` for its workers; internal
RETRY = 0.001  # seconds between two looks at a connection this worker was refused
PATIENCE = 0.05  # seconds a refused connection waits for a less loaded worker before this one takes it
ACCEPTS_PER_WAKE = 64  # connections accepted in one go at most (asyncio's default backlog is 100)

_SLOT = struct.Struct("=qq")  # pid (0: free), open connections


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


class ConnectionTable:
    """Each worker's open connections, in a file every worker maps: one `(pid, connections)` slot each.

    A worker writes only its own slot, so no lock is needed but to claim a slot. The counts are a hint
    for balancing: a read that races a write sees the old or the new count, both valid a moment apart.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with open(self.path, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0 or size % _SLOT.size:
                raise ValueError(f"{self.path} is not a connection table ({size} bytes)")
            self._map = mmap.mmap(f.fileno(), size)
        self.slots = size // _SLOT.size

    @classmethod
    def create(cls, path: str | os.PathLike[str], slots: int) -> ConnectionTable:
        """A table of `slots` free slots at `path` (a new file, or one emptied)."""
        Path(path).write_bytes(bytes(_SLOT.size * slots))
        return cls(path)

    def entries(self) -> list[tuple[int, int]]:
        """Every slot's `(pid, open connections)`; pid 0 is a free slot."""
        return list(_SLOT.iter_unpack(self._map))

    def claim(self, pid: int | None = None) -> int | None:
        """Take a free slot (or one whose process is gone) for `pid` (default: this process), count 0.
        None when every slot belongs to a live process."""
        pid = os.getpid() if pid is None else pid
        with open(self.path, "r+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two workers starting at once must not take the same slot
            try:
                for i, (owner, _) in enumerate(self.entries()):
                    if owner == 0 or owner == pid or not _alive(owner):
                        _SLOT.pack_into(self._map, i * _SLOT.size, pid, 0)
                        return i
                return None
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def publish(self, slot: int, pid: int, connections: int) -> None:
        _SLOT.pack_into(self._map, slot * _SLOT.size, pid, connections)

    def release(self, slot: int) -> None:
        """Free the slot: its worker takes no more connections (shutting down)."""
        _SLOT.pack_into(self._map, slot * _SLOT.size, 0, 0)

    def may_accept(self, slot: int, connections: int) -> bool:
        """Whether the worker in `slot`, holding `connections`, may take one more: no other live worker
        holds fewer."""
        for i, (pid, count) in enumerate(_SLOT.iter_unpack(self._map)):
            if i != slot and pid and count < connections and _alive(pid):
                return False
        return True

    def close(self) -> None:
        self._map.close()


class _CountingSet(set):  # type: ignore[type-arg]
    """uvicorn's set of open connections (`ServerState.connections`), telling the listener when a
    connection is lost. A protocol leaves the set when its connection is lost (the transport is closing)
    or when it hands the connection to another protocol (a WebSocket upgrade: the transport stays open,
    and the new protocol joins the set); only the first is a lost connection."""

    def __init__(self, items: Iterable[Any], lost: Callable[[], None]) -> None:
        super().__init__(items)
        self._lost = lost

    def discard(self, item: Any) -> None:
        if item in self:
            super().discard(item)
            self._left(item)

    def remove(self, item: Any) -> None:
        super().remove(item)
        self._left(item)

    def _left(self, protocol: Any) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is None or transport.is_closing():
            self._lost()


class BalancedListener:
    """One worker's accepting side of the shared listening socket: what `create_server` returns (uvicorn
    only closes it and waits for it)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        table: ConnectionTable,
        slot: int,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        sock.setblocking(False)  # accept() must not wait when another worker took the connection
        self._sock = sock
        self._fd = sock.fileno()
        self._table = table
        self._slot = slot
        self._pid = os.getpid()
        self.connections = 0  # accepted and not yet lost
        self._refused_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._refusing = False  # the pause is a refusal (not a lack of descriptors)
        self._setting_up: set[asyncio.Task[None]] = set()
        self._poll = select.poll()  # is a connection still waiting (no FD_SETSIZE limit, unlike select)
        self._poll.register(self._fd, select.POLLIN)
        self._closed = False
        self._publish()
        loop.add_reader(self._fd, self._ready)

    # The interface of asyncio.Server that uvicorn uses.
    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,)

    def is_serving(self) -> bool:
        return not self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop.remove_reader(self._fd)
        self._table.release(self._slot)  # the other workers take every new connection from now on

    async def wait_closed(self) -> None:
        return None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    # Accepting.
    def lost(self) -> None:
        """A connection this worker held is gone: it may now be the least loaded, so a refusal pause
        ends here (a client that reconnects as soon as its last connection closed would otherwise wait
        for the retry, both workers having refused it on counts a moment old)."""
        self.connections -= 1
        self._publish()
        if self._timer is not None and self._refusing:
            self._timer.cancel()
            self._resume()

    def _publish(self) -> None:
        if not self._closed:
            self._table.publish(self._slot, self._pid, self.connections)

    def _ready(self) -> None:
        """The listening socket is readable: accept while this worker is (one of) the least loaded."""
        for _ in range(ACCEPTS_PER_WAKE):
            if not self._table.may_accept(self._slot, self.connections):
                now = time.monotonic()
                if self._refused_since is None:
                    self._refused_since = now
                if now - self._refused_since < PATIENCE:
                    self._pause(RETRY, refusing=True)
                    return
                # the less loaded worker has not taken it in PATIENCE seconds: take it
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                self._refused_since = None  # nothing pending (another worker took it)
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # the client gave up before it was accepted
                # out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), or anything else:
                # stop accepting for a second, as asyncio does, rather than fail on every wake-up
                logger.error("socket.accept() failed: %s", exc)
                self._pause(1.0, refusing=False)
                return
            self._refused_since = None
            self.connections += 1
            self._publish()
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._setting_up.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._setting_up.discard)

    def _pause(self, delay: float, refusing: bool) -> None:
        self._loop.remove_reader(self._fd)
        self._refusing = refusing
        self._timer = self._loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self._timer = None
        if self._closed:
            return
        if not self._poll.poll(0):
            self._refused_since = None  # what was refused has been taken by another worker
        self._loop.add_reader(self._fd, self._ready)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except Exception as exc:  # the protocol never started, so no lost connection will be reported
            logger.warning("could not set up an accepted connection: %r", exc)
            conn.close()
            self.lost()


class _BalancingMixin:
    """An event loop whose `create_server(sock=...)` returns a `BalancedListener` when this process is a
    worker of a balanced service, and the loop's own server otherwise."""

    async def create_server(
        self, protocol_factory: Any, host: Any = None, port: Any = None, **kw: Any
    ) -> Any:
        sock = kw.get("sock")
        path = os.environ.get(TABLE_ENV)
        loop: Any = super()
        if sock is None or not path or kw.get("ssl") is not None or host is not None or port is not None:
            return await loop.create_server(protocol_factory, host, port, **kw)
        listener = _listen(self, protocol_factory, sock, path, kw.get("backlog", 100))  # type: ignore[arg-type]
        if listener is None:
            return await loop.create_server(protocol_factory, host, port, **kw)
        return listener


def _listen(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    sock: socket.socket,
    path: str,
    backlog: int,
) -> BalancedListener | None:
    """A balanced listener on `sock`, or None (with a warning) when this worker cannot balance."""
    # uvicorn's protocols share the worker's set of open connections (`server_state.connections`); a
    # protocol built here, never connected, gives access to it
    probe = protocol_factory()
    state = getattr(probe, "server_state", None)
    if type(getattr(state, "connections", None)) is not set:
        logger.warning("connection balancing off: %s keeps no set of connections", type(probe).__name__)
        return None
    try:
        table = ConnectionTable(path)
    except (OSError, ValueError) as exc:
        logger.warning("connection balancing off: %s", exc)
        return None
    slot = table.claim()
    if slot is None:
        logger.warning("connection balancing off: every slot of %s is taken", path)
        return None
    sock.listen(backlog)
    listener = BalancedListener(loop, protocol_factory, sock, table, slot)
    state.connections = _CountingSet(state.connections, listener.lost)  # type: ignore[union-attr]
    return listener


def _loop_class() -> type[asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        base: type[asyncio.AbstractEventLoop] = asyncio.SelectorEventLoop
    else:
        base = uvloop.Loop
    return type("BalancedLoop", (_BalancingMixin, base), {})


BalancedLoop = _loop_class()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's `loop` option for the workers of `sched-env serve` (uvloop, as uvicorn would pick)."""
    return BalancedLoop()
