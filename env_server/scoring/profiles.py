"""Reward profiles (docs/contract.md section 4) and the one scoring path every caller goes through.

A profile is data: a parser, and named components with weights. Each component is a pure function of the
analysis that returns a fraction in [0, 1]; its points are `weight × fraction`. Adding a component or a
profile touches only `PROFILES`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import lt
from typing import Any, cast

from env_server.scoring.checks import Analysis, analyse, in_overlap, verdict, violations
from env_server.scoring.index import ProblemIndex
from env_server.scoring.parsing import Parsed, parse_published, parse_strict
from shared_schema import ComponentInfo, ProfileInfo, ScoreResult, Verdict

# A result in its wire shape (`shared_schema.ScoreResult` as JSON, same keys in the same order). The core
# builds these plain dicts: the service writes them straight out with a fast JSON encoder, and callers that
# want a model get one from `score_completion`.
WireResult = dict[str, Any]
WireEvent = dict[str, Any]  # `shared_schema.ReadEvent` as JSON
_VALID = Verdict.valid

REWARD_VERSION = "1.1.0"
DEFAULT_PROFILE = "default"

ComponentFn = Callable[[Analysis, ProblemIndex], float]
# The whole of `score_reference` for one profile, written in C: (completion, problem, max_chars) -> result
NativeScore = Callable[[str, ProblemIndex, int | None], WireResult]


@dataclass(frozen=True)
class Component:
    name: str
    weight: float
    fn: ComponentFn
    description: str


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    parse: Callable[[str], Parsed]
    components: tuple[Component, ...]
    # (name, weight, fn) of each component: what `score` reads, without attribute look-ups per item
    terms: tuple[tuple[str, float, ComponentFn], ...] = field(init=False, repr=False, compare=False)
    # `score_reference` for this profile in C, when built (`_native`); results are identical
    native: NativeScore | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple((c.name, c.weight, c.fn) for c in self.components))

    @property
    def max_reward(self) -> float:
        return sum(c.weight for c in self.components)

    def info(self) -> ProfileInfo:
        return ProfileInfo(
            name=self.name,
            description=self.description,
            components=[
                ComponentInfo(name=c.name, weight=c.weight, description=c.description)
                for c in self.components
            ],
            max_reward=self.max_reward,
        )


def format_component(a: Analysis, _: ProblemIndex) -> float:
    return 1.0 if a.parsed.format_ok else 0.0


def order_component(a: Analysis, _: ProblemIndex) -> float:
    return 1.0 if a.n_events >= 2 and a.sorted else 0.0


def _kept_value(problem: ProblemIndex, keys: Sequence[int], inclusive: bool) -> float:
    """Σ weight × duration of the events left after dropping both events of every overlapping pair."""
    spans, values = problem.spans, problem.values
    dropped = in_overlap([spans[k] for k in keys], inclusive=inclusive)
    kept = sum([values[k] for k, d in zip(keys, dropped, strict=True) if not d])
    return kept / problem.optimal_score


def score_component(a: Analysis, problem: ProblemIndex) -> float:
    """`default`: 0 unless ≥ 2 events, all input events, none repeated; overlapping pairs dropped."""
    if a.n_events < 2 or not a.all_known or a.repeated:
        return 0.0
    if a.disjoint:  # nothing overlaps: nothing is dropped
        return a.value / problem.optimal_score
    return _kept_value(problem, cast("tuple[int, ...]", a.matches), inclusive=False)  # all known


def original_score_component(a: Analysis, problem: ProblemIndex) -> float:
    """`original`: the set of distinct matched events must be as large as the parsed list and ≥ 2;
    pairs overlapping under the inclusive test (touching counts) are dropped."""
    if a.all_known and not a.repeated:
        if a.n_events < 2:
            return 0.0
        # Disjoint with no two events touching: nothing is dropped. (Which events overlap another does
        # not depend on their order, so the written order serves as well as the input order.)
        if a.disjoint and all(map(lt, a.parsed.ends, a.parsed.starts[1:])):
            return a.value / problem.optimal_score
        distinct: list[int] = sorted(cast("tuple[int, ...]", a.matches))  # all known: no None
    else:
        distinct = sorted({m for m in a.matches if m is not None})
    if len(distinct) < a.n_events or len(distinct) < 2:
        return 0.0
    return _kept_value(problem, distinct, inclusive=True)


def best_subset_and_pairs(spans: Sequence[tuple[int, int]], values: Sequence[int]) -> tuple[int, int]:
    """(the largest Σ value of pairwise non-overlapping spans, the number of overlapping pairs), exclusive
    test (touching spans do not overlap); O(n log n): weighted interval scheduling by end, pairs by a
    binary search over sorted starts. Every span ends after it starts (a problem's events do)."""
    by_end = sorted(range(len(spans)), key=lambda i: spans[i][1])
    ends = [spans[i][1] for i in by_end]
    best = [0] * (len(spans) + 1)  # best[j]: the best over the first j spans by end
    for j, i in enumerate(by_end):
        start = spans[i][0]
        before = bisect_right(ends, start, 0, j)  # spans ending by `start` come first in end order
        best[j + 1] = max(best[j], best[before] + values[i])
    by_start = sorted(spans)
    starts = [start for start, _ in by_start]
    pairs = 0
    for k, (_, end) in enumerate(by_start):  # later starters (ties too) that start before this one ends
        pairs += bisect_left(starts, end, k + 1) - (k + 1)
    return best[-1], pairs


def graded_score_component(a: Analysis, problem: ProblemIndex) -> float:
    """`graded`: 0 unless ≥ 2 events, all input events, none repeated; otherwise the best non-overlapping
    subset of the answer's events, as a fraction of the optimum, halved for every overlapping pair."""
    if a.n_events < 2 or not a.all_known or a.repeated:
        return 0.0
    if a.disjoint:  # nothing overlaps: the answer is its own best subset, no pair halves it
        return a.value / problem.optimal_score
    keys = cast("tuple[int, ...]", a.matches)  # all known
    best, pairs = best_subset_and_pairs([problem.spans[k] for k in keys], [problem.values[k] for k in keys])
    return best / problem.optimal_score * 0.5**pairs


# The `format` and `order` components of the profiles that read with the strict parser
STRICT_FORMAT = Component(
    "format",
    10.0,
    format_component,
    "one non-empty <think> block, then one <schedule> block holding only well-formed events",
)
ORDER = Component("order", 20.0, order_component, "at least 2 events, start times strictly increasing")


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="default",
            description="Exact, hack-resistant reward: last schedule block only, strict format, "
            "touching events do not overlap.",
            parse=parse_strict,
            components=(
                STRICT_FORMAT,
                ORDER,
                Component(
                    "score",
                    70.0,
                    score_component,
                    "70 × Σ weight × duration of input events left "
                    "after dropping every overlapping pair / optimal_score; 0 if fewer than 2 "
                    "events, any unknown or repeated",
                ),
            ),
        ),
        Profile(
            name="original",
            description="The published training rewards reproduced exactly, quirks included "
            "(events anywhere, inclusive overlap test).",
            parse=parse_published,
            components=(
                Component("format", 10.0, format_component, "published format regex matches from the start"),
                Component(
                    "order", 20.0, order_component, "at least 2 events, start minutes strictly increasing"
                ),
                Component(
                    "score",
                    70.0,
                    original_score_component,
                    "published score: distinct matched "
                    "events, inclusive overlap pairs dropped, fraction of optimal_score",
                ),
            ),
        ),
        Profile(
            name="graded",
            description="As `default`, but an overlapping answer keeps its best non-overlapping part, "
            "halved for every overlapping pair (the overlap reward study, docs/reward-study.md).",
            parse=parse_strict,
            components=(
                STRICT_FORMAT,
                ORDER,
                Component(
                    "score",
                    70.0,
                    graded_score_component,
                    "70 × Σ weight × duration of the best non-overlapping subset of the answer's events "
                    "/ optimal_score × 0.5 ** (overlapping pairs); 0 if fewer than 2 events, any unknown "
                    "or repeated",
                ),
            ),
        ),
    )
}


def score(
    completion: str, problem: ProblemIndex, profile: Profile, max_chars: int | None = None
) -> WireResult:
    """Score one completion: reward, components, verdict, score ratio and violations, as a wire dict.

    This is the scoring core: `/v1/score`, the integrations, training, evaluation and rescoring all come
    here. A completion longer than `max_chars` is scored on its first `max_chars` characters (a `truncated`
    violation says so); this keeps every request's cost bounded and still gives a long rambling answer
    the low reward it earns rather than no reward at all.

    `score_reference` is the specification; a profile with a `native` version (the `default` profile,
    when the C extension is built) runs that instead, with the same result to the bit
    (tests/env_server/scoring/test_core_c.py).
    """
    native = profile.native
    if native is not None:
        return native(completion, problem, max_chars)
    return score_reference(completion, problem, profile, max_chars)


def _analysed(
    completion: str, problem: ProblemIndex, profile: Profile, max_chars: int | None
) -> tuple[Analysis, bool]:
    """The profile's reading of the first `max_chars` characters, analysed; and whether it was cut."""
    truncated = max_chars is not None and len(completion) > max_chars
    return analyse(profile.parse(completion[:max_chars] if truncated else completion), problem), truncated


def score_reference(
    completion: str, problem: ProblemIndex, profile: Profile, max_chars: int | None = None
) -> WireResult:
    """`score` in Python, for every profile: parse, analyse, the profile's components, the verdict."""
    a, truncated = _analysed(completion, problem, profile, max_chars)
    components = {}
    for name, weight, fn in profile.terms:
        components[name] = weight * fn(a, problem)
    v, ratio = verdict(a, problem)
    found = [] if v is _VALID else violations(a)  # valid: no rule is broken, nothing to look for
    if truncated:
        found.insert(
            0,
            {
                "type": "truncated",
                "indices": [],
                "events": [],
                "message": f"completion has {len(completion)} characters; scored on the first {max_chars}",
            },
        )
    return {
        "reward": sum(components.values()),
        "components": components,
        "verdict": v._value_,
        "score_ratio": ratio,
        "optimal_score": problem.optimal_score,
        "violations": found,
        "error": None,
    }


def read_events(
    completion: str, problem: ProblemIndex, profile: Profile, max_chars: int | None = None
) -> list[WireEvent]:
    """The events `profile` reads from `completion`, in order, as `score_reference` reads them (the same
    `_analysed` reading), each with its position in the problem's events (None when it is not one of
    them): position i here is position i in the violations' `indices`. Wire dicts of
    `shared_schema.ReadEvent`."""
    a, _ = _analysed(completion, problem, profile, max_chars)
    p = a.parsed
    rows = zip(p.keys, p.starts, p.ends, a.matches, strict=True)
    return [
        {"name": n, "start": s, "end": e, "start_min": a, "end_min": b, "problem_index": m}
        for (n, s, e), a, b, m in rows
    ]


def score_and_read(
    completion: str, problem: ProblemIndex, profile: Profile, max_chars: int | None = None
) -> WireResult:
    """`score`, with the events it read (`read_events`) under `events`: what `return_events` asks for.

    The completion is read a second time (the C core does not hand its reading out), so only requests
    that ask pay for it."""
    result = score(completion, problem, profile, max_chars)
    result["events"] = read_events(completion, problem, profile, max_chars)
    return result


def _native(profile: Profile) -> Profile:
    """`profile` with its `score` in C, when the extension is built and the profile is one the C code
    implements: the strict parser, `format` 10, `order` 20 and the `default` (`_core.score_strict`) or
    `graded` (`_core.score_graded`) `score` 70."""
    try:
        from env_server.scoring import _core
    except ImportError:  # not built: the reference runs
        return profile
    if not hasattr(_core, "score_graded"):  # an extension built before it had one: the reference runs
        return profile
    natives = {score_component: _core.score_strict, graded_score_component: _core.score_graded}
    fns = tuple(c.fn for c in profile.components)
    if (
        profile.parse is not _core.parse_strict
        or fns[:2] != (format_component, order_component)
        or len(fns) != 3
        or fns[2] not in natives
    ):
        return profile
    verdicts = (
        Verdict.format_error,
        Verdict.too_few_events,
        Verdict.unknown_event,
        Verdict.unsorted,
        Verdict.overlap,
        Verdict.valid,
    )
    names, weights = tuple(c.name for c in profile.components), tuple(c.weight for c in profile.components)
    if (names, weights) != (("format", "order", "score"), (10.0, 20.0, 70.0)):
        return profile  # the C code holds one set of names and weights, shared by both profiles
    _core.setup_score(names, weights, tuple(v.value for v in verdicts))
    return replace(profile, native=natives[fns[2]])


for _name in (DEFAULT_PROFILE, "graded"):
    PROFILES[_name] = _native(PROFILES[_name])


def error_result(message: str) -> WireResult:
    """The wire result of an item that could not be scored: null reward and verdict, and why."""
    return {
        "reward": None,
        "components": {},
        "verdict": None,
        "score_ratio": None,
        "optimal_score": None,
        "violations": [],
        "error": message,
    }


def score_completion(
    completion: str, problem: ProblemIndex, profile: Profile, max_chars: int | None = None
) -> ScoreResult:
    """`score` as a `ScoreResult` model (for callers that want attributes rather than the wire dict)."""
    return ScoreResult.model_validate(score(completion, problem, profile, max_chars))


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; available: {sorted(PROFILES)}") from None
