"""`return_events`: the events a profile reads are the ones it scored, and every violation's indices point
at the events that break the rule (so a timeline or the playground draws the violation on the right box)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, read_events, score, score_and_read
from shared_schema import ReadEvent, ScoreResult
from tests.env_server.scoring.test_profiles import SPEC, answer, ev

PROBLEM = index_problem(SPEC)
NAMES = [e.name for e in SPEC.events]

# Answers built from the problem's events and a few that are not (invented, renamed, moved, impossible),
# in any order, with repeats, under the tags either profile reads.
one_event = st.one_of(
    st.sampled_from(NAMES).map(ev),
    st.sampled_from(NAMES).map(lambda n: ev(n, raw_name=f"  {n} ")),  # padded: trimmed under `default` only
    st.sampled_from(NAMES).map(lambda n: ev(n, start="08:00")),  # moved: not one of the problem's events
    st.just(ev("Nap", "23:00", "23:30")),
    st.just(ev("A", "99:99", "10:00")),
    st.just(ev("B", "١٠:٠٠", "١١:٠٠")),  # Arabic-Indic digits: read under `original` only
)
completions = st.builds(
    lambda events, think, wrap: answer(*events, think=think) if wrap else "".join(events),
    st.lists(one_event, max_size=7),
    st.sampled_from(["<think>r</think>", "", "<think>r"]),
    st.booleans(),
)


def _overlap(a: ReadEvent, b: ReadEvent) -> bool:
    return a.start_min < b.end_min and b.start_min < a.end_min


@settings(max_examples=600, deadline=None)
@given(completions, st.sampled_from(sorted(PROFILES)))
def test_violation_indices_point_at_the_events_read(text: str, profile_name: str) -> None:
    profile = PROFILES[profile_name]
    result = score_and_read(text, PROBLEM, profile)
    events = [ReadEvent.model_validate(e) for e in result.pop("events")]
    assert result == score(text, PROBLEM, profile)  # reading the events changes nothing scored

    parsed = profile.parse(text).events  # the profile's own reading, in order
    assert [(e.name, e.start, e.end, e.start_min, e.end_min) for e in events] == [tuple(p) for p in parsed]
    for e in events:
        exact = next(
            (i for i, x in enumerate(SPEC.events) if (x.name, x.start, x.end) == (e.name, e.start, e.end)),
            None,
        )
        assert e.problem_index == exact  # fmt: skip

    for v in ScoreResult.model_validate(result).violations:
        assert all(0 <= i < len(events) for i in v.indices)
        assert [(events[i].name, events[i].start, events[i].end) for i in v.indices] == [
            (x.name, x.start, x.end) for x in v.events
        ]
        if v.type == "overlap":
            a, b = (events[i] for i in v.indices)
            assert _overlap(a, b)
        if v.type == "unknown_event":
            assert all(events[i].problem_index is None for i in v.indices)
        if v.type == "repeated_event":
            assert len({events[i].problem_index for i in v.indices}) == 1


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_names_are_read_as_the_profile_compares_them(profile_name: str) -> None:
    text = answer(ev("A", raw_name=" A "), ev("D"))
    names = [e["name"] for e in read_events(text, PROBLEM, PROFILES[profile_name])]
    index = [e["problem_index"] for e in read_events(text, PROBLEM, PROFILES[profile_name])]
    if profile_name in ("default", "graded"):  # the strict parser trims names
        assert names == ["A", "D"] and index == [0, 3]
    else:  # `original` compares names as written: " A " is not an event of the problem
        assert names == [" A ", "D"] and index == [None, 3]


def test_the_reading_is_of_the_first_max_chars() -> None:
    text = answer(ev("A"), ev("C"), ev("D"))
    cut = text.index(ev("D"))
    assert [e["name"] for e in read_events(text, PROBLEM, PROFILES["original"], cut + 5)] == ["A", "C"]
