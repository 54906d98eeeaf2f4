"""A closed-loop curriculum (docs/contract.md section 7): keep a learner near a target success rate.

The generator is parametric, so the service can make problems of any difficulty when the learner needs
them. A curriculum session climbs a *ladder* of rungs, easiest first; each rung is a generator level
(`LEVELS`: event count, overlap density) and the share of prompts that carry the `guided` scaffold (the
events sorted by start time with their values); the rest use the published prompt (`default`). The
default ladder fades the scaffold as it climbs, and its top rungs are the test distribution on the
published prompt, then harder.

The loop, for a trainer that samples G completions per problem (GRPO):

1. `next(n)`: n problems, stratified over the rungs around the current one (by default a quarter one rung
   below, half on it, a quarter one above, allocated exactly, not sampled), each with its prompt.
2. The trainer scores the completions (`/v1/score`, stateless, unchanged) and reports each group's
   rewards: `report([(problem_id, [r1, ..., rG]), ...])`.
3. A completion succeeds when its reward reaches `success_reward`. After every `window` reported groups,
   the window's success rate moves the session one rung up (above `target + band`), one rung down (below
   `target - band`), or leaves it. A group success rate near 0.5 is where GRPO's group-relative advantage
   carries the most signal: all-fail and all-succeed groups teach nothing.

Everything here is a pure function of the session's state and the service's seed: the problems `next`
serves depend only on how many the session has served (`generate_problem(seed, "train", offset + i,
LEVELS[level])`), and their ids (`train-c3-000042`) name the level and index, so any replica with the same
seed resolves and scores them (`/v1/score` by id, stateless as ever), and a session rebuilt from its
stored state goes on exactly where it was. Problems are drawn from the train side of the split
partition: never a test problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from env_server.task.generator import generate_problem
from shared_schema import Difficulty, Problem, PromptStyle
from shared_schema.curriculum import CurriculumConfig, CurriculumState, GroupReport, Rung

# Generator levels, easiest first. Level 4 is the `default` preset: the published distribution, which
# the test split is drawn from.
LEVELS: tuple[Difficulty, ...] = (
    Difficulty(min_events=3, max_events=3, granularity=15, duration_step=15),
    Difficulty(min_events=3, max_events=4, granularity=5),
    Difficulty(min_events=4, max_events=5),
    Difficulty(min_events=4, max_events=6),
    Difficulty(),
    Difficulty(min_events=6, max_events=10, max_overlap_ratio=0.8),
    Difficulty(min_events=8, max_events=12, force_overlap_prob=0.3, max_overlap_ratio=1.0),
    Difficulty(min_events=12, max_events=20, force_overlap_prob=0.3, max_overlap_ratio=2.0),
)
TEST_LEVEL = 4

# The default ladder: the scaffold fades as the problems grow, rung 5 is the test distribution on the
# published prompt, rungs 6 and 7 go past it.
DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung(level=0, guided=1.0),
    Rung(level=1, guided=1.0),
    Rung(level=2, guided=0.75),
    Rung(level=3, guided=0.5),
    Rung(level=4, guided=0.25),
    Rung(level=4, guided=0.0),
    Rung(level=5, guided=0.0),
    Rung(level=6, guided=0.0),
)

_ID_RE = re.compile(r"train-c([0-9]{1,2})-([0-9]{6,12})")


class CurriculumError(ValueError):
    """A request the session cannot take (unknown problem, bad rewards): a 4xx, with this message."""


def curriculum_problem_id(level: int, index: int) -> str:
    return f"train-c{level}-{index:06d}"


def parse_curriculum_id(pid: str) -> tuple[int, int] | None:
    """(level, index) of a curriculum problem id, or None when `pid` is not one."""
    m = _ID_RE.fullmatch(pid)
    if m is None or int(m.group(1)) >= len(LEVELS):
        return None
    return int(m.group(1)), int(m.group(2))


def curriculum_problem(seed: int, level: int, index: int) -> Problem:
    """The problem a curriculum id names: the same on every replica with the same seed."""
    return generate_problem(seed, "train", index, LEVELS[level], curriculum_problem_id(level, index))


def ladder(config: CurriculumConfig) -> tuple[Rung, ...]:
    return tuple(config.rungs) if config.rungs else DEFAULT_LADDER


def new_state(session_id: str, config: CurriculumConfig) -> CurriculumState:
    rungs = ladder(config)
    if config.start_rung >= len(rungs):
        raise CurriculumError(f"start_rung {config.start_rung} is past the ladder's {len(rungs)} rungs")
    return CurriculumState(session_id=session_id, config=config, rung=config.start_rung)


def _allocate(n: int, weights: Sequence[float]) -> list[int]:
    """n split in proportion to `weights` by largest remainder (ties to the earlier), summing to n."""
    total = sum(weights)
    exact = [n * w / total for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _guided_count(n: int, share: float, served_on_rung: int) -> int:
    """How many of n prompts on a rung carry the scaffold: the share kept exactly over the rung's
    stream (so a share of 0.25 is one prompt in four, whatever the batch size)."""
    before = round(served_on_rung * share)
    return round((served_on_rung + n) * share) - before


def serve(
    state: CurriculumState, n: int, problem: Callable[[int, int], Problem]
) -> tuple[CurriculumState, list[tuple[Problem, PromptStyle, int]]]:
    """The next n problems, each with its prompt style and rung, and the state after serving them.
    `problem(level, index)` makes one (`curriculum_problem` with the service's seed; the service's store
    caches them for the scoring that follows)."""
    if n < 1:
        raise CurriculumError("n must be at least 1")
    config, rungs = state.config, ladder(state.config)
    spread = config.spread
    half = len(spread) // 2
    candidates = [state.rung + k - half for k in range(len(spread))]
    weights = [w if 0 <= r < len(rungs) else 0.0 for r, w in zip(candidates, spread, strict=True)]
    if sum(weights) == 0:
        weights = [1.0 if r == state.rung else 0.0 for r in candidates]
    served_per_rung = dict(state.served_per_rung)
    out: list[tuple[Problem, PromptStyle, int]] = []
    index = state.served
    for rung, count in zip(candidates, _allocate(n, weights), strict=True):
        if count == 0:
            continue
        level, share = rungs[rung].level, rungs[rung].guided
        key = str(rung)
        guided = _guided_count(count, share, served_per_rung.get(key, 0))
        served_per_rung[key] = served_per_rung.get(key, 0) + count
        for k in range(count):
            made = problem(level, config.offset + index)
            style: PromptStyle = "guided" if k < guided else "default"
            out.append((made, style, rung))
            index += 1
    pending = {**state.pending, **{p.id: rung for p, _, rung in out}}
    if len(pending) > config.max_pending:  # forget the oldest unreported problems
        pending = dict(list(pending.items())[-config.max_pending :])
    update = {"served": index, "served_per_rung": served_per_rung, "pending": pending}
    return state.model_copy(update=update), out


def report(state: CurriculumState, groups: Sequence[GroupReport]) -> CurriculumState:
    """The state after the trainer's rewards for some served problems: success counted, the rung moved
    after every full window. A problem this session did not serve is refused (`CurriculumError`); one
    reported lately is skipped, so a report retried after a lost answer counts once."""
    config, rungs = state.config, ladder(state.config)
    pending = dict(state.pending)
    recent = set(state.recent)
    fresh: list[GroupReport] = []
    for g in groups:
        if g.problem_id in recent:
            continue
        if g.problem_id not in pending:
            raise CurriculumError(f"problem {g.problem_id!r} was not served by this session")
        recent.add(g.problem_id)
        fresh.append(g)
        del pending[g.problem_id]
    rung = state.rung
    window_groups, window_successes = state.window_groups, state.window_successes
    window_completions = state.window_completions
    history = list(state.history)
    reported, moves = state.reported, state.moves
    for g in fresh:
        window_groups += 1
        window_successes += sum(r >= config.success_reward for r in g.rewards)
        window_completions += len(g.rewards)
        reported += 1
        if window_groups >= config.window:
            rate = window_successes / window_completions
            high, low = rate > config.target + config.band, rate < config.target - config.band
            new_rung = min(max(rung + (1 if high else -1 if low else 0), 0), len(rungs) - 1)
            history.append({"after_groups": reported, "success_rate": rate, "rung": new_rung})
            moves += new_rung != rung
            rung = new_rung
            window_groups = window_successes = window_completions = 0
    return state.model_copy(
        update={
            "rung": rung,
            "pending": pending,
            "recent": ([*state.recent, *(g.problem_id for g in fresh)])[-config.max_pending :],
            "reported": reported,
            "moves": moves,
            "window_groups": window_groups,
            "window_successes": window_successes,
            "window_completions": window_completions,
            "history": history[-config.max_history :] if config.max_history else [],
        }
    )
