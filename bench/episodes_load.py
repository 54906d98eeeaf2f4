"""Tool episodes under load: many concurrent check-and-submit sessions against one service.

    .venv/bin/python bench/episodes_load.py [--sessions 1000] [--checks 3] [--workers 2] [--clients 2]

Starts `sched-env serve --workers W` (default 2) and runs `--sessions` episodes at once (docs/contract.md
section 8): each starts on a train problem, checks `--checks` drafts (an overlapping one, then the
solver's answer), and submits. Sessions are spread over `--clients` processes, each an asyncio loop with
one pooled `httpx.AsyncClient` holding all its sessions' connections (as many as its sessions: nothing
queues in the client). Printed: errors (any status but the expected 201/200), the wall time, calls per
second, and p50/p99/max latency per call kind, measured from the client (queueing in the service
included). Then the same sessions run by the trainer's synchronous client, `EnvClient` (its
`episode_*` calls), from `--threads` threads sharing one client, to show whether the client that
trainers use holds that concurrency (p50/p99 per call, errors).

Not a test: figures on a shared machine are noisy. Figures: docs/benchmarks.md, "Tool episodes under load".
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from tests.conftest import start_server  # noqa: E402
from trainer.client.env_client import EnvClient  # noqa: E402

Timings = dict[str, list[float]]
Work = list[tuple[str, tuple[str, str]]]  # (problem id, (overlapping draft, solver's answer)) per session


def answers(url: str, problem_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Per problem: a draft listing every event (overlapping) and the solver's answer."""
    out = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for pid in problem_ids:
            problem = client.get(f"/v1/problems/{pid}").json()
            spec = {"events": problem["events"], "priorities": problem["priorities"]}
            gold = client.post("/v1/solve", json={"problem": spec}).json()["completion"]
            events = sorted(problem["events"], key=lambda e: e["start"])
            body = "".join(
                f"<event><name>{e['name']}</name><start>{e['start']}</start><end>{e['end']}</end></event>"
                for e in events
            )
            out[pid] = (f"<schedule>{body}</schedule>", gold)
    return out


async def _session(
    client: httpx.AsyncClient,
    pid: str,
    drafts: tuple[str, str],
    checks: int,
    times: Timings,
    errors: list[str],
) -> None:
    async def call(
        kind: str, method: str, path: str, body: dict[str, object], want: int
    ) -> dict[str, object]:
        start = time.perf_counter()
        try:
            r = await client.request(method, path, json=body)
        except httpx.HTTPError as e:
            errors.append(f"{kind}: {e!r}")
            return {}
        times[kind].append(time.perf_counter() - start)
        if r.status_code != want:
            errors.append(f"{kind}: {r.status_code} {r.text[:200]}")
            return {}
        return dict(r.json())

    ep = await call("start", "POST", "/v1/episodes", {"problem_id": pid, "checks": checks}, 201)
    if not ep:
        return
    eid = ep["episode_id"]
    for i in range(checks):
        await call("check", "POST", f"/v1/episodes/{eid}/check", {"answer": drafts[min(i, 1)]}, 200)
    done = await call("submit", "POST", f"/v1/episodes/{eid}/submit", {"answer": drafts[1]}, 200)
    if done and done.get("reward") != 100.0:
        errors.append(f"submit: reward {done.get('reward')}")


async def _run_async(url: str, work: Work, checks: int) -> tuple[Timings, list[str], float]:
    times: Timings = defaultdict(list)
    errors: list[str] = []
    # a connection per session, dropped after 4 s idle: before the service's 5 s keep-alive closes it (httpx's
    # 5 s default races it: a request sent as the service closes the connection fails with ReadError)
    n = len(work)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n, keepalive_expiry=4.0)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(_session(client, pid, d, checks, times, errors) for pid, d in work))
        wall = time.perf_counter() - start
    return dict(times), errors, wall


def _client_process(args: tuple[str, Work, int]) -> tuple[Timings, list[str], float]:
    url, work, checks = args
    return asyncio.run(_run_async(url, work, checks))


def run_async_clients(url: str, work: Work, checks: int, clients: int) -> None:
    shares = [work[i::clients] for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        parts = pool.map(_client_process, [(url, share, checks) for share in shares])
    wall = max(w for _, _, w in parts)  # each process's own, from its first call to its last answer
    times: Timings = defaultdict(list)
    errors: list[str] = []
    for t, e, _ in parts:
        for kind, values in t.items():
            times[kind].extend(values)
        errors.extend(e)
    report(
        f"{len(work)} concurrent sessions, {clients} client processes (httpx.AsyncClient)",
        times,
        errors,
        wall,
    )


def run_env_client(url: str, work: Work, checks: int, threads: int) -> None:
    times: Timings = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    client = EnvClient.from_url(url)

    def timed(kind: str, fn, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            out = fn(*args)
        except Exception as e:
            with lock:
                errors.append(f"{kind}: {e!r}"[:200])
            return None
        with lock:
            times[kind].append(time.perf_counter() - start)
        return out

    from shared_schema.episodes import EpisodeStart

    def session(item: tuple[str, tuple[str, str]]) -> None:
        pid, drafts = item
        ep = timed("start", client.episode_start, EpisodeStart(problem_id=pid, checks=checks))
        if ep is None:
            return
        for i in range(checks):
            timed("check", client.episode_check, ep.episode_id, drafts[min(i, 1)])
        done = timed("submit", client.episode_submit, ep.episode_id, drafts[1])
        if done is not None and done.reward != 100.0:
            with lock:
                errors.append(f"submit: reward {done.reward}")

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(session, work))
    wall = time.perf_counter() - start
    client.close()
    report(f"{len(work)} sessions from {threads} threads sharing one EnvClient", times, errors, wall)


def report(title: str, times: Timings, errors: list[str], wall: float) -> None:
    calls = sum(len(v) for v in times.values())
    print(f"\n{title}: {len(errors)} errors, {calls} calls in {wall:.1f} s ({calls / wall:.0f} calls/s)")
    for kind in ("start", "check", "submit"):
        values = sorted(times.get(kind, []))
        if not values:
            continue
        p50 = statistics.median(values)
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
        print(
            f"  {kind:7s} n={len(values):5d}  p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
            f"max {values[-1] * 1000:7.1f} ms"
        )
    for e in errors[:5]:
        print(f"  error: {e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--checks", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()
    server = start_server(workers=args.workers, SCHED_LOG_LEVEL="warning", SCHED_ACCESS_LOG="false")
    try:
        pids = [f"train-{i:06d}" for i in range(64)]
        drafts = answers(server.url, pids)
        work = [(pids[i % len(pids)], drafts[pids[i % len(pids)]]) for i in range(args.sessions)]
        print(f"service: {args.workers} workers; sessions of 1 start, {args.checks} checks, 1 submit")
        run_async_clients(server.url, work, args.checks, args.clients)
        run_env_client(server.url, work, args.checks, args.threads)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
