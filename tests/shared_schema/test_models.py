"""Wire types: times, names, priorities, one-of problem sources, forbidden extra fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared_schema import Event, ProblemSpec, ScoreItem, ScoreRequest, from_minutes, to_minutes


@pytest.mark.parametrize(
    ("t", "minutes"), [("00:00", 0), ("09:05", 545), ("23:59", 1439), ("24:30", 1470), ("47:59", 2879)]
)
def test_time_roundtrip(t: str, minutes: int) -> None:
    assert to_minutes(t) == minutes and from_minutes(minutes) == t


@pytest.mark.parametrize("t", ["9:00", "09:60", "48:00", "0900", "09:00 ", "ab:cd", "", "١٠:٠٠"])
def test_bad_times_rejected(t: str) -> None:
    with pytest.raises(ValueError):
        to_minutes(t)
    with pytest.raises(ValidationError):
        Event(name="x", start=t, end="23:00")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"name": "a", "start": "10:00", "end": "10:00"}, "end after"),
        ({"name": "a", "start": "10:00", "end": "09:00"}, "end after"),
        ({"name": " a", "start": "09:00", "end": "10:00"}, "white space"),
        ({"name": "a<b", "start": "09:00", "end": "10:00"}, "'<'"),
        ({"name": "", "start": "09:00", "end": "10:00"}, "at least 1"),
        ({"name": "a", "start": "09:00", "end": "10:00", "room": 1}, "Extra inputs"),
    ],
)
def test_bad_events_rejected(event: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Event(**event)


def test_problem_rules() -> None:
    ev = [{"name": "a", "start": "09:00", "end": "10:00"}, {"name": "b", "start": "10:00", "end": "11:00"}]
    assert ProblemSpec(events=ev, priorities=["b"]).priorities == ["b"]
    with pytest.raises(ValidationError, match="unknown"):
        ProblemSpec(events=ev, priorities=["c"])
    with pytest.raises(ValidationError, match="unique"):
        ProblemSpec(events=[ev[0], ev[0]], priorities=[])
    with pytest.raises(ValidationError, match="repeat"):
        ProblemSpec(events=ev, priorities=["a", "a"])


def test_score_item_needs_exactly_one_source() -> None:
    spec = {"events": [{"name": "a", "start": "09:00", "end": "10:00"}]}
    ScoreItem(problem_id="train-000000", completion="")
    ScoreItem(problem=spec, completion="")
    for bad in ({"completion": ""}, {"problem_id": "x", "problem": spec, "completion": ""}):
        with pytest.raises(ValidationError, match="exactly one"):
            ScoreItem(**bad)
    with pytest.raises(ValidationError, match="Extra inputs"):
        ScoreRequest(items=[{"problem_id": "x", "completion": ""}], profil="default")
