"""The `original` profile against a literal transcription of the published reward functions."""

from __future__ import annotations

import re
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.generator import generate_problem
from env_server.parsing import PUBLISHED_FORMAT_REGEX
from env_server.problems import index_problem
from env_server.rewards import PROFILES, score_completion
from shared_schema import Problem

EVENT_RE = (
    r"<event>\s*<name>([^<]+)</name>\s*<start>(\d{2}:\d{2})</start>\s*<end>(\d{2}:\d{2})</end>\s*</event>"
)


def _minutes(t: str) -> int:
    h, m = t.split(":")
    return int(h) * 60 + int(m)


def published_rewards(completion: str, problem: Problem) -> tuple[float, float, float]:
    """The published training rewards, written the way the published code reads (regexes, sets, pairs)."""
    fmt = 10.0 if re.match(PUBLISHED_FORMAT_REGEX, completion, re.DOTALL) else 0.0
    events = re.findall(EVENT_RE, completion)
    order = 0.0
    if len(events) >= 2:
        starts = [_minutes(s) for _, s, _ in events]
        order = 20.0 if all(a < b for a, b in pairwise(starts)) else 0.0
    given_events = {(e.name, e.start, e.end) for e in problem.events}
    scheduled = {e for e in events if e in given_events}
    score = 0.0
    if len(scheduled) >= len(events) and len(scheduled) >= 2:
        overlapping = set()
        for a in scheduled:
            for b in scheduled:
                if a != b and _minutes(a[1]) <= _minutes(b[2]) and _minutes(a[2]) >= _minutes(b[1]):
                    overlapping.update((a, b))
        total = 0
        for name, start, end in scheduled - overlapping:
            weight = 2 if name in problem.priorities else 1
            total += weight * (_minutes(end) - _minutes(start))
        score = 70.0 * total / problem.optimal_score
    return fmt, order, score


PROBLEMS = [generate_problem(seed=11, split="train", index=i) for i in range(30)]


@st.composite
def completions(draw: st.DrawFn) -> tuple[Problem, str]:
    problem = draw(st.sampled_from(PROBLEMS))
    pool = [(e.name, e.start, e.end) for e in problem.events] + [
        ("Invented", "10:00", "11:00"), (f" {problem.events[0].name}", problem.events[0].start, problem.events[0].end)
    ]  # fmt: skip
    chosen = draw(st.lists(st.sampled_from(pool), max_size=7))
    body = "".join(
        f"<event>{draw(st.sampled_from(['', ' ', chr(10)]))}<name>{n}</name><start>{s}</start><end>{e}</end></event>"
        for n, s, e in chosen
    )
    think = draw(st.sampled_from(["<think>plan</think>", "<think></think>", "", "notes "]))
    tail = draw(st.sampled_from(["", " done", "<schedule></schedule>"]))
    return problem, f"{think}<schedule>{body}</schedule>{tail}"


@settings(max_examples=1500, deadline=None)
@given(completions())
def test_original_profile_equals_the_published_code(case: tuple[Problem, str]) -> None:
    problem, completion = case
    r = score_completion(completion, index_problem(problem), PROFILES["original"])
    fmt, order, score = published_rewards(completion, problem)
    assert r.components["format"] == fmt
    assert r.components["order"] == order
    assert abs(r.components["score"] - score) < 1e-9
