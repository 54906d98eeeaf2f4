"""The C steps of the scoring core (`env_server/scoring/_core.c`) against their Python specifications.

`parsing.parse_strict`, `checks.analyse` and `checks.violations` are the C functions when
`python -m env_server.scoring.native` built the extension, and so is the whole of `profiles.score` under the
`default` profile (`_core.score_strict`, against `profiles.score_reference`). `parse_strict` must return what `parsing.parse_strict_reference` returns, field by field
and of the same type, for every string: token soups around every branch of the event pattern and the
format check, white space and digits outside ASCII, text stored as 1-, 2- and 4-byte characters, and
mutations of realistic answers. `analyse` and `violations` must return what `checks.analyse_reference` and
`checks.violations_reference` return for what either parser produces, and for generated schedules full
of repeats, unknown events, ties and overlaps (the messages too, names with quotes and escapes included).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.scoring import checks, native, parsing
from env_server.scoring.checks import Analysis, analyse_reference, violations_reference
from env_server.scoring.index import ProblemIndex, index_problem
from env_server.scoring.parsing import Parsed, parse_published, parse_strict_reference
from env_server.scoring.profiles import PROFILES, WireResult, score, score_reference
from env_server.task.generator import PRESETS, generate_problem
from env_server.task.problems import gold_completion
from shared_schema import Event, ProblemSpec

try:
    from env_server.scoring import _core
except ImportError:  # pragma: no cover - only without a C compiler
    _core = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(
    _core is None and not any(f.is_file() for f in native.compiled_files("_core")),
    reason="the C parser is not built (no C compiler): parse_strict is the Python reference",
)

EVENT = "<event><name>A</name><start>09:00</start><end>10:00</end></event>"
TOKENS = [
    "<think>", "</think>", "think>", "<schedule>", "</schedule>", "<event>", "</event>", "<name>", "</name>",
    "<start>", "</start>", "<end>", "</end>", "09:00", "10:30", "9:00", "٠٩:٠٠", "1O:00", "99:99", ":",
    "<", "/", ">", "A", "Gym", " Gym ", "é", "日", "😀", " ", "\n", "\t", "\u2003", "\u3000", "\x1c",
    "\x85", "\xa0", "\u200b", EVENT,
    "<event>\n <name> B </name>\n<start>10:00</start> <end>11:30</end>\u2003</event>",
]  # fmt: skip
soup = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)


def same(text: str) -> None:
    got, want = parsing.parse_strict(text), parse_strict_reference(text)
    assert type(got) is Parsed
    assert got == want, text
    for a, b in zip(got.keys, want.keys, strict=True):
        assert all(type(x) is str for x in a) and a == b
    assert all(type(x) is int for x in got.starts + got.ends)
    assert type(got.format_ok) is bool and type(got.has_schedule) is bool


@needs_c
def test_the_c_functions_are_used_when_built() -> None:
    assert parsing.parse_strict is not parse_strict_reference
    assert checks.analyse is not analyse_reference
    assert checks.violations is not violations_reference
    assert native.status()["_core"]


@settings(max_examples=4000, deadline=None)
@given(soup)
def test_token_soups(text: str) -> None:
    same(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from("<>/:0123456789 \n\u2003abeinmrst😀"), max_size=80))
def test_character_soups(text: str) -> None:
    same(text)


REASONING = ["<", "/", ">", "think>", "<think", "</think", "</", "<think>", "</think>", "rethink>", "</ think>",
             "< /think>", "<schedule>", "a", " ", "\n", "é", "日", "😀", "\u2003"]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(REASONING), max_size=12).map("".join), st.sampled_from(["", " ", "\n\u3000"]))
def test_reasoning_soups(reasoning: str, space: str) -> None:
    """The frame check on the text before the schedule: every answer has a head, reasoning made of
    tags and parts of tags (in every string kind) and a well-formed schedule, so the format verdict turns
    on the reasoning alone."""
    same(f"{space}<think>{reasoning}{space}<schedule>{EVENT}</schedule>{space}")
    same(f"<think>{reasoning}</think>{space}<schedule>{EVENT}{EVENT}</schedule>")


def _answers() -> list[str]:
    return [gold_completion(generate_problem(7, "train", i)) for i in range(40)]


@pytest.mark.parametrize("seed", range(6))
def test_mutated_answers(seed: int) -> None:
    """Realistic answers with characters deleted, inserted and replaced at random."""
    rng = random.Random(seed)
    alphabet = "<>/: \n\u20030123456789abc日😀"
    for text in _answers():
        same(text)
        for _ in range(25):
            chars = list(text)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(chars))
                op = rng.randrange(3)
                if op == 0:
                    del chars[i]
                elif op == 1:
                    chars.insert(i, rng.choice(alphabet))
                else:
                    chars[i] = rng.choice(alphabet)
            same("".join(chars))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<schedule></schedule>",
        "</schedule><schedule>",
        "<think>r</think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event></schedule>",
        "<think> </think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event></schedule>",
        "<think>r<think></think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
        " \u3000<think>r</think>\x85<schedule><event><name>\u2003A\xa0</name><start>09:00</start><end>10:00"
        "</end></event></schedule>\u2003",
        "<think>r</think><schedule><event><event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
        "<schedule><event><name> </name><start>09:00</start><end>10:00</end></event></schedule>",
        "<schedule><event><name>A<</name><start>09:00</start><end>10:00</end></event></schedule>",
        "<schedule><event><name>A</name><start>٠٩:٠٠</start><end>10:00</end></event></schedule>",
        "<schedule><event><name>A</name><start>99:99</start><end>00:00</end></event></schedule>",
        "<schedule><event><name>A</name><start>09:00</start><end>10:00</end></event",
        "<think>r</think>x<schedule><event><name>😀</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
        "<think>r</think><schedule>x<event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
    ],
)
def test_edge_cases(text: str) -> None:
    same(text)


def test_many_events_and_every_time() -> None:
    """More events than the parser's first buffer holds, and every time string from 00:00 to 99:99."""
    times = [f"{h:02d}:{m:02d}" for h in range(100) for m in range(100)]
    body = "".join(
        f"<event><name>e{i}</name><start>{t}</start><end>{times[-1 - i]}</end></event>\n"
        for i, t in enumerate(times)
    )
    same(f"<think>all of them</think>\n<schedule>\n{body}</schedule>")


@needs_c
def test_the_extension_checks_its_argument() -> None:
    assert _core is not None
    with pytest.raises(TypeError):
        _core.parse_strict(b"<schedule>")  # type: ignore[arg-type]


# analyse --------------------------------------------------------------------------------------------

PROBLEMS = [generate_problem(3, "train", i) for i in range(8)]
INDEXES = [index_problem(p) for p in PROBLEMS]


def same_analysis(parsed: Parsed, problem: ProblemIndex) -> None:
    got, want = checks.analyse(parsed, problem), analyse_reference(parsed, problem)
    assert type(got) is Analysis
    assert got == want
    assert got.parsed is parsed
    assert [type(x) for x in got] == [type(x) for x in want]
    assert [type(m) for m in got.matches] == [type(m) for m in want.matches]
    found, expected = checks.violations(got), violations_reference(want)
    assert found == expected
    assert [list(v) for v in found] == [list(v) for v in expected]  # keys in the same order (the JSON's)


@pytest.mark.parametrize("seed", range(4))
def test_analyse_on_what_the_parsers_read(seed: int) -> None:
    rng = random.Random(seed)
    for problem, index in zip(PROBLEMS, INDEXES, strict=True):
        events = list(problem.events)
        for _ in range(30):
            picked = rng.sample(events, rng.randint(0, len(events)))
            picked += rng.sample(events, rng.randint(0, 2))  # repeats
            if rng.random() < 0.5:
                picked.sort(key=lambda e: e.start)
            rows = [(e.name, e.start, e.end) for e in picked]
            if rng.random() < 0.3 and rows:
                rows[rng.randrange(len(rows))] = ("Invented", "10:00", "11:00")
            if rng.random() < 0.2 and rows:
                name, start, end = rows[0]
                rows[0] = (f" {name}\u2003", start, end)  # trimmed by `default`, not by `original`
            if rng.random() < 0.2 and rows:
                odd = rng.choice(["O'Brien", 'say "hi"', "back\\slash", "tab\there", "日本"])
                rows.append((odd, "08:00", "09:00"))
            body = "".join(
                f"<event><name>{n}</name><start>{a}</start><end>{b}</end></event>" for n, a, b in rows
            )
            text = f"<think>why</think><schedule>{body}</schedule>"
            same_analysis(parsing.parse_strict(text), index)
            same_analysis(parse_published(text), index)


def _parsed(keys: list[tuple[str, str, str]], starts: list[int], ends: list[int]) -> Parsed:
    return Parsed(tuple(keys), tuple(starts), tuple(ends), True, True)


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_analyse_on_generated_schedules(data: st.DataObject) -> None:
    """Any mix of known, unknown and repeated events, with times that tie, touch, invert and overlap."""
    k = data.draw(st.integers(0, len(INDEXES) - 1))
    problem, index = PROBLEMS[k], INDEXES[k]
    known = [(e.name, e.start, e.end) for e in problem.events]
    odd = st.sampled_from(
        [("Nobody", "01:00", "02:00"), ("O'Brien", "03:00", "04:00"), ('a "b" \\ \n', "x", "y")]
    )
    key = st.one_of(st.sampled_from(known), odd)
    keys = data.draw(st.lists(key, max_size=12))
    n = len(keys)
    times = st.lists(st.integers(0, 12), min_size=n, max_size=n)
    same_analysis(_parsed(keys, data.draw(times), data.draw(times)), index)


def test_analyse_of_nothing_and_of_many_events() -> None:
    index = INDEXES[0]
    same_analysis(_parsed([], [], []), index)
    keys = [(e.name, e.start, e.end) for e in PROBLEMS[0].events] * 300  # more repeats than a buffer
    same_analysis(_parsed(keys, list(range(len(keys))), [i + 1 for i in range(len(keys))]), index)
    # every event overlapping every other: more pairs than are reported (50)
    big = generate_problem(3, "train", 0, PRESETS["xl"])
    big_index = index_problem(big)
    distinct = [(e.name, e.start, e.end) for e in big.events]
    n = len(distinct)
    assert n * (n - 1) // 2 > 50
    same_analysis(_parsed(distinct, list(range(n)), [100] * n), big_index)
    same_analysis(_parsed(distinct[::-1], list(range(n)), [100 - i for i in range(n)]), big_index)
    found = checks.violations(checks.analyse(_parsed(distinct, list(range(n)), [100] * n), big_index))
    assert [v["type"] for v in found] == ["overlap"] * 50


@needs_c
def test_analyse_checks_its_arguments() -> None:
    assert _core is not None
    index = INDEXES[0]
    with pytest.raises(TypeError):
        _core.analyse((), index)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.analyse(_parsed([], [], []))  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        _core.analyse(Parsed((), (1,), (), True, True), index)
    with pytest.raises(AttributeError):
        _core.analyse(_parsed([], [], []), object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.violations(_parsed([], [], []))  # type: ignore[arg-type]


# -- the whole score in C (`_core.score_strict`, `_core.score_graded`) against `profiles.score_reference` --

DEFAULT = PROFILES["default"]
IN_C = (DEFAULT, PROFILES["graded"])  # the profiles whose `score` is written in C


def same_score(text: str, index: ProblemIndex, max_chars: int | None = None) -> WireResult:
    """`profiles.score` (the C `score_strict` / `score_graded` when built) is `score_reference`, for
    each profile in C: same keys in the same order, same types, floats to the bit, violations with their
    keys in order. Returns the `default` profile's result."""
    results = []
    for profile in IN_C:
        got, want = score(text, index, profile, max_chars), score_reference(text, index, profile, max_chars)
        assert got == want, (profile.name, text)
        assert list(got) == list(want) and list(got["components"]) == list(want["components"])
        assert [type(x) for x in got.values()] == [type(x) for x in want.values()]
        for a, b in ((got, want), (got["components"], want["components"])):
            for k, x in a.items():
                if type(x) is float:
                    assert x.hex() == b[k].hex(), (profile.name, k, text)
        assert [list(v) for v in got["violations"]] == [list(v) for v in want["violations"]]
        results.append(got)
    return results[0]


@needs_c
def test_the_default_profile_scores_in_c_when_built() -> None:
    assert _core is not None
    assert DEFAULT.native is _core.score_strict
    assert PROFILES["graded"].native is _core.score_graded
    assert PROFILES["original"].native is None  # its parser is Python: the reference runs
    with pytest.raises(TypeError):
        _core.score_graded("x", INDEXES[0])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _core.score_strict(5, INDEXES[0], None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.score_strict("x", INDEXES[0])  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        _core.score_strict("x", INDEXES[0], -1)
    with pytest.raises(AttributeError):
        _core.score_strict("<think>a</think><schedule></schedule>", object(), None)  # type: ignore[arg-type]


def test_score_on_realistic_answers_of_every_verdict() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "bench" / "realistic.py"  # the benchmark's completions
    spec = importlib.util.spec_from_file_location("realistic", path)
    assert spec is not None and spec.loader is not None
    realistic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(realistic)
    verdicts = set()
    for problem, text in realistic.realistic_pairs(400):
        index = index_problem(problem)
        verdicts.add(same_score(text, index)["verdict"])
        same_score(text, index, max_chars=len(text) // 2)  # cut in the reasoning or the schedule
        same_score(text, index, max_chars=len(text) - 40)
    assert verdicts == {"valid", "overlap", "unknown_event", "unsorted", "too_few_events", "format_error"}


@pytest.mark.parametrize("seed", range(4))
def test_score_on_generated_answers(seed: int) -> None:
    rng = random.Random(seed)
    for problem, index in zip(PROBLEMS, INDEXES, strict=True):
        same_score(gold_completion(problem), index)
        events = list(problem.events)
        for _ in range(40):
            picked = rng.sample(events, rng.randint(0, len(events)))
            picked += rng.sample(events, rng.randint(0, 1))  # a repeat, sometimes
            if rng.random() < 0.6:
                picked.sort(key=lambda e: e.start)
            rows = [(e.name, e.start, e.end) for e in picked]
            if rng.random() < 0.2 and rows:
                rows[rng.randrange(len(rows))] = ("Invented", "10:00", "11:00")
            if rng.random() < 0.2 and rows:  # an event of zero length, or one that ends before it starts
                name, start, _ = rows[-1]
                rows[-1] = (name, start, start if rng.random() < 0.5 else "00:00")
            body = "".join(
                f"<event><name>{n}</name><start>{a}</start><end>{b}</end></event>" for n, a, b in rows
            )
            think = "" if rng.random() < 0.1 else "<think>why</think>"
            text = f"{think}<schedule>{body}</schedule>"
            same_score(text, index)
            same_score(text, index, max_chars=rng.randrange(len(text) + 1))


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_score_on_generated_times(data: st.DataObject) -> None:
    """Known events written with any times: ties, touching, inverted and overlapping spans, so the
    `score` component drops overlapping pairs (sorted or not) and the verdict scans for overlaps."""
    k = data.draw(st.integers(0, len(INDEXES) - 1))
    problem, index = PROBLEMS[k], INDEXES[k]
    picked = data.draw(st.lists(st.sampled_from(problem.events), max_size=10, unique_by=lambda e: e.name))
    clock = st.integers(0, 4).map(lambda h: f"{9 + h:02d}:00")
    rows = [
        (e.name, e.start, e.end) if data.draw(st.booleans()) else (e.name, data.draw(clock), data.draw(clock))
        for e in picked
    ]
    body = "".join(f"<event><name>{n}</name><start>{a}</start><end>{b}</end></event>" for n, a, b in rows)
    same_score(f"<think>t</think><schedule>{body}</schedule>", index)


@settings(max_examples=1500, deadline=None)
@given(soup, st.one_of(st.none(), st.integers(0, 200)))
def test_score_on_token_soups(text: str, max_chars: int | None) -> None:
    same_score(text, INDEXES[0], max_chars)


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_score_on_problems_full_of_ties(data: st.DataObject) -> None:
    """Problems whose events start and end on a half-hour grid, so that they touch, tie and overlap;
    answers list any of them in any order, so the `score` component's dropping of overlapping pairs
    (exclusive test: touching events are kept) runs on every arrangement."""
    n = data.draw(st.integers(2, 7))
    events = []
    for i in range(n):
        start = data.draw(st.integers(16, 22)) * 30
        end = start + data.draw(st.integers(1, 4)) * 30
        events.append(
            Event(
                name=f"E{i}",
                start=f"{start // 60:02d}:{start % 60:02d}",
                end=f"{end // 60:02d}:{end % 60:02d}",
            )
        )
    priorities = [e.name for e in events if data.draw(st.booleans())]
    index = index_problem(ProblemSpec(events=events, priorities=priorities))
    picked = data.draw(st.permutations(events)).copy()[: data.draw(st.integers(0, n))]
    if data.draw(st.booleans()):
        picked.sort(key=lambda e: e.start_min)
    body = "".join(
        f"<event><name>{e.name}</name><start>{e.start}</start><end>{e.end}</end></event>" for e in picked
    )
    same_score(f"<think>t</think><schedule>{body}</schedule>", index)
