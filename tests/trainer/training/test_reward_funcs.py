"""The remote reward against the real app in-process (`TestClient`): batching, masking, logging, weights."""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from trl.trainer.utils import get_callable_name

from shared_schema import InfoResponse, ScoreItem
from trainer.client.env_client import EnvClient, EnvUnavailableError
from trainer.client.rewards import RewardResponse
from trainer.training.reward_funcs import EnvScorer, RewardContractError, completion_text


class CountingClient(EnvClient):
    """EnvClient that records every `/v1/score` batch it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[list[ScoreItem]] = []

    def rewards(self, items: Sequence[ScoreItem], profile: str = "default") -> RewardResponse:
        self.batches.append(list(items))
        return super().rewards(items, profile)


class Logs:
    """Stands in for TRL's `log_metric` / `log_extra` reward kwargs."""

    def __init__(self) -> None:
        self.metrics: dict[str, list[float]] = defaultdict(list)
        self.extra: dict[str, list[Any]] = defaultdict(list)

    def kwargs(self) -> dict[str, Any]:
        return {
            "log_metric": lambda k, v: self.metrics[k].append(v),
            "log_extra": lambda k, v: self.extra[k].extend(v),
        }


@pytest.fixture()
def env(client: TestClient) -> CountingClient:
    return CountingClient(client)


@pytest.fixture(scope="module")
def gold(client: TestClient) -> dict[str, str]:
    """problem_id → the optimal answer, for three train problems."""
    env = EnvClient(client)
    return {p.id: env.solve(p).completion for p in env.problems("train", 0, 3).items}


def call_all(scorer: EnvScorer, completions: list[Any], ids: list[str], **kw: Any) -> dict[str, list[Any]]:
    """Call every component the way TRL does (one after another, same batch)."""
    return {
        f.__name__: f(prompts=[None] * len(ids), completions=completions, problem_id=ids, **kw)
        for f in scorer.reward_funcs()
    }


def test_components_and_weights_come_from_the_servers_profile(env: CountingClient) -> None:
    for profile in env.info().profiles:
        scorer = EnvScorer(env, profile.name)
        funcs = scorer.reward_funcs()
        assert [get_callable_name(f) for f in funcs] == [c.name for c in profile.components]
        assert scorer.weights == [c.weight for c in profile.components]
    with pytest.raises(ValueError, match="not served"):
        EnvScorer(env, "no-such-profile")


def test_one_request_per_batch_for_all_components(env: CountingClient, gold: dict[str, str]) -> None:
    scorer = EnvScorer(env)
    ids = list(gold)
    call_all(scorer, [gold[i] for i in ids], ids)
    assert len(env.batches) == 1 and len(env.batches[0]) == len(ids)
    call_all(scorer, ["nothing"] * len(ids), ids)
    call_all(scorer, ["nothing"] * len(ids), ids)  # same content, next batch: scored again
    assert len(env.batches) == 3


def test_weighted_fractions_add_up_to_the_servers_reward(env: CountingClient, gold: dict[str, str]) -> None:
    ids = list(gold)
    completions = [
        gold[ids[0]],
        "<think>hm</think><schedule></schedule>",
        gold[ids[2]].replace("</schedule>", ""),
    ]
    scorer = EnvScorer(env)
    out = call_all(scorer, completions, ids)
    server = env.score([ScoreItem(problem_id=i, completion=c) for i, c in zip(ids, completions, strict=True)])
    for row, result in enumerate(server.results):
        total = sum(
            w * out[name][row] for name, w in zip(scorer.component_names, scorer.weights, strict=True)
        )
        assert total == pytest.approx(result.reward)
        for name, w in zip(scorer.component_names, scorer.weights, strict=True):
            assert w * out[name][row] == pytest.approx(result.components[name])
    assert [out[name][0] for name in scorer.component_names] == [1.0, 1.0, 1.0]


def test_unscorable_items_become_none_and_the_rest_is_scored(
    env: CountingClient, gold: dict[str, str]
) -> None:
    pid = next(iter(gold))
    logs = Logs()
    out = call_all(EnvScorer(env), [gold[pid], gold[pid]], [pid, "train-999999"], **logs.kwargs())
    for values in out.values():
        assert values[0] == 1.0 and values[1] is None
    assert logs.metrics["env/unscored_frac"] == [0.5]
    assert logs.metrics["env/valid_frac"] == [1.0] and logs.metrics["env/overlap_frac"] == [0.0]
    assert logs.extra["problem_id"] == [pid, "train-999999"]
    assert logs.extra["verdict"][0] == "valid" and "unknown problem_id" in logs.extra["verdict"][1]


def test_conversational_completions_score_the_assistant_text(
    env: CountingClient, gold: dict[str, str]
) -> None:
    pid = next(iter(gold))
    as_chat = [[{"role": "assistant", "content": gold[pid]}]]
    as_blocks = [[{"role": "assistant", "content": [{"type": "text", "text": gold[pid]}]}]]
    for completions in (as_chat, as_blocks):
        assert call_all(EnvScorer(env), completions, [pid])["score"] == [1.0]
    assert env.batches[-1][0].completion == gold[pid]


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}], "ab"),
        ([{"role": "tool", "content": "x"}, {"role": "assistant", "content": None}], ""),
    ],
)
def test_completion_text(completion: Any, text: str) -> None:
    assert completion_text(completion) == text


class FakeBackend:
    """A backend that answers `info` from the real app and then misbehaves on `score`."""

    def __init__(self, info: InfoResponse, fail: Exception | None = None, version: str | None = None) -> None:
        self._info, self.fail, self.version = info, fail, version

    def info(self) -> InfoResponse:
        return self._info

    def rewards(self, items: Sequence[ScoreItem], profile: str = "default") -> RewardResponse:
        if self.fail is not None:
            raise self.fail
        return RewardResponse(
            reward_version=self.version or self._info.reward_version, profile=profile, results=[]
        )


def test_unreachable_service_is_raised_never_a_zero_reward(env: CountingClient) -> None:
    scorer = EnvScorer(FakeBackend(env.info(), fail=EnvUnavailableError("down after 5 attempts")))
    with pytest.raises(EnvUnavailableError, match="down"):
        call_all(scorer, ["x"], ["train-000000"])


def test_reward_version_change_mid_run_stops_the_run(env: CountingClient) -> None:
    scorer = EnvScorer(FakeBackend(env.info(), version="99.0.0"))
    with pytest.raises(RewardContractError, match=r"reward_version 99\.0\.0"):
        call_all(scorer, ["x"], ["train-000000"])


def test_reward_functions_pickle(env: CountingClient, gold: dict[str, str]) -> None:
    scorer = EnvScorer(env)
    funcs = pickle.loads(pickle.dumps(scorer.reward_funcs()))
    assert [f.__name__ for f in funcs] == scorer.component_names
    assert funcs[0].scorer is funcs[1].scorer
    assert isinstance(funcs[0].scorer.backend, EnvClient) and funcs[0].scorer.backend.base_url == env.base_url


def test_pickled_scorer_keeps_every_replica_and_the_retry_policy(env: CountingClient) -> None:
    remote = EnvClient.from_url(
        "http://a:8000, http://b:8000/", timeout=3.5, max_attempts=7, backoff_initial=0.1
    )
    scorer = EnvScorer(FakeBackend(env.info()))
    scorer.backend = remote
    clone = pickle.loads(pickle.dumps(scorer))
    assert isinstance(clone.backend, EnvClient)
    assert clone.backend.url == "http://a:8000,http://b:8000"
    assert clone.backend.retry_settings() == remote.retry_settings()
    assert clone.backend.http.timeout == remote.http.timeout


def test_scored_batches_reach_the_on_results_callback(env: CountingClient, gold: dict[str, str]) -> None:
    """What a curriculum listens to: every scored batch, ids and results in order, once per batch."""
    seen: list[tuple[list[str], list[float | None]]] = []
    scorer = EnvScorer(env, on_results=lambda ids, results: seen.append((ids, [r.reward for r in results])))
    pid = next(iter(gold))
    call_all(scorer, [gold[pid], "nonsense"], [pid, pid])
    assert seen == [([pid, pid], [100.0, 0.0])]
