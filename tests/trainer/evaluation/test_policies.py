"""Reference rows: the solver backend is exact, the baseline policies are valid and never beat it."""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_schema import Event, ProblemSpec, from_minutes
from trainer.client.env_client import EnvClient
from trainer.evaluation.backends import REFERENCE_BACKENDS, make_reference
from trainer.evaluation.dataset import from_split
from trainer.evaluation.policies import earliest_finish, greedy_by_weight, policy_answer
from trainer.evaluation.runner import run_eval

# A 09:00-10:00 (prio, 120)  B 09:30-11:00 (90)  C 10:00-10:30 (30)  D 10:15-12:00 (105)
SPEC = ProblemSpec(
    events=[
        Event(name="A", start="09:00", end="10:00"),
        Event(name="B", start="09:30", end="11:00"),
        Event(name="C", start="10:00", end="10:30"),
        Event(name="D", start="10:15", end="12:00"),
    ],
    priorities=["A"],
)


def test_policies_on_a_known_problem() -> None:
    assert [e.name for e in greedy_by_weight(SPEC)] == ["A", "D"]  # 120, then D (105) fits after A
    assert [e.name for e in earliest_finish(SPEC)] == ["A", "C"]  # ends 10:00, then 10:30
    text = policy_answer("greedy_weight", SPEC)
    assert text.startswith("<think>") and text.endswith("</schedule>")
    assert "<event><name>A</name><start>09:00</start><end>10:00</end></event>" in text


@st.composite
def problems(draw: st.DrawFn) -> ProblemSpec:
    n = draw(st.integers(1, 12))
    events = []
    for i in range(n):
        start = draw(st.integers(0, 22 * 60))
        events.append(
            Event(
                name=f"E{i}", start=from_minutes(start), end=from_minutes(start + draw(st.integers(1, 120)))
            )
        )
    prios = draw(st.lists(st.sampled_from([e.name for e in events]), unique=True))
    return ProblemSpec(events=events, priorities=prios)


@settings(max_examples=200, deadline=None)
@given(problems())
def test_policies_pick_chronological_non_overlapping_input_events(spec: ProblemSpec) -> None:
    for policy in (greedy_by_weight, earliest_finish):
        chosen = policy(spec)
        assert chosen and all(e in spec.events for e in chosen)
        assert all(a.end_min <= b.start_min for a, b in itertools.pairwise(chosen))


@pytest.mark.parametrize("name", REFERENCE_BACKENDS)
def test_reference_backends_on_the_test_split(client: TestClient, name: str) -> None:
    env = EnvClient(client)
    problems = from_split(env, "test")
    run = run_eval(env, make_reference(name, env), problems, label=name)
    s = run.summary
    assert s.n == len(problems) == 16
    if name == "solver":  # the exact optimum: 100% valid, mean score ratio exactly 1.0
        assert s.valid_pct == 100.0 and s.mean_score_ratio == 1.0 and s.exact_optimal_pct == 100.0
        assert s.mean_reward == 100.0 and s.verdicts["valid"] == 16
    else:  # a greedy is mostly valid (it may keep a single event) and never beats the optimum
        assert s.valid_pct >= 75.0 and 0.5 < s.mean_score_ratio <= 1.0
        assert s.verdicts["valid"] + s.verdicts["too_few_events"] == 16
    assert all(r.optimal_score == p.expected_optimal for r, p in zip(run.rows, problems, strict=True))
    assert not s.optimal_mismatches
