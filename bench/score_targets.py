"""Every scoring-speed target of issue 10, measured in one run and printed as a ratio or a figure.

    .venv/bin/python bench/score_targets.py [--seconds 3] [--skip-large] [--rounds N]
                                            [--keep-alive-requests N ...] [--even-split] [--unbalanced]

1. In-process: the scoring core vs the literal transcription of the published reward functions that the
   tests hold (`tests/env_server/scoring/published.py::published_rewards`), on the same realistic
   completions (`bench/realistic.py`: ~1.5 k characters of reasoning naming events, every verdict), under
   both profiles. Target: >= 2.0x.
2. `POST /v1/score`, batch 64, 1 worker, 1 client thread (httpx, response parsed): completions/s over the
   published in-process rate. Rounds alternate between the published functions and each client (six
   batches of 64 per round), and every figure, the published one too, is its best round (the mean over
   all rounds is printed after it). First the trainer's request: `EnvClient.rewards` (what the GRPO reward
   path, `EnvScorer`, calls) with inline problems, the body written by the client and the answer decoded
   into the reward view (target >= 1.5x, issue 24).
   Then clients that encode every request and parse every response with orjson (targets: inline problems
   >= 1.0x, `problem_id` items >= 1.2x), and the same with httpx's `json=` (the standard library), for
   reference.
3. Batch 1, 2 workers: requests/s and p99 (targets >= 2,500 req/s, p99 < 5 ms); clients are separate
   processes on keep-alive connections (`http.client`), so the load generator is not one GIL.
4. 8 concurrent clients (processes) sending batch 64, 2 workers: p99 (target < 10 ms), and how many of
   the 8 connections each worker holds (`--rounds N` repeats it with new connections; the service
   balances them, least connections first). Under each line, where the CPU time went per request (from
   Linux's `/proc/PID/schedstat`): the workers' time on a core and runnable but waiting for one, and the
   client processes' own time on the same 2 cores. With `--keep-alive-requests 0 100` it alternates between a
   server without a per-connection request limit and one that closes a connection after 100 requests
   (`SCHED_KEEP_ALIVE_REQUESTS`). `--unbalanced` alternates with a server that leaves the split to the
   kernel (`SCHED_BALANCE_CONNECTIONS=false`, as before the ninth pass). `--even-split` adds two 1-worker
   servers with 4 of the clients each (the split by construction).
5. Large legal requests, 1 worker: how long each takes, and the slowest `/health` answered by the same
   worker meanwhile (target < 100 ms): `/v1/score` bodies the fast path takes and ones it declines (an
   `application/*+json` type, a lone surrogate), `/get_reward`, pages.

Not a test: timings on a shared machine are noisy, so every ratio compares two figures from the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from realistic import realistic_pairs  # noqa: E402

from env_server.scoring.batch import ProblemCache, score_batch  # noqa: E402
from env_server.scoring.index import index_problem  # noqa: E402
from env_server.scoring.profiles import PROFILES, score  # noqa: E402
from env_server.service.settings import Settings  # noqa: E402
from env_server.task.generator import generate_problem  # noqa: E402
from shared_schema import ProblemSpec, ScoreItem  # noqa: E402
from tests.conftest import connections_per_worker, server_workers, start_server  # noqa: E402
from tests.env_server.scoring.published import published_rewards  # noqa: E402
from trainer.client.env_client import EnvClient  # noqa: E402


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second: best of several rounds of `fn` (which returns how many items it did)."""
    fn()  # warm-up
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def pct(xs: list[float], q: int) -> float:
    """q-th percentile in milliseconds."""
    if len(xs) < 2:
        return xs[0] * 1000 if xs else float("nan")
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] * 1000


def wire_problem(p: Any) -> dict[str, Any]:
    return {"events": [e.model_dump() for e in p.events], "priorities": list(p.priorities)}


# 1. In-process ---------------------------------------------------------------------------------------


def race(fns: dict[str, Callable[[], int]], seconds: float) -> dict[str, float]:
    """Items per second of each function, best round; rounds alternate between the functions so that
    all of them see the same machine load."""
    best = dict.fromkeys(fns, 0.0)
    for fn in fns.values():
        fn()  # warm-up
    end = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < end:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            n = fn()
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    return best


def in_process(pairs: list[tuple[Any, str]], seconds: float) -> dict[str, float]:
    indexed = {p.id: index_problem(p, p.optimal_score) for p, _ in pairs}
    entries = [(indexed[p.id], p.id, t) for p, t in pairs]
    cache = ProblemCache(1024)
    raw = [(orjson.dumps(wire_problem(p)), t) for p, t in pairs]  # each problem's JSON text, as sent
    fns: dict[str, Callable[[], int]] = {
        "published": lambda: [published_rewards(t, p, p.optimal_score) for p, t in pairs] and len(pairs)
    }
    for name, profile in PROFILES.items():
        fns[f"core {name}"] = lambda profile=profile: len(score_batch(entries, profile, 65_536))
        fns[f"core {name} +inline"] = lambda profile=profile: len(
            [score(t, cache.index_json(r), profile, 65_536) for r, t in raw]
        )
    return race(fns, seconds)


# 2. One client thread, batch 64 ---------------------------------------------------------------------


def httpx_round(
    http: httpx.Client, body: dict[str, Any], lat: list[float], codec: str = "orjson", batches: int = 6
) -> Callable[[], int]:
    """One round of `batches` requests of `body` from one httpx client, for `race`: every request is
    encoded and its response parsed, as a trainer does with each new batch. `codec`: `orjson` (what a
    client that cares uses) or `stdlib` (httpx's `json=`). Each request's latency goes to `lat`."""
    n = len(body["items"])
    headers = {"content-type": "application/json"}

    def post() -> Any:
        if codec == "orjson":
            r = http.post("/v1/score", content=orjson.dumps(body), headers=headers)
            r.raise_for_status()
            return orjson.loads(r.content)
        r = http.post("/v1/score", json=body)
        r.raise_for_status()
        return r.json()

    def run() -> int:
        for _ in range(batches):
            t0 = time.perf_counter()
            assert len(post()["results"]) == n
            lat.append(time.perf_counter() - t0)
        return n * batches

    return run


def env_client_round(
    client: EnvClient, batches: list[list[ScoreItem]], lat: list[float]
) -> Callable[[], int]:
    """One round of the trainer's requests: `EnvClient.rewards` on each batch (the client writes the body
    and decodes the answer into the reward view), as `EnvScorer` sends them."""

    def run() -> int:
        for items in batches:
            t0 = time.perf_counter()
            assert len(client.rewards(items).results) == len(items)
            lat.append(time.perf_counter() - t0)
        return sum(map(len, batches))

    return run


def race_mean(fns: dict[str, Callable[[], int]], seconds: float) -> dict[str, tuple[float, float]]:
    """`race`, with each function's mean rate over all its rounds too: (best, mean) items per second."""
    for fn in fns.values():
        fn()  # warm-up
    best = dict.fromkeys(fns, 0.0)
    total = {name: [0, 0.0] for name in fns}
    order, shuffle = list(fns), random.Random(0).shuffle
    end = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < end:
        shuffle(order)  # no function always runs right after another (say, after the in-process one)
        for name in order:
            t0 = time.perf_counter()
            n = fns[name]()
            took = time.perf_counter() - t0
            best[name] = max(best[name], n / took)
            total[name][0] += n
            total[name][1] += took
    return {name: (best[name], total[name][0] / total[name][1]) for name in fns}


# 3-4. Client processes on keep-alive connections ---------------------------------------------------


def schedstat(pid: int | str = "self") -> tuple[int, int]:
    """(ns spent on a CPU, ns spent runnable but waiting for one) of a process's main thread, from Linux's
    `/proc/PID/schedstat`; (0, 0) where there is none."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)
    except (OSError, ValueError):
        return 0, 0


def _client(port: int, body: bytes, n_items: int, seconds: float, start: float, q: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"content-type": "application/json"}
    lat: list[float] = []
    for _ in range(10):  # warm-up
        conn.request("POST", "/v1/score", body, headers)
        conn.getresponse().read()
    while time.time() < start:
        time.sleep(0.001)
    end = start + seconds
    before = schedstat()
    while time.time() < end:
        t0 = time.perf_counter()
        conn.request("POST", "/v1/score", body, headers)
        resp = conn.getresponse()
        data = json.loads(resp.read())
        lat.append(time.perf_counter() - t0)
        assert resp.status == 200 and len(data["results"]) == n_items
    after = schedstat()
    q.put((lat, after[0] - before[0], after[1] - before[1]))


@dataclass
class CpuUse:
    """Where the CPU time of a load went, per request (ms), from `/proc/PID/schedstat`: the server's
    workers (on a core, and runnable but waiting for one) and the client processes on the same cores."""

    worker_ms: float = 0.0
    worker_wait_ms: float = 0.0
    client_ms: float = 0.0

    def __str__(self) -> str:
        if not self.worker_ms:
            return ""
        share = self.client_ms / (self.client_ms + self.worker_ms)
        return (
            f"per request: workers {self.worker_ms:.2f} ms on a core + {self.worker_wait_ms:.2f} ms waiting "
            f"for one, clients {self.client_ms:.2f} ms ({share:.0%} of the CPU time)"
        )


def process_load(
    port: int | list[int],
    body: dict[str, Any],
    clients: int,
    seconds: float,
    server_pid: int | None = None,
) -> tuple[float, list[float], list[int], CpuUse]:
    """(requests/s, latencies, connections per server worker, CPU use) of `clients` processes sending
    `body` back to back for `seconds`. The split is read from the server's worker processes halfway
    through, and their CPU time over the measuring time (empty and zero without `server_pid`): each
    client keeps one connection; the service gives a new connection to the worker holding fewest
    (unbalanced, the kernel gives it to whichever worker accepts first, so 8 clients can land 4/4 or 6/2,
    and a worker with 6 queues 6).
    Several ports: client i uses port i mod len(ports) (single-worker servers split evenly by hand)."""
    ports = port if isinstance(port, list) else [port]
    raw = json.dumps(body).encode()
    q: Any = mp.get_context("fork").Queue()
    start = time.time() + 1.0
    procs = [
        mp.get_context("fork").Process(
            target=_client, args=(ports[i % len(ports)], raw, len(body["items"]), seconds, start, q)
        )
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    split: list[int] = []
    workers: list[Any] = []
    before: list[tuple[int, int]] = []
    if server_pid is not None:
        workers = server_workers(server_pid)
        time.sleep(max(0.0, start - time.time()))
        before = [schedstat(w.pid) for w in workers]
        time.sleep(max(0.0, start + seconds / 2 - time.time()))
        split = connections_per_worker(server_pid, port)
        time.sleep(max(0.0, start + seconds - time.time()))
    after = [schedstat(w.pid) for w in workers]
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    lat = [x for r in results for x in r[0]]
    cpu = CpuUse()
    if lat and workers:
        cpu.worker_ms = sum(a[0] - b[0] for a, b in zip(after, before, strict=True)) / len(lat) / 1e6
        cpu.worker_wait_ms = sum(a[1] - b[1] for a, b in zip(after, before, strict=True)) / len(lat) / 1e6
        cpu.client_ms = sum(r[1] for r in results) / len(lat) / 1e6
    return len(lat) / seconds, lat, split, cpu


# 5. Large requests vs /health -------------------------------------------------------------------------


def _send_big(url: str, send: Callable[[httpx.Client], httpx.Response], q: Any) -> None:
    with httpx.Client(base_url=url, timeout=600) as http:
        t0 = time.perf_counter()
        r = send(http)
        q.put((time.perf_counter() - t0, r.status_code))


def health_during(url: str, send: Callable[[httpx.Client], httpx.Response]) -> tuple[float, int, float, int]:
    """(seconds the large request took, its status, slowest /health in ms, /health answers) with
    `/health` polled every 10 ms while the large request is in flight. The large request is sent from
    another process, so building and parsing its JSON does not hold up the poller."""
    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    proc = ctx.Process(target=_send_big, args=(url, send, q))
    worst, count = 0.0, 0
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get("/health")
        proc.start()
        time.sleep(0.05)
        while proc.is_alive() and q.empty():
            t0 = time.perf_counter()
            http.get("/health").raise_for_status()
            worst, count = max(worst, time.perf_counter() - t0), count + 1
            time.sleep(0.01)
        took, status = q.get()
        proc.join()
    return took, status, worst * 1000, count


def large_requests(pairs: list[tuple[Any, str]]) -> None:
    print("\n5. large legal requests, 1 worker; /health polled every 10 ms meanwhile (target < 100 ms)")
    print(f"{'request':58} {'status':>6} {'took s':>8} {'health max ms':>14} {'n':>5}")
    server = start_server(workers=1, SCHED_TRAIN_SIZE="4096", SCHED_LOG_LEVEL="warning")
    try:
        limit = 8 * 1024 * 1024
        ids = [{"problem_id": f"train-{i % 64:06d}", "completion": t} for i, (_, t) in enumerate(pairs)]
        batch = [ids[i % len(ids)] for i in range(4096)]
        while len(json.dumps({"items": batch})) > limit:  # keep the body legal
            batch = [{**it, "completion": it["completion"][:-50]} for it in batch]
        inline = [
            {"problem": wire_problem(generate_problem(9, "train", i)), "completion": t}
            for i, (_, t) in enumerate(pairs[:64])
        ]
        big_inline = [inline[i % 64] | {"problem": wire_problem(generate_problem(9, "train", 1000 + i))}
                      for i in range(2000)]  # fmt: skip
        xl = [{"problem_id": f"train-xl-{i:06d}", "completion": pairs[0][1]} for i in range(4096)]
        p = generate_problem(1, "train", 0)
        ev = "".join(
            f"<event><name>{e.name}</name><start>{e.start}</start><end>{e.end}</end></event>\n"
            for e in p.events
        )
        flood = "<think>x</think><schedule>" + (ev * 2000)[:65_000] + "</schedule>"
        maximal = [{"problem": wire_problem(p), "completion": flood} for _ in range(120)]
        spans = [((i * 7) % 1400, (i * 7) % 1400 + 30) for i in range(2000)]
        big_events = [
            {"name": f"E{i}", "start": f"{a // 60:02d}:{a % 60:02d}", "end": f"{b // 60:02d}:{b % 60:02d}"}
            for i, (a, b) in enumerate(spans)
        ]
        big_problems = [
            {
                "problem": {"events": big_events[k:] + big_events[:k], "priorities": []},
                "completion": flood[:2000],
            }
            for k in range(60)
        ]
        bad_problems = [*big_problems[:-1], {**big_problems[-1], "problem": {"events": big_events[:1] * 2}}]
        maximal_raw = orjson.dumps({"items": maximal})
        # a lone surrogate (legal: read as U+FFFD) makes the fast path decline the body
        lone = json.dumps({"items": [{**it, "completion": it["completion"][:-12] + "\ud800" + "</schedule>"}
                                     for it in maximal]}).encode()  # fmt: skip
        openrlhf = orjson.dumps(
            {
                "query": ["Q" + flood] * 120,
                "prompts": ["Q"] * 120,
                "labels": [json.dumps(wire_problem(p))] * 120,
            }
        )
        as_json = {"content-type": "application/json"}
        cases: list[tuple[str, Callable[[httpx.Client], httpx.Response]]] = [
            (f"4,096 items by id ({len(json.dumps({'items': batch})) >> 20} MiB)",
             lambda h: h.post("/v1/score", json={"items": batch})),
            ("2,000 items, 2,000 distinct inline problems",
             lambda h: h.post("/v1/score", json={"items": big_inline})),
            ("4,096 ids of uncached xl-preset problems",
             lambda h: h.post("/v1/score", json={"items": xl})),
            ("1,000-problem page, uncached hard preset",
             lambda h: h.get("/v1/problems", params={"limit": 1000, "difficulty": "hard"})),
            ("120 maximal completions (65,000 chars of events each)",
             lambda h: h.post("/v1/score", json={"items": maximal})),
            ("60 distinct inline problems of 2,000 events (~7 MiB)",
             lambda h: h.post("/v1/score", json={"items": big_problems})),
            ("the same, last problem invalid (422 after validating all)",
             lambda h: h.post("/v1/score", json={"items": bad_problems})),
            ("120 maximal completions as application/problem+json",
             lambda h: h.post("/v1/score", content=maximal_raw,
                              headers={"content-type": "application/problem+json"})),
            ("120 maximal completions, each with a lone surrogate",
             lambda h: h.post("/v1/score", content=lone, headers=as_json)),
            ("/get_reward, 120 maximal completions, inline labels",
             lambda h: h.post("/get_reward", content=openrlhf, headers=as_json)),
        ]  # fmt: skip
        for name, send in cases:
            took, status, worst, count = health_during(server.url, send)
            print(f"{name:58} {status:>6} {took:>8.2f} {worst:>14.1f} {count:>5}")
    finally:
        server.stop()


def print_load(name: str, rps: float, lat: list[float], split: str) -> None:
    """One line of section 4: batch-64 throughput, p50, p99 and how the 8 connections were split."""
    print(
        f"  {name:18} {rps * 64:>9,.0f} compl/s  p50 {pct(lat, 50):.2f} ms  p99 {pct(lat, 99):.2f} ms  "
        f"connections per worker {split}"
    )


def even_split(inline: dict[str, Any], by_id: dict[str, Any], rounds: int, seconds: float) -> None:
    """Section 4 with the connections split 4/4 by construction: two 1-worker servers, 4 clients each.
    The same two worker processes and 8 clients as the 2-worker server, so what the kernel's split of
    connections costs is the difference, and this p99 is the best a perfect balancer could give."""
    pair = [start_server(workers=1, SCHED_TRAIN_SIZE="64") for _ in range(2)]
    try:
        ports = [int(srv.url.rsplit(":", 1)[1]) for srv in pair]
        for _ in range(rounds):
            for name, body in (("inline problems", inline), ("problem_id items", by_id)):
                rps, lat, _, _ = process_load(ports, body, 8, seconds)
                print_load(name, rps, lat, "4/4 by construction (two 1-worker servers)")
    finally:
        for srv in pair:
            srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    ap.add_argument("--b1-clients", type=int, default=4, help="client processes for the batch-1 figure")
    ap.add_argument("--skip-large", action="store_true", help="skip section 5")
    ap.add_argument("--rounds", type=int, default=1, help="repeat section 4 (new connections each round)")
    ap.add_argument(
        "--keep-alive-requests",
        type=int,
        nargs="+",
        default=[Settings().keep_alive_requests],
        help="SCHED_KEEP_ALIVE_REQUESTS of the 2-worker server (0: no limit); several values: section 4 "
        "alternates between one server for each",
    )
    ap.add_argument(
        "--unbalanced",
        action="store_true",
        help="section 4 alternates with a 2-worker server that leaves the split of connections to the "
        "kernel (SCHED_BALANCE_CONNECTIONS=false)",
    )
    ap.add_argument(
        "--even-split",
        action="store_true",
        help="section 4 also measures its best case for balance: two 1-worker servers, 4 clients on each",
    )
    args = ap.parse_args()
    pairs = realistic_pairs(400)
    print(f"completions: {len(pairs)}, mean {statistics.mean(len(t) for _, t in pairs):.0f} chars")

    r = in_process(pairs, args.seconds)
    pub = r["published"]
    print("\n1. in-process, completions/s (target: core >= 2.0x published)")
    for k, v in r.items():
        print(f"  {k:28} {v:>10,.0f}  {v / pub:5.2f}x")

    print("\n2. POST /v1/score, batch 64, 1 worker, 1 client thread (best round of each, alternating)")
    server = start_server(workers=1, SCHED_TRAIN_SIZE="64")
    inline = {"items": [{"problem": wire_problem(p), "completion": t} for p, t in pairs[:64]]}
    by_id = {"items": [{"problem_id": p.id, "completion": t} for p, t in pairs[:64]]}
    try:
        specs = {p.id: ProblemSpec(events=p.events, priorities=p.priorities) for p, _ in pairs}
        items = [ScoreItem(problem=specs[p.id], completion=t) for p, t in pairs]
        trainer_batches = [items[i : i + 64] for i in range(0, 384, 64)]
        http = httpx.Client(base_url=server.url, timeout=60)
        cases: list[tuple[str, float | None, Callable[[list[float]], Callable[[], int]]]] = [
            ("EnvClient, inline", 1.5,
             lambda lat: env_client_round(EnvClient.from_url(server.url), trainer_batches, lat)),
            ("inline problems", 1.0, lambda lat: httpx_round(http, inline, lat)),
            ("problem_id items", 1.2, lambda lat: httpx_round(http, by_id, lat)),
            ("inline, json=", None, lambda lat: httpx_round(http, inline, lat, "stdlib")),
            ("problem_id, json=", None, lambda lat: httpx_round(http, by_id, lat, "stdlib")),
        ]  # fmt: skip
        lats: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        fns: dict[str, Callable[[], int]] = {
            "published": lambda: [published_rewards(t, p, p.optimal_score) for p, t in pairs] and len(pairs)
        }
        fns.update({name: make(lats[name]) for name, _, make in cases})
        got = race_mean(fns, args.seconds)
        pub, pub_mean = got["published"]
        print(f"  {'published':18} {pub:>10,.0f} compl/s in-process (mean of its rounds {pub_mean:,.0f})")
        for name, target, _ in cases:
            best, mean = got[name]
            goal = f"target {target}x" if target else "reference: the client's stdlib JSON"
            lat = lats[name]
            print(
                f"  {name:18} {best:>10,.0f} compl/s  {best / pub:5.2f}x published ({goal}; mean "
                f"{mean / pub_mean:.2f}x)  p50 {pct(lat, 50):.2f} ms  p99 {pct(lat, 99):.2f} ms"
            )
    finally:
        server.stop()

    # one 2-worker server per request limit and balancing (section 4 alternates; 3 uses the first)
    variants = [
        (limit, balanced)
        for limit in args.keep_alive_requests
        for balanced in ((True, False) if args.unbalanced else (True,))
    ]
    servers = [
        start_server(
            workers=2,
            SCHED_TRAIN_SIZE="64",
            SCHED_KEEP_ALIVE_REQUESTS=str(limit),
            SCHED_BALANCE_CONNECTIONS=str(balanced),
        )
        for limit, balanced in variants
    ]
    server = servers[0]
    try:
        port = int(server.url.rsplit(":", 1)[1])
        one = {"items": [{"problem_id": pairs[0][0].id, "completion": pairs[0][1]}]}
        rps, lat, _, _ = process_load(port, one, args.b1_clients, args.seconds)
        print(
            f"\n3. batch 1, 2 workers, {args.b1_clients} client processes (target >= 2,500 req/s, p99 < 5 ms)"
        )
        print(f"  {rps:,.0f} req/s  p50 {pct(lat, 50):.2f} ms  p99 {pct(lat, 99):.2f} ms")
        one_inline = {"items": [{"problem": wire_problem(pairs[0][0]), "completion": pairs[0][1]}]}
        rps, lat, _, _ = process_load(port, one_inline, args.b1_clients, args.seconds)
        print(f"  inline problem: {rps:,.0f} req/s  p50 {pct(lat, 50):.2f} ms  p99 {pct(lat, 99):.2f} ms")
        print("\n4. batch 64, 2 workers, 8 client processes (target p99 < 10 ms)")
        for _ in range(args.rounds):
            for (limit, balanced), srv in zip(variants, servers, strict=True):
                srv_port = int(srv.url.rsplit(":", 1)[1])
                for name, body in (("inline problems", inline), ("problem_id items", by_id)):
                    rps, lat, split, cpu = process_load(srv_port, body, 8, args.seconds, srv.process.pid)
                    split_text = "/".join(map(str, split))
                    note = f"requests per connection: {limit or 'no limit'}"
                    if args.unbalanced:
                        note += "; balanced" if balanced else "; kernel's split"
                    print_load(name, rps, lat, f"{split_text}  ({note})")
                    if str(cpu):
                        print(f"  {'':18} {cpu}")
        if args.even_split:
            even_split(inline, by_id, args.rounds, args.seconds)
    finally:
        for srv in servers:
            srv.stop()

    if not args.skip_large:
        large_requests(pairs)


if __name__ == "__main__":
    main()
