"""EnvClient: typed calls against the real app in-process, and retries against scripted transports."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from shared_schema import ScoreItem, Verdict
from trainer.env_client import EnvClient, EnvRequestError, EnvUnavailableError


@pytest.fixture(scope="module")
def env(client: TestClient) -> EnvClient:
    return EnvClient(client)


def scripted(responses: list[int | type[Exception]]) -> tuple[httpx.Client, list[str]]:
    """An httpx client whose transport answers each request with the next status, or raises the error."""
    calls: list[str] = []
    queue: Iterator[int | type[Exception]] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        step = next(queue)
        if isinstance(step, type):
            raise step("scripted failure", request=request)
        body = {"status": "ok", "reward_version": "1.0.0"} if step == 200 else {"detail": "boom"}
        return httpx.Response(step, json=body)

    return httpx.Client(base_url="http://env.test", transport=httpx.MockTransport(handler)), calls


def fast(http: httpx.Client, attempts: int = 3) -> EnvClient:
    return EnvClient(http, max_attempts=attempts, backoff_initial=0.001, backoff_max=0.002)


def test_health_and_info(env: EnvClient) -> None:
    assert env.health().status == "ok"
    info = env.info()
    assert info.default_profile in {p.name for p in info.profiles}
    assert info.splits["train"] == 64


def test_all_problems_pages_through_the_split(env: EnvClient) -> None:
    some = env.all_problems("train", limit=25, page_size=10)
    assert len(some) == 25
    assert len({p.id for p in some}) == 25
    assert [m.role for m in some[0].prompt] == ["system", "user"]
    assert len(env.all_problems("test", page_size=5)) == 16
    assert env.problem(some[3].id) == some[3]


def test_score_gold_answer_earns_the_maximum(env: EnvClient) -> None:
    problem = env.problems("train", 0, 1).items[0]
    gold = env.solve(problem).completion
    response = env.score([ScoreItem(problem_id=problem.id, completion=gold)])
    (result,) = response.results
    assert result.reward == 100.0 and result.verdict == Verdict.valid
    assert response.reward_version == env.health().reward_version


def test_unknown_problem_id_is_an_item_error_not_a_failure(env: EnvClient) -> None:
    response = env.score(
        [ScoreItem(problem_id="nope", completion="x"), ScoreItem(problem_id="train-000000", completion="x")]
    )
    assert response.results[0].reward is None and "nope" in (response.results[0].error or "")
    assert response.results[1].reward == 0.0


def test_client_errors_are_not_retried(env: EnvClient) -> None:
    with pytest.raises(EnvRequestError) as e:
        env.score([ScoreItem(problem_id="train-000000", completion="x")], profile="no-such-profile")
    assert e.value.status_code == 422
    http, calls = scripted([404])
    with pytest.raises(EnvRequestError):
        fast(http).health()
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("script", "calls"),
    [
        ([httpx.ConnectError, 200], 2),
        ([503, 502, 200], 3),
        ([httpx.ReadTimeout, 500, 200], 3),
    ],
)
def test_transient_failures_are_retried(script: list[int | type[Exception]], calls: int) -> None:
    http, seen = scripted(script)
    assert fast(http).health().status == "ok"
    assert len(seen) == calls


@pytest.mark.parametrize("failure", [httpx.ConnectError, 503])
def test_gives_up_with_a_clear_error_after_the_last_attempt(failure: int | type[Exception]) -> None:
    http, seen = scripted([failure] * 4)
    with pytest.raises(EnvUnavailableError, match=r"failed 4 times on GET /health.*sched-env serve"):
        fast(http, attempts=4).health()
    assert len(seen) == 4


def test_wait_until_healthy_polls_until_the_service_answers() -> None:
    http, seen = scripted([httpx.ConnectError, 503, 200])
    assert fast(http).wait_until_healthy(timeout=5, interval=0.001).status == "ok"
    assert len(seen) == 3


def test_wait_until_healthy_times_out_with_advice() -> None:
    http, _ = scripted([httpx.ConnectError] * 10_000)
    with pytest.raises(EnvUnavailableError, match="not healthy"):
        fast(http).wait_until_healthy(timeout=0.05, interval=0.01)


def test_from_url_sets_base_url_and_timeouts() -> None:
    with EnvClient.from_url("http://example.test:9/", timeout=3.0) as env:
        assert env.base_url == "http://example.test:9"
        assert isinstance(env.http, httpx.Client) and env.http.timeout.read == 3.0
