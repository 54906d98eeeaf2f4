"""The trainer's `/v1/score` request against the published reward functions, in one run, and where it goes.

    .venv/bin/python bench/trainer_request.py [--seconds 3] [--batch 64]

The request is the one the trainer's reward path sends: `EnvClient.rewards` (trainer/client/env_client.py),
what `EnvScorer` calls for every GRPO reward batch: the body encoded by the client from inline problems
(`ScoreItem(problem=ProblemSpec, completion=...)`), posted to the transport of the client `from_url` built,
the answer decoded into the reward view (`trainer.client.rewards`). The service is `sched-env serve
--workers 1`; one client thread. The completions are `bench/realistic.py`'s 400 (64 problems), sent in
batches of `--batch`.

1. Throughput. Rounds alternate between the published functions in-process (all 400 completions,
   `tests/env_server/scoring/published.py::published_rewards`) and each HTTP client (384 completions: six
   batches of 64), so every figure sees the same machine load; each figure is its best round, the
   published one too, and the ratio to the published figure is printed (target for the trainer's
   request: >= 1.5x). The mean over all rounds follows, for reference. Clients:
   - `EnvClient.rewards inline`: the trainer's request (target line);
   - `EnvClient.rewards by id`: the same with `problem_id` items, as `EnvScorer` sends them;
   - `EnvClient.score inline`: the whole `ScoreResponse` (what evaluation and integrations call);
   - `EnvClient.score inline, httpx.Client`: the same through `httpx.Client.request` (an `EnvClient`
     around an injected client), as `EnvClient.score` sent every request before;
   - `httpx + orjson inline`: bytes encoded once in advance, the answer parsed by `orjson.loads` (what
     `bench/score_targets.py` section 2 sends): the service's share without the client's models.
2. Where a batch's time goes, in-process, microseconds per batch (median of 200): the client's encoding
   (pydantic, then `score_request_json`) and parsing (`ScoreResponse.model_validate_json`, then the reward
   view), and the
   service's steps on the same body (msgspec decoding to a plan, resolving the inline problems through the
   cache, scoring, encoding the answer).

Not a test: figures on a shared machine are noisy; compare the ratios inside one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from realistic import realistic_pairs  # noqa: E402
from score_targets import race_mean as race  # noqa: E402

from env_server.scoring.batch import score_batch  # noqa: E402
from env_server.scoring.profiles import PROFILES, REWARD_VERSION  # noqa: E402
from env_server.service.app import create_app  # noqa: E402
from env_server.service.score_api import ScoreService, encode_results  # noqa: E402
from env_server.service.settings import Settings  # noqa: E402
from shared_schema import ProblemSpec, ScoreItem, ScoreRequest, ScoreResponse  # noqa: E402
from tests.conftest import start_server  # noqa: E402
from tests.env_server.scoring.published import published_rewards  # noqa: E402
from trainer.client.env_client import EnvClient, score_request_json  # noqa: E402
from trainer.client.rewards import decode_rewards  # noqa: E402


def micro(fn: Callable[[], object], n: int = 200) -> float:
    """Median microseconds of `fn`."""
    for _ in range(20):
        fn()
    runs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1e6


def breakdown(batches: list[list[ScoreItem]]) -> None:
    """Section 2: each step of one batch, in-process."""
    items = batches[0]
    req = ScoreRequest(items=items)
    body = score_request_json(req)
    service: ScoreService = create_app(Settings(train_size=64, test_size=8)).state.scorer
    plan = service._plan(body)
    assert plan is not None
    entries = service._entries(plan)
    assert entries is not None
    profile = PROFILES["default"]
    results = score_batch(entries, profile, 65_536)
    answer = encode_results(REWARD_VERSION, "default", list(results))
    steps = {
        "client: encode, pydantic model_dump_json (before)": lambda: req.model_dump_json(
            exclude_none=True, exclude_defaults=True
        ),
        "client: encode, score_request_json (now)": lambda: score_request_json(req),
        "service: decode the body (msgspec) to a plan": lambda: service._plan(body),
        "service: resolve inline problems (cache hits)": lambda: service._entries(plan),
        "service: score 64 completions": lambda: score_batch(entries, profile, 65_536),
        "service: encode the answer": lambda: encode_results(REWARD_VERSION, "default", list(results)),
        "client: parse the answer (ScoreResponse)": lambda: ScoreResponse.model_validate_json(answer),
        "client: parse the answer (reward view, msgspec)": lambda: decode_rewards(answer),
    }
    print(f"\n2. one batch of {len(items)} inline items, in-process, median µs")
    for name, fn in steps.items():
        print(f"  {name:52} {micro(fn):8.0f}")
    print(f"  body {len(body):,} bytes, answer {len(answer):,} bytes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    pairs = realistic_pairs(400)
    specs = {p.id: ProblemSpec(events=p.events, priorities=p.priorities) for p, _ in pairs}
    inline = [ScoreItem(problem=specs[p.id], completion=t) for p, t in pairs]
    by_id = [ScoreItem(problem_id=p.id, completion=t) for p, t in pairs]
    rounds = 384 // args.batch * args.batch
    cut = range(0, rounds, args.batch)
    inline_batches = [inline[i : i + args.batch] for i in cut]
    id_batches = [by_id[i : i + args.batch] for i in cut]
    raw = [score_request_json(ScoreRequest(items=b)) for b in inline_batches]
    print(f"completions: {len(pairs)}, batch {args.batch}, {len(inline_batches)} batches per HTTP round")

    server = start_server(workers=1, SCHED_TRAIN_SIZE="64")
    try:
        client = EnvClient.from_url(server.url)
        http = httpx.Client(base_url=server.url, timeout=60)
        before = EnvClient(httpx.Client(base_url=server.url, timeout=60), url=server.url)
        headers = {"content-type": "application/json"}

        def send(c: EnvClient, batches: list[list[ScoreItem]], whole: bool = True) -> Callable[[], int]:
            def run() -> int:
                for b in batches:
                    assert len((c.score(b) if whole else c.rewards(b)).results) == len(b)
                return sum(map(len, batches))

            return run

        def send_raw() -> int:
            for body in raw:
                r = http.post("/v1/score", content=body, headers=headers)
                assert len(orjson.loads(r.content)["results"]) == args.batch
            return len(raw) * args.batch

        fns: dict[str, Callable[[], int]] = {
            "published (in-process)": lambda: (
                [published_rewards(t, p, p.optimal_score) for p, t in pairs] and len(pairs)
            ),
            "EnvClient.rewards inline": send(client, inline_batches, whole=False),
            "EnvClient.rewards by id": send(client, id_batches, whole=False),
            "EnvClient.score inline": send(client, inline_batches),
            "EnvClient.score inline, httpx.Client": send(before, inline_batches),
            "httpx + orjson inline": send_raw,
        }
        got = race(fns, args.seconds)
    finally:
        server.stop()
    pub_best, pub_mean = got["published (in-process)"]
    print("\n1. completions/s, 1 worker, 1 client thread (target: EnvClient.rewards inline >= 1.5x)")
    print(f"  {'':38} {'best round':>12} {'x published':>12} {'mean':>10} {'x published':>12}")
    for name, (best, mean) in got.items():
        print(
            f"  {name:38} {best:>12,.0f} {best / pub_best:>11.2f}x {mean:>10,.0f} {mean / pub_mean:>11.2f}x"
        )
    breakdown(inline_batches)


if __name__ == "__main__":
    main()
