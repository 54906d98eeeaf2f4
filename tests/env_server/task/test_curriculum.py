"""The curriculum's logic (env_server/task/curriculum.py): pure functions of a session's state."""

from __future__ import annotations

import pytest

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, score_completion
from env_server.task import curriculum
from env_server.task.generator import PRESETS, split_bucket
from env_server.task.problems import gold_completion
from shared_schema.curriculum import CurriculumConfig, CurriculumState, GroupReport, Rung


def make(level: int, index: int):  # type: ignore[no-untyped-def]
    return curriculum.curriculum_problem(0, level, index)


def served_ids(state: CurriculumState, n: int) -> tuple[CurriculumState, list[str]]:
    state, out = curriculum.serve(state, n, make)
    return state, [p.id for p, _, _ in out]


def test_every_level_generates_train_problems_whose_gold_earns_100() -> None:
    assert curriculum.LEVELS[curriculum.TEST_LEVEL] == PRESETS["default"]  # the test distribution
    sizes = []
    for level in range(len(curriculum.LEVELS)):
        for index in range(15):
            p = make(level, index)
            assert p.id == f"train-c{level}-{index:06d}"
            assert curriculum.parse_curriculum_id(p.id) == (level, index)
            assert split_bucket(p) == "train"  # never a test problem
            assert score_completion(gold_completion(p), index_problem(p), PROFILES["default"]).reward == 100
            sizes.append((level, len(p.events)))
    means = [sum(n for lv, n in sizes if lv == level) / 15 for level in range(len(curriculum.LEVELS))]
    assert means == sorted(means)  # harder levels have more events
    assert curriculum.parse_curriculum_id("train-c9-000001") is None
    assert curriculum.parse_curriculum_id("train-000001") is None


def test_batches_are_stratified_exactly_around_the_current_rung() -> None:
    state = curriculum.new_state("cur-0", CurriculumConfig(start_rung=3))
    state, out = curriculum.serve(state, 8, make)
    assert [rung for _, _, rung in out] == [2, 2, 3, 3, 3, 3, 4, 4]
    assert state.served == 8 and len(state.pending) == 8
    assert len({p.id for p, _, _ in out}) == 8
    bottom = curriculum.new_state("cur-1", CurriculumConfig(start_rung=0))
    _, out = curriculum.serve(bottom, 3, make)
    assert [rung for _, _, rung in out] == [0, 0, 1]  # no rung below 0: its share goes to the others


def test_scaffold_share_is_exact_over_a_rung_stream() -> None:
    config = CurriculumConfig(rungs=[Rung(level=4, guided=0.25)], spread=[1.0])
    state = curriculum.new_state("cur-2", config)
    styles = []
    for n in (3, 1, 5, 7):
        state, out = curriculum.serve(state, n, make)
        styles += [style for _, style, _ in out]
    assert len(styles) == 16 and styles.count("guided") == 4


def _report(state: CurriculumState, ids: list[str], rewards: list[float]) -> CurriculumState:
    return curriculum.report(state, [GroupReport(problem_id=i, rewards=rewards) for i in ids])


def test_the_rung_follows_the_success_rate() -> None:
    config = CurriculumConfig(window=2, spread=[1.0], start_rung=2)
    state = curriculum.new_state("cur-3", config)
    state, ids = served_ids(state, 2)
    state = _report(state, ids, [100.0, 90.0, 85.0, 10.0])  # 0.75 > 0.5 + 0.15: up
    assert state.rung == 3 and state.moves == 1
    state, ids = served_ids(state, 2)
    state = _report(state, ids, [100.0, 10.0, 0.0, 0.0])  # 0.25 < 0.35: down
    assert state.rung == 2
    state, ids = served_ids(state, 2)
    state = _report(state, ids, [100.0, 100.0, 0.0, 0.0])  # 0.5, inside the band: stays
    assert state.rung == 2 and state.moves == 2
    assert [h["rung"] for h in state.history] == [3, 2, 2]
    state, ids = served_ids(state, 1)
    state = _report(state, ids, [100.0] * 4)  # half a window: no decision yet
    assert state.rung == 2 and state.window_groups == 1


def test_the_rung_stays_on_the_ladder() -> None:
    config = CurriculumConfig(
        window=1, spread=[1.0], rungs=[Rung(level=0, guided=1), Rung(level=1, guided=0)]
    )
    state = curriculum.new_state("cur-4", config)
    for rewards, rung in (([0.0], 0), ([100.0], 1), ([100.0], 1), ([0.0], 0)):
        state, ids = served_ids(state, 1)
        state = _report(state, ids, rewards)
        assert state.rung == rung


def test_reports_of_unknown_problems_are_refused_and_repeats_ignored() -> None:
    state = curriculum.new_state("cur-5", CurriculumConfig(window=100))
    state, ids = served_ids(state, 2)
    with pytest.raises(curriculum.CurriculumError, match="not served"):
        _report(state, ["train-c0-999999"], [1.0])
    state = _report(state, ids[:1], [100.0])
    again = _report(state, ids[:1], [100.0])  # a retried report counts once
    assert again.reported == state.reported == 1 and again.window_groups == 1
    with pytest.raises(curriculum.CurriculumError):
        curriculum.serve(state, 0, make)
    with pytest.raises(curriculum.CurriculumError, match="past the ladder"):
        curriculum.new_state("cur-6", CurriculumConfig(start_rung=8))


def test_a_state_round_trips_through_json_and_goes_on_identically() -> None:
    state = curriculum.new_state("cur-7", CurriculumConfig(window=1))
    state, ids = served_ids(state, 4)
    state = _report(state, ids, [100.0, 0.0])
    copy = CurriculumState.model_validate_json(state.model_dump_json())
    assert copy == state
    a, out_a = curriculum.serve(state, 5, make)
    b, out_b = curriculum.serve(copy, 5, make)
    assert a == b and [(p.id, s, r) for p, s, r in out_a] == [(p.id, s, r) for p, s, r in out_b]


@pytest.mark.parametrize(
    "bad",
    [{"spread": [0.5, 0.5]}, {"spread": [0.0]}, {"target": 1.0}, {"window": 0}, {"rungs": []}, {"seed": 1}],
)
def test_bad_configs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CurriculumConfig.model_validate(bad)
