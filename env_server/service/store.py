"""The problems a service instance serves: generated splits (or files), looked up by id.

Ids are self-describing (`train-000042`, `test-hard-000007`, a curriculum's `train-c3-000042`), so any
replica with the same settings resolves any id without shared state. Problems of presets other than the
main one, and curriculum problems, are generated on first use and kept in a bounded LRU cache.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from env_server.scoring.index import ProblemIndex, index_problem
from env_server.service.settings import Settings
from env_server.task.curriculum import curriculum_problem, curriculum_problem_id, parse_curriculum_id
from env_server.task.files import load_problems
from env_server.task.generator import PRESETS, generate_problem, generate_split, problem_id
from shared_schema import Problem

SPLITS = ("train", "test")
FREEZE_EVERY = 256


def long_lived() -> None:
    """Move every object alive now out of the cyclic collector's scans (after collecting the young
    generations, so little garbage goes with them).

    The served problems are many small objects that live as long as the process; each full collection
    walks all of them, pausing every request in the worker, `/health` included, for 0.1 s per ~250 k
    objects. Frozen objects are still freed by reference counting when the cache drops them.
    """
    gc.collect(1)
    gc.freeze()


_ID_RE = re.compile(r"(train|test)-(?:([a-z0-9_]{1,32})-)?([0-9]{6,12})")  # matched whole (fullmatch)


@dataclass(frozen=True, slots=True)
class Entry:
    problem: Problem
    index: ProblemIndex


class ProblemStore:
    def __init__(self, settings: Settings) -> None:
        if settings.difficulty not in PRESETS:
            raise ValueError(f"unknown difficulty {settings.difficulty!r}; presets: {sorted(PRESETS)}")
        self.settings = settings
        self.sources: dict[str, str] = {}
        self.splits: dict[str, list[Problem]] = {}
        self.mismatches: dict[str, int] = {}
        sizes = {"train": settings.train_size, "test": settings.test_size}
        files = {"train": settings.train_file, "test": settings.test_file}
        for split in SPLITS:
            path = files[split]
            if path is not None:
                problems, mismatches = load_problems(path, split)
                self.sources[split] = f"file:{path.name}"  # the name only: no server paths in /v1/info
                self.mismatches[split] = len(mismatches)
            else:
                problems = generate_split(settings.seed, split, sizes[split], PRESETS[settings.difficulty])
                self.sources[split] = f"generated:{settings.difficulty}"
            self.splits[split] = problems
        self._by_id = {
            p.id: Entry(p, index_problem(p, p.optimal_score)) for ps in self.splits.values() for p in ps
        }
        self._cache: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._fresh = 0  # cache entries added since the last `long_lived()`

    def size(self, split: str) -> int:
        return len(self.splits[split])

    def _preset_entry(self, split: str, preset: str, index: int) -> Entry:
        pid = problem_id(split, index, preset)
        return self._cached(
            pid, lambda: generate_problem(self.settings.seed, split, index, PRESETS[preset], pid)
        )

    def curriculum_entry(self, level: int, index: int) -> Entry:
        """A curriculum problem (`train-c3-000042`, env_server/task/curriculum.py), generated on first use."""
        pid = curriculum_problem_id(level, index)
        return self._cached(pid, lambda: curriculum_problem(self.settings.seed, level, index))

    def _cached(self, pid: str, make: Callable[[], Problem]) -> Entry:
        with self._lock:  # requests run on worker threads too
            hit = self._cache.get(pid)
            if hit is not None:
                self._cache.move_to_end(pid)
                return hit
        p = make()
        entry = Entry(p, index_problem(p, p.optimal_score))
        if self.settings.preset_cache_size:
            with self._lock:
                self._cache[pid] = entry
                if len(self._cache) > self.settings.preset_cache_size:
                    self._cache.popitem(last=False)
                self._fresh += 1
                freeze, self._fresh = self._fresh >= FREEZE_EVERY, self._fresh % FREEZE_EVERY
            if freeze:
                long_lived()
        return entry

    def _generated(self, split: str) -> bool:
        return self.sources[split].startswith("generated")

    def page(
        self, split: str, offset: int, limit: int, preset: str | None = None, deadline: float | None = None
    ) -> list[Problem]:
        """Problems [offset, offset + limit) of a split, in the main preset or another one.

        Generating problems of another preset takes time; past `deadline` (a `time.monotonic()` value)
        `TimeoutError` stops it."""
        if preset is None or (preset == self.settings.difficulty and self._generated(split)):
            return self.splits[split][offset : offset + limit]
        if preset not in PRESETS:
            raise ValueError(f"unknown difficulty {preset!r}; presets: {sorted(PRESETS)}")
        if not self._generated(split):
            raise ValueError(f"split {split!r} is served from a file; it has no difficulty presets")
        end = min(offset + limit, self.size(split))
        out = []
        for i in range(offset, end):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("page generation ran past its time budget")
            out.append(self._preset_entry(split, preset, i).problem)
        return out

    def resident(self, pid: str) -> ProblemIndex | None:
        """The scoring index of `pid` if it is in memory now (a main-split or cached problem), else None:
        never generates, so it is cheap enough to call on the event loop."""
        entry = self._by_id.get(pid) or self._cache.get(pid)
        return None if entry is None else entry.index

    def get(self, pid: str) -> Entry | None:
        """The problem with this id, or None if this instance does not serve it."""
        entry = self._by_id.get(pid)
        if entry is not None:
            return entry
        curriculum = parse_curriculum_id(pid)
        if curriculum is not None:
            return self.curriculum_entry(*curriculum)
        m = _ID_RE.fullmatch(pid)
        if m is None or m.group(2) is None:
            return None
        split, preset, index = m.group(1), m.group(2), int(m.group(3))
        if preset not in PRESETS or preset == self.settings.difficulty:
            return None  # the main preset's ids carry no preset part
        if index >= self.size(split) or not self._generated(split):
            return None
        return self._preset_entry(split, preset, index)

    def index(self, pid: str) -> ProblemIndex | None:
        """The scoring index of a served problem, or None: the lookup `score_items` takes."""
        entry = self.get(pid)
        return None if entry is None else entry.index

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.settings.seed,
            "difficulty": self.settings.difficulty,
            "sources": self.sources,
            "imported_optimal_score_mismatches": self.mismatches,
        }
