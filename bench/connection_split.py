"""How connections that arrive together split between worker processes, without `runtime/balance.py`.

Two ways a multi-process server can accept, each with two asyncio worker processes (as uvicorn's workers):

- `shared`: one listening socket that every worker accepts from (uvicorn's `--workers`): the worker that
  wakes first accepts everything pending;
- `reuseport`: one socket per worker bound with SO_REUSEPORT: the kernel picks the socket by a hash of
  each connection's addresses.

Each round opens `--clients` connections at once (the GRPO reward client's pool, or 8 benchmark clients),
waits until every one is accepted, asks each which worker holds it, closes them all, and counts the
split. Prints the share of rounds per split. `balance.py` exists because neither gives an even split
reliably; its own split is measured through `sched-env serve` by `bench/score_targets.py`.

    .venv/bin/python bench/connection_split.py --rounds 200 --clients 8
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import time
from collections import Counter


async def _serve(sock: socket.socket | None, port: int, reuseport: bool, worker: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1):
                writer.write(bytes([worker]))
                await writer.drain()
        finally:
            writer.close()

    if reuseport:
        server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_port=True, backlog=128)
    else:
        server = await asyncio.start_server(handle, sock=sock, backlog=128)
    async with server:
        await server.serve_forever()


def _worker(sock: socket.socket | None, port: int, reuseport: bool, worker: int) -> None:
    asyncio.run(_serve(sock, port, reuseport, worker))


def _round(port: int, clients: int) -> tuple[int, ...]:
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]  # all at once
    held = []
    for c in conns:
        c.sendall(b"?")
        held.append(c.recv(1)[0])
    for c in conns:
        c.close()
    counts = Counter(held)
    return tuple(sorted((counts.get(w, 0) for w in range(2)), reverse=True))


def measure(mode: str, rounds: int, clients: int) -> Counter[tuple[int, ...]]:
    reuseport = mode == "reuseport"
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    shared = None
    if not reuseport:
        shared = socket.socket()
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        shared.bind(("127.0.0.1", port))
        shared.listen(128)
        shared.set_inheritable(True)
    ctx = mp.get_context("fork")
    workers = [ctx.Process(target=_worker, args=(shared, port, reuseport, w), daemon=True) for w in range(2)]
    for p in workers:
        p.start()
    time.sleep(1.0)  # both listening
    splits: Counter[tuple[int, ...]] = Counter()
    try:
        for _ in range(rounds):
            splits[_round(port, clients)] += 1
            time.sleep(0.02)  # the workers idle again, as between a trainer's reward calls
    finally:
        for p in workers:
            p.kill()
            p.join()
        if shared is not None:
            shared.close()
    return splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    print(f"{args.clients} connections at once over 2 worker processes, {args.rounds} rounds")
    for mode in ("shared", "reuseport"):
        splits = measure(mode, args.rounds, args.clients)
        even = splits.get((args.clients - args.clients // 2, args.clients // 2), 0)
        shown = ", ".join(f"{a}/{b}: {100 * n / args.rounds:.0f} %" for (a, b), n in sorted(splits.items()))
        print(f"{mode:>9}: even split in {100 * even / args.rounds:.0f} % of rounds ({shown})")


if __name__ == "__main__":
    main()
