"""Deterministic problem generator (docs/contract.md section 2).

The same (seed, split, index, difficulty) gives the same problem on any machine and any Python version:
randomness comes from a SplitMix64 stream seeded by SHA-256 of those four values, with its own integer
sampling, so nothing depends on the `random` module's implementation.

Train and test never share a problem: a problem's canonical content (its event times and which are
priorities, names ignored) is hashed, and `test` accepts only odd hashes while every other split accepts
only even ones. The partition holds for any seed, size or index, with no list of test problems to keep.
"""

from __future__ import annotations

import hashlib
import json
import math

from env_server.task.problems import solve, with_optimum
from env_server.task.themes import THEMES
from shared_schema import Difficulty, Event, Problem, ProblemSpec, from_minutes
from shared_schema.models import MAX_HOUR

_MASK = (1 << 64) - 1
MAX_ATTEMPTS = 10_000

PRESETS: dict[str, Difficulty] = {
    "default": Difficulty(),
    "warmup": Difficulty(min_events=3, max_events=3, granularity=15),
    "easy": Difficulty(min_events=3, max_events=5, granularity=5),
    "medium": Difficulty(min_events=6, max_events=10, max_overlap_ratio=0.8),
    "hard": Difficulty(min_events=12, max_events=20, force_overlap_prob=0.3, max_overlap_ratio=2.0),
    "xl": Difficulty(min_events=40, max_events=40, force_overlap_prob=0.3, max_overlap_ratio=4.0),
}


class GenerationError(RuntimeError):
    """The difficulty's constraints could not be met (e.g. too few overlaps allowed for the event count)."""


class Rng:
    """SplitMix64 with unbiased bounded integers: small, fast enough, identical everywhere."""

    def __init__(self, key: str) -> None:
        self.state = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")

    def next64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        if n <= 0:
            raise ValueError("n must be positive")
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next64()
            if x < limit:
                return x % n

    def randint(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + self.below(hi - lo + 1)

    def random(self) -> float:
        """Uniform float in [0, 1)."""
        return (self.next64() >> 11) / float(1 << 53)

    def sample(self, items: list[str], k: int) -> list[str]:
        """k distinct items, partial Fisher-Yates."""
        pool = list(items)
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


def difficulty_key(d: Difficulty) -> str:
    return json.dumps(d.model_dump(), sort_keys=True, separators=(",", ":"))


def overlapping_pair_count(events: list[tuple[int, int]]) -> int:
    spans = sorted(events)
    count = 0
    for i, (_, e) in enumerate(spans):
        for s2, _ in spans[i + 1 :]:
            if s2 >= e:
                break
            count += 1
    return count


def split_bucket(spec: ProblemSpec) -> str:
    """`test` or `train`: the side of the partition a problem's content falls on."""
    prio = set(spec.priorities)
    canon = sorted((e.start_min, e.end_min, e.name in prio) for e in spec.events)
    digest = hashlib.sha256(json.dumps(canon).encode()).digest()
    return "test" if digest[0] & 1 else "train"


def _names(rng: Rng, n: int) -> list[str]:
    theme = sorted(THEMES)[rng.below(len(THEMES))]
    pool = list(THEMES[theme])
    names = rng.sample(pool, min(n, len(pool)))
    k = 2
    while len(names) < n:  # large problems: reuse names with a numeric suffix, still unique
        names.extend(f"{name} {k}" for name in rng.sample(pool, min(n - len(names), len(pool))))
        k += 1
    return names


def _draw(rng: Rng, d: Difficulty) -> ProblemSpec | None:
    n = rng.randint(d.min_events, d.max_events)
    names = _names(rng, n)
    lo_steps = max(1, math.ceil(d.min_duration / d.duration_step))
    hi_steps = d.max_duration // d.duration_step
    if hi_steps < lo_steps:
        raise GenerationError("no duration fits min_duration/max_duration/duration_step")
    g = d.granularity
    spans: list[tuple[int, int]] = []
    for _ in range(n):
        duration = d.duration_step * rng.randint(lo_steps, hi_steps)
        if spans and rng.random() < d.force_overlap_prob:
            s_j, e_j = spans[rng.below(len(spans))]
            first, last = (s_j // g + 1) * g, ((e_j - 1) // g) * g  # aligned starts strictly inside
            start = first + g * rng.below((last - first) // g + 1) if first <= last else s_j
        else:
            start = g * rng.randint(0, d.latest_start // g)
        spans.append((start, start + duration))
    if max(e for _, e in spans) > MAX_HOUR * 60 + 59:
        return None
    pairs = overlapping_pair_count(spans)
    if not d.min_overlap_pairs <= pairs <= d.max_overlap_ratio * n:
        return None
    k_lo, k_hi = math.ceil(d.min_priority_ratio * n), math.floor(d.max_priority_ratio * n)
    k = rng.randint(k_lo, k_hi) if k_lo <= k_hi else round(d.min_priority_ratio * n)
    k = min(n, max(1, k))
    events = [
        Event(name=nm, start=from_minutes(s), end=from_minutes(e))
        for nm, (s, e) in zip(names, spans, strict=True)
    ]
    return ProblemSpec(events=events, priorities=rng.sample(names, k))


def problem_id(split: str, index: int, preset: str | None = None) -> str:
    """`train-000042` for a service's main split, `train-hard-000042` for another preset."""
    return f"{split}-{index:06d}" if preset is None else f"{split}-{preset}-{index:06d}"


def generate_problem(
    seed: int, split: str, index: int, difficulty: Difficulty | None = None, pid: str | None = None
) -> Problem:
    """The problem at `index` of `split`; rejection-samples until every constraint holds."""
    d = difficulty or PRESETS["default"]
    base = f"sched-v1|{seed}|{split}|{index}|{difficulty_key(d)}"
    want = "test" if split == "test" else "train"
    for attempt in range(MAX_ATTEMPTS):
        spec = _draw(Rng(f"{base}|{attempt}"), d)
        if spec is None or split_bucket(spec) != want:
            continue
        if len(solve(spec)[1]) < 2:  # the gold answer must be a schedule the rules accept
            continue
        return with_optimum(spec, pid or f"{split}-{index:06d}")
    raise GenerationError(f"no problem met the difficulty constraints in {MAX_ATTEMPTS} attempts: {d}")


def generate_split(
    seed: int, split: str, size: int, difficulty: Difficulty | None = None, preset: str | None = None
) -> list[Problem]:
    return [generate_problem(seed, split, i, difficulty, problem_id(split, i, preset)) for i in range(size)]
