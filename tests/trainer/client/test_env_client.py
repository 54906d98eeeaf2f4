"""EnvClient: typed calls against the real app in-process, and retries against scripted transports."""

from __future__ import annotations

import logging
import pickle
import random
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.service.app import create_app
from env_server.service.settings import Settings
from env_server.task.generator import generate_problem
from shared_schema import Event, Problem, ProblemSpec, ScoreItem, ScoreRequest, Verdict
from trainer.client.env_client import (
    DEFAULT_RETRY_TIMEOUT,
    POOL_LIMITS,
    EnvClient,
    EnvRequestError,
    EnvUnavailableError,
    backoff_wait,
    score_request_json,
)


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


# --- retries by time, with jitter and a log line per wait (issue 9) ---------------------------------------


def test_retries_go_on_past_five_attempts_while_time_is_left() -> None:
    """A restart takes about 5 s: more failures than the old 5-attempt limit, then the service is back."""
    http, seen = scripted([httpx.ConnectError] * 12 + [200])
    env = EnvClient(http, retry_timeout=30, backoff_initial=0.001, backoff_max=0.002)
    assert env.health().status == "ok" and len(seen) == 13


def test_gives_up_when_the_retry_time_is_spent(caplog: pytest.LogCaptureFixture) -> None:
    http, seen = scripted([httpx.ConnectError] * 10_000)
    env = EnvClient(http, retry_timeout=0.3, backoff_initial=0.02, backoff_max=0.05)
    start = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="trainer.client.env_client"),
        pytest.raises(
            EnvUnavailableError, match=r"failed \d+ times on GET /health over \d+s.*sched-env serve"
        ),
    ):
        env.health()
    assert 0.3 <= time.monotonic() - start < 2
    waits = [r.getMessage() for r in caplog.records]
    assert len(waits) == len(seen) - 1 >= 5  # one line per wait, none after the last attempt
    assert "GET /health failed (ConnectError" in waits[0] and "retry 1 in" in waits[0]
    assert "giving up in" in waits[-1]


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    rng = random.Random(0)
    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0), (500, 8.0)]:
        waits = [backoff_wait(attempt, 0.5, 8.0, rng) for _ in range(200)]
        assert all(cap / 2 <= w <= cap for w in waits)
        assert len(set(waits)) == 200  # jittered: clients that lost one service do not return in lockstep


def test_the_client_sleeps_what_it_logs() -> None:
    slept: list[float] = []
    http, _ = scripted([503, 503, 200])
    env = EnvClient(http, retry_timeout=60, backoff_initial=1.0, backoff_max=8.0, sleep=slept.append)
    assert env.health().status == "ok"
    assert 0.5 <= slept[0] <= 1.0 and 1.0 <= slept[1] <= 2.0


def test_retry_policy_defaults_and_configuration() -> None:
    env = EnvClient.from_url("http://example.test:9")
    assert env.retry_timeout == DEFAULT_RETRY_TIMEOUT == 120.0 and env.max_attempts is None
    tuned = EnvClient.from_url("http://example.test:9", retry_timeout=15, max_attempts=3, api_key="k")
    clone = pickle.loads(pickle.dumps(tuned))
    assert clone.retry_settings() == tuned.retry_settings()
    assert clone.retry_timeout == 15 and clone.api_key == "k"


# --- API keys ------------------------------------------------------------------------------------------


def test_api_key_is_sent_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"status": "ok", "reward_version": "1.0.0"})

    monkeypatch.setenv("SCHED_API_KEY", "from-env")
    env = EnvClient.from_url("http://env.test")
    env.http = httpx.Client(base_url="http://env.test", transport=httpx.MockTransport(handler))
    env.health()
    env.wait_until_healthy(timeout=1)
    assert seen == ["Bearer from-env", "Bearer from-env"]
    assert EnvClient.from_url("http://env.test", api_key="given").api_key == "given"
    monkeypatch.delenv("SCHED_API_KEY")
    assert EnvClient.from_url("http://env.test").api_key is None


def test_a_keyed_service_answers_the_client_with_its_key() -> None:
    app = create_app(Settings(train_size=4, test_size=2, api_keys="secret"))
    with TestClient(app) as http:
        assert EnvClient(http, api_key="secret").info().splits == {"train": 4, "test": 2}
        with pytest.raises(EnvRequestError) as refused:
            EnvClient(http).info()
        assert refused.value.status_code == 401  # not retried: a wrong key is a configuration mistake


class _Tagged(Event):
    """A subclass with a field of its own: pydantic writes only `Event`'s fields for it."""

    tag: str = "x"


_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)  # any text JSON can carry
_names = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Zs", "Cc"], exclude_characters="<>"), min_size=1
)


@st.composite
def _spec(draw: st.DrawFn) -> ProblemSpec:
    names = draw(st.lists(_names.map(str.strip).filter(bool), min_size=1, max_size=5, unique=True))
    starts = [draw(st.integers(0, 2000)) for _ in names]
    kind = draw(st.sampled_from([Event, _Tagged]))
    events = [kind(name=n, start=f"{s // 60:02d}:{s % 60:02d}", end=f"{(s + 30) // 60:02d}:{(s + 30) % 60:02d}")
              for n, s in zip(names, starts, strict=True)]  # fmt: skip
    priorities = draw(st.lists(st.sampled_from(names), unique=True))
    return ProblemSpec(events=events, priorities=priorities)


_items = st.one_of(
    st.builds(lambda pid, c: ScoreItem(problem_id=pid, completion=c), _text, _text),
    st.builds(lambda spec, c: ScoreItem(problem=spec, completion=c), _spec(), _text),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_items, min_size=1, max_size=6),
    st.sampled_from(["default", "original", "graded", "other"]),
    st.booleans(),
)
def test_the_body_is_what_pydantic_writes(items: list[ScoreItem], profile: str, events: bool) -> None:
    req = ScoreRequest(profile=profile, items=items, return_events=events)
    assert score_request_json(req) == req.model_dump_json(exclude_none=True, exclude_defaults=True).encode()


def test_the_body_of_served_problems_and_control_characters_is_what_pydantic_writes() -> None:
    served = generate_problem(0, "train", 5)
    assert isinstance(served, Problem)  # a subclass, with `id` and `optimal_score`: written as a spec
    req = ScoreRequest(items=[ScoreItem(problem=served, completion='\x00\x1f\x7f\u2028é😀"\\/\n\t')])
    assert score_request_json(req) == req.model_dump_json(exclude_none=True, exclude_defaults=True).encode()


def test_the_body_writer_knows_every_field_of_the_request() -> None:
    """A field added to these models must be added to `score_request_json` (or it would not be sent)."""
    assert list(ScoreRequest.model_fields) == ["profile", "items", "return_events"]
    assert list(ScoreItem.model_fields) == ["problem_id", "problem", "completion"]
    assert list(ProblemSpec.model_fields) == ["events", "priorities"]
    assert list(Event.model_fields) == ["name", "start", "end"]
    event = Event(name="A", start="09:00", end="10:00")
    assert (event.start_min, event.end_min, event.duration) == (540, 600, 60)
    assert list(vars(event)) == ["name", "start", "end"]  # properties leave the instance dict alone


def test_from_url_pools_a_connection_per_concurrent_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both kinds of client (one URL, replicas) send through a transport with the project's pool: every
    connection kept, and idle ones dropped before a server's keep-alive (uvicorn's 5 s, this service's
    `keep_alive_timeout`) closes them (bench/episodes_load.py has the figures)."""
    seen: list[httpx.Limits | None] = []
    real = httpx.HTTPTransport

    def recording(*args: object, **kwargs: object) -> httpx.HTTPTransport:
        limits = kwargs.get("limits")
        seen.append(limits if isinstance(limits, httpx.Limits) else None)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx, "HTTPTransport", recording)
    EnvClient.from_url("http://127.0.0.1:9").close()
    EnvClient.from_url("http://127.0.0.1:9,http://127.0.0.1:10").close()
    assert seen == [POOL_LIMITS, POOL_LIMITS]
    assert POOL_LIMITS.max_connections == POOL_LIMITS.max_keepalive_connections == 1024
    expiry = POOL_LIMITS.keepalive_expiry
    assert expiry is not None and expiry < 5 < Settings().keep_alive_timeout


class LosesFirstAnswers(httpx.BaseTransport):
    """Passes every request to the app, but loses the answer of the first attempt of each episode call
    (the service did the work; the client sees a `ReadError`), as a connection dropped mid-answer would."""

    def __init__(self, app_transport: httpx.BaseTransport) -> None:
        self.inner, self.lost = app_transport, 0
        self.seen: set[bytes] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answered = self.inner.handle_request(request)
        response = httpx.Response(answered.status_code, headers=answered.headers, content=answered.read())
        body = request.read()
        if request.url.path.endswith(("/check", "/submit")) and body not in self.seen:
            self.seen.add(body)
            self.lost += 1
            raise httpx.ReadError("connection dropped before the answer", request=request)
        return response


def test_episode_calls_survive_a_lost_answer(client: TestClient) -> None:
    """`EnvClient` retries a check and a submit whose answers were lost: the retry carries the call's
    `call_id`, so the check is spent once and the submit returns its reward, not a 404."""
    from shared_schema.episodes import EpisodeStart

    flaky = LosesFirstAnswers(client._transport)
    env = EnvClient(httpx.Client(base_url="http://testserver", transport=flaky), sleep=lambda _: None)
    ep = env.episode_start(EpisodeStart(problem_id="train-000001", checks=2))
    gold = env.solve(ProblemSpec(events=ep.events, priorities=ep.priorities)).completion
    checked = env.episode_check(ep.episode_id, gold)
    assert checked.verdict is Verdict.valid and checked.checks_used == 1 and checked.remaining_checks == 1
    assert env.episode_state(ep.episode_id).checks_used == 1  # spent once, not twice
    done = env.episode_submit(ep.episode_id, gold)
    assert done.reward == 100.0 and done.checks_used == 1
    assert flaky.lost == 2  # both answers were lost once, and both calls still succeeded
