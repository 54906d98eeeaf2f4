"""The reward path's call (`EnvClient.rewards`): the same answers as `EnvClient.score`, over the same
retries and failover, on the client's transport."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from shared_schema import ProblemSpec, ScoreItem, ScoreRequest, ScoreResponse, ScoreResult, Verdict
from tests.conftest import LiveServer, free_port
from trainer.client.env_client import EnvClient, EnvRequestError, EnvUnavailableError, score_request_json
from trainer.client.rewards import RewardDecodeError, RewardResult, decode_rewards

FIELDS = RewardResult.__struct_fields__


@pytest.fixture(scope="module")
def env(client: TestClient) -> EnvClient:
    return EnvClient(client)


@pytest.fixture(scope="module")
def items(env: EnvClient) -> list[ScoreItem]:
    """Every kind of answer: valid, each common verdict, a failed item, inline problems."""
    a, b = env.problems("train", 0, 2).items
    gold_a, gold_b = env.solve(a).completion, env.solve(b).completion
    inline = ProblemSpec(events=a.events, priorities=a.priorities)
    texts = [
        gold_a,
        gold_a.replace("</schedule>", ""),
        "<think>hm</think><schedule></schedule>",
        gold_b,  # b's events against a: unknown events
        "<think>x</think>\n<schedule>\n" + "\n".join(reversed(gold_a.split("<schedule>")[-1].split("\n"))),
        "no tags at all",
    ]
    out = [ScoreItem(problem_id=a.id, completion=t) for t in texts]
    out += [ScoreItem(problem=inline, completion=t) for t in texts]
    out += [
        ScoreItem(problem_id="no-such-problem", completion=gold_a),
        ScoreItem(problem_id=b.id, completion=gold_b),
    ]
    return out


def as_view(result: ScoreResult) -> RewardResult:
    return RewardResult(**{f: getattr(result, f) for f in FIELDS})


def test_the_view_names_fields_of_score_result_with_the_same_defaults() -> None:
    assert set(FIELDS) <= set(ScoreResult.model_fields)
    assert as_view(ScoreResult(reward=None)) == RewardResult(reward=None)


def test_the_view_decodes_real_answers_as_score_response_does(
    client: TestClient, env: EnvClient, items: list[ScoreItem]
) -> None:
    seen: set[Verdict | None] = set()
    for profile in [p.name for p in env.info().profiles]:
        body = score_request_json(ScoreRequest(profile=profile, items=items))
        raw = client.post("/v1/score", content=body, headers={"content-type": "application/json"}).content
        whole, view = ScoreResponse.model_validate_json(raw), decode_rewards(raw)
        assert (view.reward_version, view.profile) == (whole.reward_version, whole.profile)
        assert view.results == [as_view(r) for r in whole.results]
        for got, want in zip(view.results, whole.results, strict=True):
            for f in FIELDS:  # same values of the same types (an integral reward is a float in both)
                assert type(getattr(got, f)) is type(getattr(want, f)), f
        assert any(r.violations for r in whole.results)
        seen |= {r.verdict for r in whole.results}
        # the client's two calls: same request, same results
        assert env.rewards(items, profile).results == [as_view(r) for r in env.score(items, profile).results]
    assert {Verdict.valid, Verdict.format_error, Verdict.unknown_event, None} <= seen


def test_a_malformed_answer_is_an_error_not_a_reward() -> None:
    for raw in (b"{", b'{"reward_version": "1", "profile": "default"}', b'{"reward_version": "1", '
                b'"profile": "default", "results": [{"reward": "high"}]}'):  # fmt: skip
        with pytest.raises(RewardDecodeError):
            decode_rewards(raw)


def test_rewards_is_refused_like_score(env: EnvClient, items: list[ScoreItem]) -> None:
    with pytest.raises(EnvRequestError) as e:
        env.rewards(items, profile="no-such-profile")
    assert e.value.status_code == 422


@pytest.fixture(scope="module")
def live(live_server: LiveServer) -> Iterator[EnvClient]:
    with EnvClient.from_url(live_server.url, max_attempts=3, backoff_initial=0.01) as env:
        yield env


def test_from_url_posts_bodies_on_its_transport_with_the_same_answers(
    live: EnvClient, env: EnvClient, items: list[ScoreItem], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> httpx.Response:
        raise AssertionError("went through httpx.Client.request")

    monkeypatch.setattr(live.http, "request", refuse)
    assert live.rewards(items).results == env.rewards(items).results
    assert live.score(items) == env.score(items)
    with pytest.raises(AssertionError):
        live.health()  # everything but a posted body still goes through the client


def scripted_direct(steps: list[int | type[Exception]]) -> tuple[EnvClient, list[str]]:
    """An `EnvClient` whose direct transport answers each post with the next status, or raises the error."""
    calls: list[str] = []
    queue = iter(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.url.host}{request.url.path}")
        step = next(queue)
        if isinstance(step, type):
            raise step("scripted failure", request=request)
        if step != 200:
            return httpx.Response(step, json={"detail": "boom"})
        return httpx.Response(
            200, json={"reward_version": "1", "profile": "default", "results": [{"reward": 1}]}
        )

    transport = httpx.MockTransport(handler)
    http = httpx.Client(base_url="http://env.test/prefix", transport=transport)
    env = EnvClient(http, max_attempts=4, backoff_initial=0.001, backoff_max=0.002)
    env._send_directly(http, transport)
    return env, calls


@pytest.mark.parametrize(
    "script",
    [[503, 200], [httpx.ConnectError, 200], [httpx.ReadTimeout, 502, 200], [httpx.RemoteProtocolError, 200]],
)
def test_the_direct_post_is_retried_like_any_call(script: list[int | type[Exception]]) -> None:
    env, calls = scripted_direct(script)
    (result,) = env.rewards([ScoreItem(problem_id="p", completion="x")]).results
    assert result == RewardResult(reward=1.0)
    assert calls == ["env.test/prefix/v1/score"] * len(script)


def test_the_direct_post_gives_up_and_never_retries_a_4xx() -> None:
    env, calls = scripted_direct([503] * 4)
    with pytest.raises(EnvUnavailableError):
        env.rewards([ScoreItem(problem_id="p", completion="x")])
    assert len(calls) == 4
    env, calls = scripted_direct([422])
    with pytest.raises(EnvRequestError):
        env.score([ScoreItem(problem_id="p", completion="x")])
    assert len(calls) == 1


def test_the_direct_post_fails_over_to_a_live_replica(
    live_server: LiveServer, items: list[ScoreItem]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with EnvClient.from_url(f"{dead},{live_server.url}", max_attempts=1) as env:
        transport = env.http._transport  # type: ignore[attr-defined]
        for _ in range(3):
            assert len(env.rewards(items).results) == len(items)
        assert transport.served[live_server.url] == 3 and not transport.served[dead]


def test_direct_posts_only_from_the_client_it_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    assert EnvClient.from_url("http://env.test")._direct is None  # the proxy settings pick the route
    monkeypatch.delenv("HTTP_PROXY")
    env = EnvClient.from_url("http://env.test")
    assert env._direct is not None
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={"reward_version": "1", "profile": "default", "results": []})

    env.http = httpx.Client(base_url="http://env.test", transport=httpx.MockTransport(handler))
    assert env.rewards([ScoreItem(problem_id="p", completion="x")]).results == []
    assert calls == ["/v1/score"]
