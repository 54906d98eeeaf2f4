"""`CurriculumFeed` against real `sched-env serve` processes: rows come from the session lazily, scored
groups go back to it, and a service restart loses nothing (from a directory, or from the trainer's copy)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from shared_schema import ScoreItem
from shared_schema.curriculum import CurriculumConfig
from tests.conftest import free_port, start_server
from trainer.client.env_client import EnvClient
from trainer.training.curriculum import CurriculumFeed, parse_config
from trainer.training.reward_funcs import EnvScorer


def _score_and_report(client: EnvClient, feed: CurriculumFeed, rows: list[dict[str, object]]) -> None:
    scorer = EnvScorer(client, on_results=feed.observe_results)
    ids = [str(r["problem_id"]) for r in rows for _ in range(2)]  # 2 completions per problem, as GRPO
    scorer.results(["nonsense"] * len(ids), ids)


@pytest.mark.parametrize("with_directory", [True, False], ids=["directory", "trainer-copy"])
def test_a_restart_loses_nothing(tmp_path: Path, with_directory: bool) -> None:
    port = free_port()
    env = {"SCHED_CURRICULUM_DIR": str(tmp_path / "sessions")} if with_directory else {}
    server = start_server(port=port, **env)
    client = EnvClient.from_url(server.url, retry_timeout=30)
    try:
        config = CurriculumConfig(window=1, spread=[1.0], start_rung=3)
        feed = CurriculumFeed(client, config, prompts_per_call=2)
        rows = list(itertools.islice(feed.rows(), 2))
        assert [r["problem_id"] for r in rows] == ["train-c3-000000", "train-c3-000001"]
        assert all(r["prompt"] for r in rows)  # type: ignore[truthy-bool]
        _score_and_report(client, feed, rows)  # every completion fails: down a rung per group
        assert feed.state.rung == 1 and feed.state.reported == 2
        server.stop()
        server = start_server(port=port, **env)  # the same address, a new process
        more = list(itertools.islice(feed.rows(), 2))
        assert [r["problem_id"] for r in more] == ["train-c1-000002", "train-c1-000003"]
        _score_and_report(client, feed, more)
        assert feed.state.reported == 4 and feed.state.rung == 0
        assert (
            client.score([ScoreItem(problem_id="train-c1-000002", completion="x")]).results[0].error is None
        )
    finally:
        client.close()
        server.stop()


def test_the_config_flag_is_json() -> None:
    assert parse_config(None) == CurriculumConfig()
    assert parse_config('{"target": 0.4}').target == 0.4
    with pytest.raises(ValueError):
        parse_config('{"target": 4}')
