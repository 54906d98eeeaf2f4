"""Remote reward for TRL's `GRPOTrainer`: the service scores, the trainer only carries the numbers.

TRL calls each reward function separately and logs `rewards/<name>/mean` for each. To log every
component of the service's profile while still sending **one** `/v1/score` request per reward batch,
one `EnvScorer` is shared by one `EnvComponentReward` per component: the first component called for a
batch sends the request, the others read the cached results. Each component returns the *fraction* of
its points earned (0–1) and `reward_weights` are the profile's weights, so TRL's `reward` equals the
service's total `reward` and the weights live in one place, the service's profile.

Items the service could not score (`error`) become `None`, which TRL masks. If the service stays
unreachable after the client's retries, `EnvUnavailableError` propagates and stops training: a reward
is never invented.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared_schema import InfoResponse, ProfileInfo, ScoreItem, Verdict
from trainer.client.rewards import RewardResponse, RewardResult


class ScoreBackend(Protocol):
    """What the scorer needs: `EnvClient` over HTTP (benchmarks also plug in an in-process backend).
    `rewards` is `/v1/score` answered with the fields a reward reads (`trainer.client.rewards`)."""

    def info(self) -> InfoResponse: ...

    def rewards(self, items: Sequence[ScoreItem], profile: str = "default") -> RewardResponse: ...


class RewardContractError(RuntimeError):
    """The service answered something the run cannot use (another reward version, a missing component)."""


def completion_text(completion: Any) -> str:
    """The text to score: a plain string, or the assistant content of a conversational completion."""
    if isinstance(completion, str):
        return completion
    parts: list[str] = []
    for message in completion:
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content") or ""
        if isinstance(content, str):
            parts.append(content)
        else:  # content blocks: [{"type": "text", "text": ...}, ...]
            parts.extend(block.get("text", "") for block in content if block.get("type") == "text")
    return "".join(parts)


@dataclass
class _Batch:
    key: tuple[tuple[str, ...], tuple[str, ...]]
    results: list[RewardResult]
    readers_left: int


class EnvScorer:
    """Scores a reward batch with one request and serves the results to every component of the profile."""

    def __init__(
        self,
        backend: ScoreBackend,
        profile: str = "default",
        on_results: Callable[[list[str], list[RewardResult]], None] | None = None,
    ) -> None:
        self.backend = backend
        self.on_results = on_results  # called with each scored batch (a curriculum reports its groups)
        info = backend.info()
        by_name = {p.name: p for p in info.profiles}
        if profile not in by_name:
            raise ValueError(f"profile {profile!r} is not served; the service offers {sorted(by_name)}")
        self.profile: ProfileInfo = by_name[profile]
        self.reward_version = info.reward_version
        self.requests = 0
        self.seconds = 0.0
        self._batch: _Batch | None = None

    @property
    def component_names(self) -> list[str]:
        return [c.name for c in self.profile.components]

    @property
    def weights(self) -> list[float]:
        """The profile's weights, in component order: TRL's `reward_weights`."""
        return [c.weight for c in self.profile.components]

    def reward_funcs(self) -> list[EnvComponentReward]:
        """One TRL reward function per component, all sharing this scorer."""
        return [EnvComponentReward(self, c.name, c.weight) for c in self.profile.components]

    def results(
        self, completions: Sequence[Any], problem_ids: Sequence[str], **kwargs: Any
    ) -> list[RewardResult]:
        """The service's results for this batch: fetched once, then served to the other components."""
        environments = kwargs.get("environments")
        if environments is not None and all(hasattr(e, "_final_answer") for e in environments):
            # tool episodes (trainer.client.tool_env.TrainingToolEnv): the answer each one ended with
            texts = tuple(e._final_answer(c) for e, c in zip(environments, completions, strict=True))
        else:
            texts = tuple(completion_text(c) for c in completions)
        key = (tuple(problem_ids), texts)
        batch = self._batch
        if batch is not None and batch.key == key and batch.readers_left > 0:
            batch.readers_left -= 1
            return batch.results
        results = self._fetch(key, kwargs)
        self._batch = _Batch(key, results, len(self.profile.components) - 1)
        return results

    def _fetch(
        self, key: tuple[tuple[str, ...], tuple[str, ...]], kwargs: dict[str, Any]
    ) -> list[RewardResult]:
        ids, texts = key
        if len(ids) != len(texts):
            raise ValueError(f"{len(texts)} completions but {len(ids)} problem ids")
        items = [ScoreItem(problem_id=pid, completion=text) for pid, text in zip(ids, texts, strict=True)]
        start = time.perf_counter()
        response = self.backend.rewards(items, self.profile.name)
        self.seconds += time.perf_counter() - start
        self.requests += 1
        if response.reward_version != self.reward_version:
            raise RewardContractError(
                f"the service now answers reward_version {response.reward_version}, the run started with "
                f"{self.reward_version}; rewards of one run must come from one version. Restart the run."
            )
        if len(response.results) != len(items):
            raise RewardContractError(f"sent {len(items)} items, got {len(response.results)} results")
        _log_batch(response.results, kwargs.get("log_metric"), kwargs.get("log_extra"), list(ids))
        _log_tool_use(kwargs.get("environments"), kwargs.get("log_metric"))
        if self.on_results is not None:
            self.on_results(list(ids), response.results)
        return response.results

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the batch cache (an `EnvClient` backend pickles itself as its URL)."""
        return {**self.__dict__, "_batch": None, "on_results": None}


def _log_batch(
    results: list[RewardResult],
    log_metric: Callable[[str, float], None] | None,
    log_extra: Callable[[str, list[Any]], None] | None,
    problem_ids: list[str],
) -> None:
    """Batch-level figures TRL has no column for: unscored share, valid share, `overlap` share, mean score
    ratio (the verdict and the ratio do not depend on the profile: runs of two profiles compare)."""
    scored = [r for r in results if r.error is None]
    if log_metric is not None:
        log_metric("env/unscored_frac", 1 - len(scored) / len(results))
        if scored:
            log_metric("env/valid_frac", sum(r.verdict == Verdict.valid for r in scored) / len(scored))
            log_metric("env/overlap_frac", sum(r.verdict == Verdict.overlap for r in scored) / len(scored))
            log_metric("env/score_ratio", sum(r.score_ratio or 0.0 for r in scored) / len(scored))
    if log_extra is not None:
        log_extra("problem_id", problem_ids)
        log_extra("verdict", [r.verdict.value if r.verdict else r.error for r in results])


def _log_tool_use(
    environments: Sequence[Any] | None, log_metric: Callable[[str, float], None] | None
) -> None:
    """Tool episodes: checks spent per episode, and the share whose answer came by a `submit` call (the
    rest ended with a message, submitted for them)."""
    if not environments or log_metric is None or not all(hasattr(e, "checks_used") for e in environments):
        return
    log_metric("tools/checks_per_episode", sum(e.checks_used for e in environments) / len(environments))
    log_metric("tools/submit_called_frac", sum(e.submit_called for e in environments) / len(environments))


class EnvComponentReward:
    """TRL reward function for one component: the fraction of its points earned, `None` if unscored.

    Called as `f(prompts=..., completions=..., problem_id=[...], **kwargs)`; `problem_id` is the dataset
    column. Its `__name__` is the component name, so TRL logs `rewards/<component>/mean`.
    """

    def __init__(self, scorer: EnvScorer, component: str, weight: float) -> None:
        self.scorer, self.component, self.weight = scorer, component, weight
        self.__name__ = component

    def __call__(
        self, completions: Sequence[Any], problem_id: Sequence[str], **kwargs: Any
    ) -> list[float | None]:
        results = self.scorer.results(completions, problem_id, **kwargs)
        return [self._fraction(r) for r in results]

    def _fraction(self, result: RewardResult) -> float | None:
        if result.error is not None or result.reward is None:
            return None
        if self.component not in result.components:
            raise RewardContractError(
                f"the service's result has no component {self.component!r} (got {sorted(result.components)})"
            )
        points = result.components[self.component]
        return points / self.weight if self.weight else 0.0
