"""Traced answers: optimal, parseable, the same every time, and a faithful walk through the method."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, score_completion
from env_server.task.generator import PRESETS, generate_problem
from env_server.task.problems import solve
from env_server.task.prompts import SYSTEM_PROMPTS, build_prompt
from env_server.task.traces import (
    TRACE_STYLES,
    TraceStyle,
    checked_scan_lines,
    duration_sum,
    hour_scan_lines,
    overlap_groups,
    traced_completion,
)
from shared_schema import Event, ProblemSpec, from_minutes

SPEC = ProblemSpec(
    events=[
        Event(name="Lunch", start="12:00", end="13:00"),
        Event(name="Gym", start="08:00", end="09:00"),
        Event(name="Team sync", start="08:30", end="09:15"),
        Event(name="Standup", start="09:15", end="09:30"),
    ],
    priorities=["Team sync"],
)


def test_trace_text_is_pinned() -> None:
    assert traced_completion(SPEC) == (
        "<think>By start time:\n"
        "- Gym 08:00-09:00: 60\n"
        "- Team sync 08:30-09:15: priority, 2 x 45 = 90\n"
        "- Standup 09:15-09:30: 15\n"
        "- Lunch 12:00-13:00: 60\n"
        "Gym overlaps Team sync: keep Team sync (90 > 60).\n"
        "Keep 3 events, total 165.</think>\n"
        "<schedule>\n"
        "<event><name>Team sync</name><start>08:30</start><end>09:15</end></event>\n"
        "<event><name>Standup</name><start>09:15</start><end>09:30</end></event>\n"
        "<event><name>Lunch</name><start>12:00</start><end>13:00</end></event>\n"
        "</schedule>"
    )


def test_by_hour_trace_text_is_pinned() -> None:
    """The `by_hour` trace scans every hour of the day; the rest is the `sorted` trace word for word."""
    text = traced_completion(SPEC, style="by_hour")
    empty = lambda hours: [f"{h:02d}h -" for h in hours]  # noqa: E731
    assert text.splitlines()[:29] == [
        "<think>By start hour:",
        *empty(range(8)),
        "08h:",
        "- Gym 08:00-09:00: 60",
        "- Team sync 08:30-09:15: priority, 2 x 45 = 90",
        "09h:",
        "- Standup 09:15-09:30: 15",
        *empty(range(10, 12)),
        "12h:",
        "- Lunch 12:00-13:00: 60",
        *empty(range(13, 24)),
    ]
    assert text.split("\n", 29)[29] == traced_completion(SPEC).split("\n", 5)[5]


def test_checked_trace_text_is_pinned() -> None:
    """The `checked` trace is the `by_hour` scan with each line's sum and overlap check; the rest is the
    `sorted` trace word for word."""
    text = traced_completion(SPEC, style="checked")
    empty = lambda hours: [f"{h:02d}h -" for h in hours]  # noqa: E731
    assert text.splitlines()[:29] == [
        "<think>By start hour:",
        *empty(range(8)),
        "08h:",
        "- Gym 08:00-09:00: 60 + 0 = 60; first",
        "- Team sync 08:30-09:15: 30 + 15 = 45, priority x 2 = 90; 08:30 < 09:00 overlap",
        "09h:",
        "- Standup 09:15-09:30: 30 - 15 = 15; 09:15 >= 09:15 clear",
        *empty(range(10, 12)),
        "12h:",
        "- Lunch 12:00-13:00: 60 + 0 = 60; 12:00 >= 09:30 clear",
        *empty(range(13, 24)),
    ]
    assert text.split("\n", 29)[29] == traced_completion(SPEC).split("\n", 5)[5]


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        ("08:04", "08:19", "19 - 4 = 15"),
        ("05:56", "06:41", "4 + 41 = 45"),
        ("09:55", "11:40", "5 + 60 + 40 = 105"),
        ("07:30", "11:00", "30 + 180 + 0 = 210"),
        ("23:40", "24:10", "20 + 10 = 30"),
    ],
)
def test_duration_sum_adds_up_to_the_duration(start: str, end: str, text: str) -> None:
    event = Event(name="E", start=start, end=end)
    assert duration_sum(event) == text
    terms, total = text.split(" = ")
    if " - " in terms:
        end, start = terms.split(" - ")
        computed = int(end) - int(start)
    else:
        computed = sum(int(t) for t in terms.split(" + "))
    assert int(total) == event.duration == computed  # the written arithmetic is right


def test_checked_lines_mark_exactly_the_events_that_overlap_an_earlier_one() -> None:
    """`overlap` on an event's line iff it overlaps an event listed before it; each run of `overlap` lines
    with the `clear` (or `first`) line above it is one of the solver's overlap groups."""
    for i in range(300):
        spec = generate_problem(seed=3, split="train", index=i)
        lines = [x for x in checked_scan_lines(spec) if x.startswith("- ")]
        ordered = sorted(spec.events, key=lambda e: (e.start_min, e.end_min, e.name))
        runs: list[list[str]] = []
        for k, (line, e) in enumerate(zip(lines, ordered, strict=True)):
            overlaps_earlier = any(o.end_min > e.start_min for o in ordered[:k])
            assert line.endswith(" overlap") == overlaps_earlier, line
            assert line.endswith((" clear", "; first")) != overlaps_earlier, line
            assert (k == 0) == line.endswith("; first")
            if overlaps_earlier:
                runs[-1].append(e.name)
            else:
                runs.append([e.name])
        groups = [[e.name for e in g] for g in overlap_groups(list(spec.events))]
        assert [r for r in runs if len(r) > 1] == groups


def test_by_hour_scan_goes_past_midnight_only_when_an_event_starts_there() -> None:
    late = ProblemSpec(
        events=[*SPEC.events, Event(name="Night shift", start="25:10", end="26:00")], priorities=[]
    )
    lines = hour_scan_lines(late)
    assert lines[-2:] == ["25h:", "- Night shift 25:10-26:00: 50"] and "24h -" in lines
    assert hour_scan_lines(SPEC)[-1] == "23h -"


def test_unknown_trace_style_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown trace style"):
        traced_completion(SPEC, style="shuffled")  # type: ignore[arg-type]


def _check(spec: ProblemSpec, style: TraceStyle = "sorted") -> None:
    text = traced_completion(spec, style=style)
    assert text == traced_completion(spec, style=style)  # deterministic
    index = index_problem(spec)
    r = score_completion(text, index, PROFILES["default"])
    assert r.reward == 100.0 and r.score_ratio == 1.0, (spec, r)
    assert score_completion(text, index, PROFILES["original"]).verdict.value == "valid"  # type: ignore[union-attr]
    think = text[len("<think>") : text.index("</think>")]
    listed = re.findall(r"^- (.+) (\d\d:\d\d)-(\d\d:\d\d): ", think, re.M)
    # every event, chronologically, each once
    assert sorted(listed) == sorted((e.name, e.start, e.end) for e in spec.events)
    assert [s for _, s, _ in listed] == sorted(s for _, s, _ in listed)
    total, schedule = solve(spec)
    for e in schedule:  # every chosen event appears in the trace
        assert f"- {e.name} {e.start}-{e.end}: " in think
    for group in overlap_groups(list(spec.events)):
        kept = [e.name for e in group if e in schedule]
        line = next(
            x
            for x in think.splitlines()
            if x.startswith(group[0].name + (" overlaps " if len(group) == 2 else ", "))
        )
        assert all(name in line.split("keep ", 1)[1] for name in kept)
    assert think.endswith(f"Keep {len(schedule)} events, total {total}.")
    if style in ("by_hour", "checked"):  # each event right under the line of the hour it starts in
        hour = None
        for line in think.splitlines()[1:]:
            if re.fullmatch(r"\d\dh(:| -)", line):
                assert hour is None or int(line[:2]) == hour + 1  # every hour, in order
                hour = int(line[:2])
            elif line.startswith("- "):
                assert hour is not None and re.search(rf" {hour:02d}:\d\d-\d\d:\d\d: ", line), line


@pytest.mark.parametrize("style", TRACE_STYLES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_traced_answer_earns_100_on_thousands_of_problems(split: str, style: TraceStyle) -> None:
    for i in range(1500):
        _check(generate_problem(seed=11, split=split, index=i), style)


@pytest.mark.parametrize("style", TRACE_STYLES)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_traced_answer_earns_100_for_every_preset(preset: str, style: TraceStyle) -> None:
    for i in range(40):
        _check(generate_problem(seed=5, split="train", index=i, difficulty=PRESETS[preset]), style)


def test_no_overlap_at_all_keeps_everything() -> None:
    spec = ProblemSpec(events=SPEC.events[:1] + SPEC.events[3:], priorities=[])
    text = traced_completion(spec)
    assert "No two events overlap: keep them all." in text and "Keep 2 events, total 75." in text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 60)), min_size=1, max_size=9))
def test_overlap_groups_are_the_connected_components(spans: list[tuple[int, int]]) -> None:
    events = [
        Event(name=f"E{i}", start=from_minutes(s), end=from_minutes(s + d)) for i, (s, d) in enumerate(spans)
    ]
    overlaps = {
        (a.name, b.name)
        for a, b in itertools.permutations(events, 2)
        if a.start_min < b.end_min and b.start_min < a.end_min
    }
    component = {e.name: {e.name} for e in events}  # brute force: merge until stable
    for _ in events:
        for a, b in overlaps:
            merged = component[a] | component[b]
            for name in merged:
                component[name] = merged
    expected = sorted(sorted(c) for c in {frozenset(c) for c in component.values()} if len(c) > 1)
    assert sorted(sorted(e.name for e in g) for g in overlap_groups(events)) == expected


def test_guided_prompt_lists_events_as_the_trace_does() -> None:
    """The guided prompt's event list is the trace's first part, word for word, and names every event."""
    prompt = build_prompt(SPEC, "guided")
    assert prompt[0].content == SYSTEM_PROMPTS["guided"]
    assert prompt[1].content == (
        "Events by start time:\n"
        "- Gym 08:00-09:00: 60\n"
        "- Team sync 08:30-09:15: priority, 2 x 45 = 90\n"
        "- Standup 09:15-09:30: 15\n"
        "- Lunch 12:00-13:00: 60\n"
        "\n"
        "Priorities: Team sync"
    )
    for seed in range(300):
        spec = generate_problem(seed=3, split="train", index=seed)
        listed = (
            build_prompt(spec, "guided")[1].content.split("\n\n")[0].removeprefix("Events by start time:\n")
        )
        trace = traced_completion(spec).removeprefix("<think>By start time:\n")
        assert trace.startswith(listed + "\n")
        assert len(listed.splitlines()) == len(spec.events)
        starts = [re.findall(r" (\d\d:\d\d)-\d\d:\d\d: ", line)[-1] for line in listed.splitlines()]
        assert starts == sorted(starts)  # HH:MM sorts as text
    # default and compact keep the events in the order given, without values
    assert build_prompt(SPEC, "compact")[1] == build_prompt(SPEC, "default")[1]
    assert build_prompt(SPEC, "default")[1].content.startswith("Events:\n- Lunch: 12:00 - 13:00\n")
