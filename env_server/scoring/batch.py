"""Batch scoring: the single path behind `/v1/score`, the `score` CLI and every integration.

`score_batch` is the loop every caller goes through; `profiles.score` scores one completion. Inline problems
are indexed (validated and solved) once per distinct content, through a `ProblemCache`: the completions of
a GRPO group share one problem, and the same problems come back every epoch. A batch can carry a
deadline (`time.monotonic()` value); past it, `TimeBudgetExceeded` stops the work between two items.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import orjson

from env_server.scoring.index import ProblemIndex, index_problem
from env_server.scoring.profiles import Profile, WireResult, error_result, score, score_and_read
from shared_schema import ProblemSpec, ScoreItem, ScoreResult
from shared_schema.text import clip

Lookup = Callable[[str], ProblemIndex | None]
# (scoring index or None when the problem is unknown, the problem id for the error message, completion)
Entry = tuple[ProblemIndex | None, str | None, str]


_paused = 0
# Past this many frozen objects the next pause unfreezes them all instead (one ordinary full collection
# then walks them): whatever cyclic garbage a freeze caught is freed, so it cannot pile up over a long run.
_FREEZE_LIMIT = 4_000_000
_clean = True  # no paused block has failed since the collector was last paused
_paused_lock = threading.Lock()


@dataclass
class Pause:
    """A `collector_paused` block: set `freeze` to False when the work failed (see there)."""

    freeze: bool = True


@contextmanager
def collector_paused() -> Iterator[Pause]:
    """Pause the cyclic garbage collector while a large request builds its objects.

    A big batch builds hundreds of thousands of small dicts and lists (results, violations) that stay
    alive until the response is written, and every full collection walks all of them again: pauses of
    0.1 s that stall every other request in the worker. Scoring makes no reference cycles, so reference
    counting frees all of it; collection resumes when the last large request in the process is done.

    What such a request leaves alive (the indexes of new inline problems: 60 problems of 2,000 events are
    some 400 k objects) is then moved out of the collector's scans (`gc.freeze`, which takes no time),
    or the first young collection after the pause would walk all of it at once: 0.1 s with the
    interpreter held, `/health` waiting. Frozen objects are still freed by reference counting; cyclic
    garbage caught by a freeze is freed once the frozen count passes `_FREEZE_LIMIT` (unfrozen then).
    Work that failed (an exception out of the block, or `Pause.freeze` set to False for an error answered
    inside it) is not frozen: its exception and traceback are reference cycles holding the request's body,
    which the collection after a failed large request (`errors.collect_after_large_failure`) must still see.
    """
    global _paused, _clean
    with _paused_lock:
        _paused += 1
        gc.disable()
    pause = Pause()
    try:
        yield pause
    except BaseException:
        pause.freeze = False
        raise
    finally:
        with _paused_lock:
            _paused -= 1
            _clean = _clean and pause.freeze  # one failure in a paused stretch: freeze none of it
            if _paused == 0:
                if gc.get_freeze_count() > _FREEZE_LIMIT:
                    gc.unfreeze()
                elif _clean:
                    gc.freeze()
                _clean = True
                gc.enable()


class TimeBudgetExceeded(Exception):
    """A request ran past its time budget; the service answers 503 and the work stops."""


class ProblemCache:
    """LRU of the scoring indexes of inline problems, keyed by content (its JSON).

    Two problems with the same content validate, solve and index the same way, so the work is done once
    per distinct problem. Safe to share between the event loop and worker threads.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # key: the problem's JSON as sent (bytes), or a spec's (str)
        self._items: OrderedDict[bytes | str, ProblemIndex] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _get(self, key: bytes | str) -> ProblemIndex | None:
        with self._lock:
            index = self._items.get(key)
            if index is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return index

    def _put(self, key: bytes | str, index: ProblemIndex) -> None:
        with self._lock:
            self.misses += 1
            if self.size <= 0:
                return
            self._items[key] = index
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def index_json(self, raw: bytes) -> ProblemIndex:
        """The index of a problem given as the JSON text of an object, as sent (the text is the key: a
        client sends the same problem the same way); raises `orjson.JSONDecodeError` if it is not JSON
        and `ValidationError` if it is not a valid `ProblemSpec` (invalid problems are never cached)."""
        index = self._get(raw)
        if index is None:
            index = index_problem(ProblemSpec.model_validate(orjson.loads(raw)))
            self._put(raw, index)
        return index

    def index_spec(self, spec: ProblemSpec) -> ProblemIndex:
        """The index of an already validated problem."""
        key = spec.model_dump_json()  # a str never equals the bytes keys of raw problems
        index = self._get(key)
        if index is None:
            index = index_problem(spec)
            self._put(key, index)
        return index

    def __len__(self) -> int:
        return len(self._items)


def score_batch(
    entries: Sequence[Entry],
    profile: Profile,
    max_chars: int | None = None,
    deadline: float | None = None,
    events: bool = False,
) -> list[WireResult]:
    """One wire result per entry, in order. An entry whose problem is unknown gets `error` and a null
    reward; the rest of the batch is still scored. With `events`, each result also carries the events
    the profile read (`profiles.read_events`; null for an error), as `ScoreRequest.return_events` asks."""
    results = []
    clock = time.monotonic
    scorer = score_and_read if events else score  # chosen once: no per-item cost when not asked
    for index, problem_id, completion in entries:
        if deadline is not None and clock() > deadline:
            raise TimeBudgetExceeded
        if index is None:
            error = error_result(f"unknown problem_id {clip(problem_id)}")
            if events:
                error["events"] = None
            results.append(error)
        else:
            results.append(scorer(completion, index, profile, max_chars))
    return results


def entries_of(
    items: Sequence[ScoreItem], lookup: Lookup, problems: ProblemCache | None = None
) -> list[Entry]:
    """Resolve validated items to scoring indexes: inline problems through `problems` (or indexed here
    when no cache is given), ids through `lookup`."""
    out: list[Entry] = []
    for item in items:
        index: ProblemIndex | None
        if item.problem is not None:
            index = problems.index_spec(item.problem) if problems else index_problem(item.problem)
        else:
            index = lookup(item.problem_id or "")
        out.append((index, item.problem_id, item.completion))
    return out


def score_items_wire(
    items: Sequence[ScoreItem],
    profile: Profile,
    lookup: Lookup,
    max_chars: int | None = None,
    problems: ProblemCache | None = None,
    deadline: float | None = None,
    events: bool = False,
) -> list[WireResult]:
    """`score_batch` over validated `ScoreItem`s, as wire dicts."""
    return score_batch(entries_of(items, lookup, problems), profile, max_chars, deadline, events)


def score_items(
    items: Sequence[ScoreItem],
    profile: Profile,
    lookup: Lookup,
    max_chars: int | None = None,
    problems: ProblemCache | None = None,
    deadline: float | None = None,
    events: bool = False,
) -> list[ScoreResult]:
    """`score_items_wire` as `ScoreResult` models."""
    wire = score_items_wire(items, profile, lookup, max_chars, problems, deadline, events)
    return [ScoreResult.model_validate(r) for r in wire]
