"""The `graded` profile (the overlap reward study, docs/reward-study.md): every property `default` has, and
what it changes.

- The gold answer earns exactly 100, on every generated problem and preset.
- Each known hack scores low: one event earns at most `format`; unknown or repeated events earn no
  `score`; listing every event (the hack `default` pays up to 97 for) and any answer with an overlapping
  pair earn at most 30 + 35.
- On an answer with no overlapping pair it equals `default`, to the bit.
- Exact and deterministic: the best subset is an integer optimum (checked against brute force); the
  results of the digest's cases are pinned; the C core equals the reference (tests/env_server/scoring/
  test_core_c.py runs every C comparison for both profiles).
"""

from __future__ import annotations

import itertools
import random

import pytest

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, best_subset_and_pairs, score, score_completion
from env_server.task.generator import PRESETS, generate_problem, overlapping_pair_count
from env_server.task.problems import gold_completion, solve
from shared_schema.answer import format_schedule
from tests.env_server.scoring.test_profiles import GOLD, OPT, SPEC, answer, ev
from tests.env_server.scoring.test_reward_digest import canonical, cases, digest

GRADED, DEFAULT = PROFILES["graded"], PROFILES["default"]
# `graded` results of every case of the reward digest (both splits, every verdict and violation, long
# reasoning, truncation), computed when the profile was added (reward_version 1.1.0).
EXPECTED_GRADED = "736d767d41da92bc474ff39ff819539710b51a6b3bbde9d2db2e4552d01d894d"


def _think(events: list) -> str:  # type: ignore[type-arg]
    return "<think>x</think>" + format_schedule(events)


@pytest.mark.parametrize("split", ["train", "test"])
def test_gold_answer_earns_100_on_every_generated_problem(split: str) -> None:
    for i in range(1000):
        p = generate_problem(seed=11, split=split, index=i)
        r = score_completion(gold_completion(p), index_problem(p), GRADED)
        assert r.reward == 100.0 and r.score_ratio == 1.0, (p.id, r)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_gold_answer_earns_100_for_every_preset(preset: str) -> None:
    for i in range(30):
        p = generate_problem(seed=4, split="train", index=i, difficulty=PRESETS[preset])
        assert score_completion(gold_completion(p), index_problem(p), GRADED).reward == 100.0, (preset, p.id)


@pytest.mark.parametrize(
    ("case", "completion", "components", "verdict"),
    [
        ("gold", GOLD, (10, 20, 70), "valid"),
        ("one event", answer(ev("D")), (10, 0, 0), "too_few_events"),
        # A, B, C, D, E: pairs A-B and B-C; the best subset is A, C, D, E = the optimum; halved twice
        ("every event", answer(ev("A"), ev("B"), ev("C"), ev("D"), ev("E")), (10, 20, 70 / 4), "overlap"),
        # A, B, D: one pair (A-B); the best subset is A, D (240) or B, D (210): A, D
        ("one overlapping pair", answer(ev("A"), ev("B"), ev("D")), (10, 20, 70 * 240 / OPT / 2), "overlap"),
        (
            "unknown event",
            answer(ev("A"), ev("C"), ev("Zed", "14:00", "14:30")),
            (10, 20, 0),
            "unknown_event",
        ),
        ("repeated event", answer(ev("A"), ev("C"), ev("C")), (10, 0, 0), "unknown_event"),
        ("unsorted, no overlap", answer(ev("D"), ev("A")), (10, 0, 70 * 240 / OPT), "unsorted"),
        ("unsorted with overlap", answer(ev("B"), ev("A")), (10, 0, 70 * 120 / OPT / 2), "unsorted"),
    ],
)
def test_spec_cases(case: str, completion: str, components: tuple[float, ...], verdict: str) -> None:
    r = score_completion(completion, index_problem(SPEC), GRADED)
    got = (r.components["format"], r.components["order"], r.components["score"])
    assert got == pytest.approx(components), case
    assert r.verdict is not None and r.verdict.value == verdict


def test_no_overlap_means_the_default_reward_and_overlap_means_at_most_65() -> None:
    rng = random.Random(0)
    for i in range(300):
        p = generate_problem(seed=2, split="train", index=i, difficulty=PRESETS[rng.choice(sorted(PRESETS))])
        index = index_problem(p)
        for _ in range(8):
            picked = rng.sample(p.events, rng.randint(2, len(p.events)))
            if rng.random() < 0.7:
                picked.sort(key=lambda e: e.start_min)
            text = _think(picked)
            g, d = score(text, index, GRADED), score(text, index, DEFAULT)
            if overlapping_pair_count([(e.start_min, e.end_min) for e in picked]) == 0:
                assert g == d
            else:
                assert g["reward"] <= 65.0 and g["verdict"] != "valid"


def test_listing_every_event_is_no_longer_paid() -> None:
    """The hack `default` pays well (a mean of ~70 and up to ~97 on the default distribution) earns at
    most 65 here, and less than the optimum's 100 by at least 35 on every problem."""
    default_rewards, graded_rewards = [], []
    for i in range(300):
        p = generate_problem(seed=3, split="train", index=i)
        index = index_problem(p)
        text = _think(sorted(p.events, key=lambda e: e.start_min))
        default_rewards.append(score(text, index, DEFAULT)["reward"])
        graded_rewards.append(score(text, index, GRADED)["reward"])
    assert max(graded_rewards) <= 65.0
    assert max(default_rewards) > 90.0  # what the profile exists to fix
    assert sum(graded_rewards) < sum(default_rewards)


def test_best_subset_is_the_brute_force_optimum() -> None:
    rng = random.Random(5)
    for _ in range(400):
        n = rng.randint(0, 8)
        spans = []
        for _ in range(n):
            s = rng.randint(0, 20) * 15
            spans.append((s, s + rng.randint(1, 6) * 15))
        values = [rng.randint(1, 240) for _ in spans]
        best = 0
        for mask in itertools.product((0, 1), repeat=n):
            chosen = [spans[i] for i in range(n) if mask[i]]
            if overlapping_pair_count(chosen) == 0:
                best = max(best, sum(values[i] for i in range(n) if mask[i]))
        assert best_subset_and_pairs(spans, values) == (best, overlapping_pair_count(spans))


def test_the_optimum_of_all_events_is_the_solver_optimum() -> None:
    for i in range(200):
        p = generate_problem(seed=9, split="test", index=i)
        index = index_problem(p)
        assert best_subset_and_pairs(index.spans, index.values)[0] == p.optimal_score == solve(p)[0]


def test_results_of_the_digest_cases_are_pinned() -> None:
    lines = []
    for p, text, max_chars in cases():
        r = score_completion(text, index_problem(p, p.optimal_score), GRADED, max_chars)
        lines.append(f"graded {canonical(r.model_dump(mode='json', exclude={'events'}))}")
    assert digest(lines) == EXPECTED_GRADED
