"""Reward profiles: the gold answer earns the maximum, and every known hack gets exactly what docs/contract.md gives."""

from __future__ import annotations

import pytest

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, score_completion
from env_server.task.generator import PRESETS, generate_problem
from env_server.task.problems import gold_completion
from shared_schema import ProblemSpec

# A 09:00-10:00 (prio, 120)  B 09:30-11:00 (90)  C 10:00-10:30 (30)  D 11:00-12:00 (prio, 120)
# E 13:00-13:45 (45). Optimum A, C, D, E = 315 (A and C touch: allowed). B, D, E = 255.
SPEC = ProblemSpec(
    events=[
        {"name": "A", "start": "09:00", "end": "10:00"},
        {"name": "B", "start": "09:30", "end": "11:00"},
        {"name": "C", "start": "10:00", "end": "10:30"},
        {"name": "D", "start": "11:00", "end": "12:00"},
        {"name": "E", "start": "13:00", "end": "13:45"},
    ],
    priorities=["A", "D"],
)
OPT = 315
T = {"A": ("09:00", "10:00"), "B": ("09:30", "11:00"), "C": ("10:00", "10:30"), "D": ("11:00", "12:00"),
     "E": ("13:00", "13:45")}  # fmt: skip


def ev(name: str, start: str | None = None, end: str | None = None, raw_name: str | None = None) -> str:
    s, e = T.get(name, ("00:00", "00:30"))
    return (
        f"<event><name>{raw_name if raw_name is not None else name}</name>"
        f"<start>{start or s}</start><end>{end or e}</end></event>"
    )


def sched(*events: str) -> str:
    return "<schedule>\n" + "\n".join(events) + "\n</schedule>"


def answer(*events: str, think: str = "<think>reasoning</think>") -> str:
    return f"{think}\n{sched(*events)}"


GOLD = answer(ev("A"), ev("C"), ev("D"), ev("E"))
LEFT_AFTER_AB = 70 * (120 + 45) / OPT  # D and E survive dropping the overlapping pair

# (case, completion, default (format, order, score), default verdict, original (format, order, score))
CASES = [
    ("gold", GOLD, (10, 20, 70), "valid", (10, 20, 70 * 165 / OPT)),  # original: A-C touch counts
    (
        "no reasoning",
        sched(ev("A"), ev("C"), ev("D"), ev("E")),
        (0, 20, 70),
        "valid",
        (0, 20, 70 * 165 / OPT),
    ),
    ("single event", answer(ev("E")), (10, 0, 0), "too_few_events", (10, 0, 0)),
    ("one priority event alone", answer(ev("D")), (10, 0, 0), "too_few_events", (10, 0, 0)),
    ("duplicated event", answer(ev("A"), ev("C"), ev("C"), ev("D")), (10, 0, 0), "unknown_event", (10, 0, 0)),
    ("duplicate to pad", answer(ev("D"), ev("D")), (10, 0, 0), "unknown_event", (10, 0, 0)),
    (
        "invented event",
        answer(ev("A"), ev("C"), ev("Nap", "10:30", "11:00"), ev("D"), ev("E")),
        (10, 20, 0),
        "unknown_event",
        (10, 20, 0),
    ),
    (
        "altered end time",
        answer(ev("A"), ev("C", end="10:45"), ev("D"), ev("E")),
        (10, 20, 0),
        "unknown_event",
        (10, 20, 0),
    ),
    ("stretched priority", answer(ev("A", end="10:59"), ev("D")), (10, 20, 0), "unknown_event", (10, 20, 0)),
    (
        "unsorted",
        answer(ev("C"), ev("A"), ev("D"), ev("E")),
        (10, 0, 70),
        "unsorted",
        (10, 0, 70 * 165 / OPT),
    ),
    # original: B (ends 11:00) also "overlaps" D (starts 11:00) under the inclusive test, so only E is left
    (
        "overlap",
        answer(ev("A"), ev("B"), ev("D"), ev("E")),
        (10, 20, LEFT_AFTER_AB),
        "overlap",
        (10, 20, 70 * 45 / OPT),
    ),
    (
        "bare events only in reasoning",
        f"<think>{ev('A')}{ev('C')}{ev('D')}{ev('E')}</think>",
        (0, 0, 0),
        "format_error",
        (0, 20, 70 * 165 / OPT),
    ),
    (
        "schedule only in reasoning",
        f"<think>{sched(ev('A'), ev('C'), ev('D'), ev('E'))}</think>",
        (0, 20, 70),
        "valid",
        (0, 20, 70 * 165 / OPT),
    ),
    (
        "last block wins",
        answer(ev("A"), ev("C"), ev("D"), ev("E")) + sched(ev("D")),
        (0, 0, 0),
        "too_few_events",
        (10, 0, 0),
    ),
    (
        "good last block after junk",
        f"<think>r</think>{sched(ev('D'))}{sched(ev('A'), ev('C'), ev('D'), ev('E'))}",
        (0, 20, 70),
        "valid",
        (10, 0, 0),
    ),
    (
        "tag inside name",
        answer(ev("A", raw_name="<b>A</b>"), ev("C"), ev("D"), ev("E")),
        (0, 20, 70 * 195 / OPT),
        "valid",
        (10, 20, 70 * 195 / OPT),
    ),
    (
        "whitespace around names and tags",
        "<think>r</think>\n<schedule>\n  <event>\n    <name>  A </name>\n    <start>09:00</start>\n"
        "    <end>10:00</end>\n  </event>\n  <event> <name>\tC\n</name> <start>10:00</start> <end>10:30</end>"
        " </event>\n</schedule>\n",
        (10, 20, 70 * 150 / OPT),
        "valid",
        (10, 20, 0),
    ),
    (
        "space inside a time",
        answer(ev("A", start="09 :00"), ev("C"), ev("D")),
        (0, 20, 70 * 150 / OPT),
        "valid",
        (10, 20, 70 * 150 / OPT),
    ),
    (
        "empty reasoning",
        answer(ev("A"), ev("C"), ev("D"), ev("E"), think="<think></think>"),
        (0, 20, 70),
        "valid",
        (0, 20, 70 * 165 / OPT),
    ),
    (
        "blank reasoning",
        answer(ev("A"), ev("C"), ev("D"), ev("E"), think="<think> \n </think>"),
        (0, 20, 70),
        "valid",
        (10, 20, 70 * 165 / OPT),
    ),
    ("text after the schedule", GOLD + "\nHope this helps!", (0, 20, 70), "valid", (10, 20, 70 * 165 / OPT)),
    ("empty schedule", answer(), (0, 0, 0), "format_error", (0, 0, 0)),
    ("nothing", "", (0, 0, 0), "format_error", (0, 0, 0)),
    # the published pattern's \d takes any Unicode digit; the times then fail to match the input event
    ("unicode digits", answer(ev("A"), ev("C", start="١٠:٠٠")), (0, 0, 0), "too_few_events", (10, 20, 0)),
]


@pytest.mark.parametrize(
    ("case", "completion", "default", "verdict", "original"), CASES, ids=[c[0] for c in CASES]
)
def test_hack_cases_get_exactly_the_spec_reward(
    case: str,
    completion: str,
    default: tuple[float, float, float],
    verdict: str,
    original: tuple[float, float, float],
) -> None:
    index = index_problem(SPEC)
    assert index.optimal_score == OPT
    d = score_completion(completion, index, PROFILES["default"])
    assert (d.components["format"], d.components["order"], d.components["score"]) == pytest.approx(default)
    assert d.reward == pytest.approx(sum(default))
    assert d.verdict is not None and d.verdict.value == verdict
    o = score_completion(completion, index, PROFILES["original"])
    assert (o.components["format"], o.components["order"], o.components["score"]) == pytest.approx(original)
    assert o.reward == pytest.approx(sum(original))


def test_valid_score_ratio_and_violations() -> None:
    index = index_problem(SPEC)
    r = score_completion(answer(ev("B"), ev("D"), ev("E")), index, PROFILES["default"])
    assert r.verdict is not None and r.verdict.value == "valid"
    assert r.score_ratio == pytest.approx(255 / OPT)
    assert r.violations == []
    bad = score_completion(answer(ev("A"), ev("B"), ev("B"), ev("Zed")), index, PROFILES["default"])
    kinds = [v.type for v in bad.violations]
    assert kinds == ["unknown_event", "repeated_event", "unsorted", "unsorted", "overlap"]
    assert bad.violations[-1].indices == [0, 1]  # the repeat of B is reported once, as a repeat
    assert bad.score_ratio == 0.0


def test_long_completion_is_scored_on_its_first_part() -> None:
    index = index_problem(SPEC)
    long = GOLD + " " * 200
    r = score_completion(long, index, PROFILES["default"], max_chars=len(GOLD))
    assert r.reward == 100.0 and r.violations[0].type == "truncated"
    cut = score_completion(long, index, PROFILES["default"], max_chars=len(GOLD) - 5)
    assert cut.reward == 0.0 and cut.verdict is not None and cut.verdict.value == "format_error"


@pytest.mark.parametrize("split", ["train", "test"])
def test_gold_answer_earns_100_on_every_generated_problem(split: str) -> None:
    profile = PROFILES["default"]
    for i in range(1500):
        p = generate_problem(seed=7, split=split, index=i)
        r = score_completion(gold_completion(p), index_problem(p), profile)
        assert r.reward == 100.0, (p.id, r)
        assert r.verdict is not None and r.verdict.value == "valid" and r.score_ratio == 1.0


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_gold_answer_earns_100_for_every_preset(preset: str) -> None:
    for i in range(40):
        p = generate_problem(seed=3, split="train", index=i, difficulty=PRESETS[preset])
        r = score_completion(gold_completion(p), index_problem(p), PROFILES["default"])
        assert r.reward == 100.0, (preset, p.id, r)


def test_profiles_are_data() -> None:
    for profile in PROFILES.values():
        info = profile.info()
        assert [c.name for c in info.components] == ["format", "order", "score"]
        assert info.max_reward == 100.0


@pytest.mark.parametrize(
    ("completion", "default", "original"),
    [
        (GOLD, ("valid", 1.0), ("valid", 1.0)),  # touching A-C is no overlap for the verdict, in both
        (f"<think>{ev('A')}</think>{sched(ev('C'), ev('D'))}", ("valid", 150 / OPT), ("valid", 270 / OPT)),
        (f"<think>{ev('A')}{ev('C')}</think> no schedule tags", ("format_error", 0.0), ("format_error", 0.0)),
        (answer(ev("A", raw_name=" A"), ev("C")), ("valid", 150 / OPT), ("unknown_event", 0.0)),
        ("<schedule><event><name>A</name></event></schedule>", ("format_error", 0.0), ("format_error", 0.0)),
    ],
    ids=["gold", "events in reasoning", "no schedule block", "padded name", "malformed event"],
)
def test_verdict_under_each_profile(
    completion: str, default: tuple[str, float], original: tuple[str, float]
) -> None:
    index = index_problem(SPEC)
    for name, (verdict, ratio) in (("default", default), ("original", original)):
        r = score_completion(completion, index, PROFILES[name])
        assert r.verdict is not None and (r.verdict.value, r.score_ratio) == (
            verdict,
            pytest.approx(ratio),
        ), name
