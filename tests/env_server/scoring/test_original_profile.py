"""The `original` profile against a literal transcription of the published reward functions (`published.py`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, score_completion
from env_server.task.generator import generate_problem
from shared_schema import Problem
from tests.env_server.scoring.published import optimum, published_rewards

PROBLEMS = [generate_problem(seed=11, split="train", index=i) for i in range(30)]
OPTIMA = {p.id: optimum(p) for p in PROBLEMS}


def test_the_transcription_s_optimum_is_the_served_one() -> None:
    assert all(OPTIMA[p.id] == p.optimal_score for p in PROBLEMS)


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
    fmt, order, score = published_rewards(completion, problem, OPTIMA[problem.id])
    assert r.components["format"] == fmt
    assert r.components["order"] == order
    assert abs(r.components["score"] - score) < 1e-9
