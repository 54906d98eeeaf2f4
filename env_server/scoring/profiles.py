"""Reward profiles (docs/contract.md section 4) and the one scoring path every caller goes through.

A profile is data: a parser, and named components with weights. Each component is a pure function of the
analysis that returns a fraction in [0, 1]; its points are `weight × fraction`. Adding a component or a
profile touches only `PROFILES`.
"""

from __future__ import annotations

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

REWARD_VERSION = "1.0.0"
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
    # `score_reference` for this profile in C, when built (`_native_default`); results are identical
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


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="default",
            description="Exact, hack-resistant reward: last schedule block only, strict format, "
            "touching events do not overlap.",
            parse=parse_strict,
            components=(
                Component(
                    "format",
                    10.0,
                    format_component,
                    "one non-empty <think> block, then one <schedule> block holding only well-formed events",
                ),
                Component(
                    "order", 20.0, order_component, "at least 2 events, start times strictly increasing"
                ),
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


def _native_default(profile: Profile) -> Profile:
    """The `default` profile with its `score` in C (`_core.score_strict`), when the extension is built and
    the profile is the one the C code implements: the strict parser and the three default components."""
    try:
        from env_server.scoring import _core
    except ImportError:  # not built: the reference runs
        return profile
    if not hasattr(_core, "score_strict"):  # an extension built before it had one: the reference runs
        return profile
    if profile.parse is not _core.parse_strict or tuple(c.fn for c in profile.components) != (
        format_component,
        order_component,
        score_component,
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
    _core.setup_score(
        tuple(c.name for c in profile.components),
        tuple(c.weight for c in profile.components),
        tuple(v.value for v in verdicts),
    )
    return replace(profile, native=_core.score_strict)


PROFILES[DEFAULT_PROFILE] = _native_default(PROFILES[DEFAULT_PROFILE])


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
