"""Scoring throughput: in-process core vs HTTP `/v1/score` (batches 1, 8, 64, 512; 1 and 2 workers).

Prints completions/s and p50/p99 request latency on realistic completions (about 2 k characters: a
reasoning block and a schedule; a mix of optimal, overlapping, invented, unsorted and malformed answers).
Not a test: run it with `make bench` or `.venv/bin/python bench/score_throughput.py [--seconds 3]`.
The in-process figure is measured in the same run, so the ratio is what to compare across machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from env_server.scoring.batch import score_items
from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES
from env_server.task.generator import generate_problem
from env_server.task.problems import solve
from shared_schema import Event, ScoreItem
from shared_schema.answer import format_schedule
from tests.conftest import start_server

REASONING = (
    "Let me list the events by start time and check which ones overlap. Priority events count double, so "
    "I should prefer them when two events conflict, unless the other is much longer. "
)


def realistic_completions(n: int) -> list[tuple[str, str]]:
    """(problem_id, completion) pairs of about 2 k characters, five kinds of answer in rotation."""
    out = []
    for i in range(n):
        p = generate_problem(0, "train", i % 64)
        _, best = solve(p)
        reasoning = (REASONING * 12)[:1600]
        kind = i % 5
        if kind == 1:  # overlapping: every event, sorted
            events = sorted(p.events, key=lambda e: e.start_min)
        elif kind == 2:  # invented event
            events = [*best, Event(name="Nap", start="23:00", end="23:30")]
        elif kind == 3:  # unsorted
            events = list(reversed(best))
        else:
            events = best
        body = format_schedule(events)
        text = f"<think>{reasoning}</think>\n{body}"
        if kind == 4 and i % 10 == 4:
            text = text.replace("</schedule>", "")  # malformed
        out.append((p.id, text))
    return out


def in_process_rate(pairs: list[tuple[str, str]], seconds: float) -> float:
    index = {pid: index_problem(generate_problem(0, "train", int(pid.split("-")[1]))) for pid, _ in pairs}
    items = [ScoreItem(problem_id=pid, completion=c) for pid, c in pairs]
    profile = PROFILES["default"]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        score_items(items, profile, index.get, 65_536)
        done += len(items)
    return done / (time.perf_counter() - start)


def http_rate(
    url: str, pairs: list[tuple[str, str]], batch: int, seconds: float, clients: int
) -> tuple[float, list[float]]:
    body = {
        "items": [
            {"problem_id": pid, "completion": c} for pid, c in (pairs * (batch // len(pairs) + 1))[:batch]
        ]
    }
    latencies: list[float] = []
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            http.post("/v1/score", json=body).raise_for_status()  # warm-up
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = http.post("/v1/score", json=body)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
                counts[k] += batch

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0), latencies


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) >= 2 else (xs[0] * 1000 if xs else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per configuration")
    ap.add_argument("--batches", default="1,8,64,512")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    pairs = realistic_completions(200)
    mean_len = statistics.mean(len(c) for _, c in pairs)
    base = in_process_rate(pairs, args.seconds)
    print(f"completions: {len(pairs)} distinct, mean {mean_len:.0f} chars")
    print(f"in-process core: {base:,.0f} completions/s")
    header = (
        ("workers", 7),
        ("clients", 7),
        ("batch", 6),
        ("compl/s", 10),
        ("vs core", 8),
        ("p50 ms", 8),
        ("p99 ms", 8),
    )
    print(" ".join(f"{name:>{width}}" for name, width in header))
    for workers in (int(w) for w in args.workers.split(",")):
        server = start_server(workers=workers, SCHED_TRAIN_SIZE="64")
        try:
            for batch in (int(b) for b in args.batches.split(",")):
                rate, lat = http_rate(server.url, pairs, batch, args.seconds, clients=workers)
                print(
                    f"{workers:>7} {workers:>7} {batch:>6} {rate:>10,.0f} {rate / base:>8.2f} "
                    f"{pct(lat, 50):>8.2f} {pct(lat, 99):>8.2f}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
