"""verl reward functions that score through the environment service.

verl loads a custom reward function by file path and calls it once per sample (`compute_score`, naive
reward manager) or once per batch (`compute_score_batch`, batch reward manager). Both send the completion
and the ground truth (a problem id, or the problem as JSON) to `/v1/score`, so verl's score equals the
service's reward, and each component is returned beside it (`reward_format`, …) for verl to log:

    custom_reward_function.path=trainer/integrations/verl.py
    custom_reward_function.name=compute_score_batch
    reward_model.reward_manager=batch

The service URL comes from `SCHED_ENV_URL` (default `http://127.0.0.1:8000`; a comma-separated list of
replicas is spread round-robin). verl gives a reward function no configuration object, so this entry point
reads that one variable itself, the single exception to "only `Settings` reads the environment".
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from shared_schema import ScoreItem, ScoreResult
from shared_schema.integrations import label_to_item
from trainer.client.env_client import EnvClient

URL_VARIABLE = "SCHED_ENV_URL"
DEFAULT_URL = "http://127.0.0.1:8000"

_client: EnvClient | None = None
_lock = threading.Lock()


def get_client() -> EnvClient:
    """The module's client, created on first use (verl may import this file in processes that never score)."""
    global _client
    with _lock:
        if _client is None:
            _client = EnvClient.from_url(os.environ.get(URL_VARIABLE, DEFAULT_URL))
        return _client


def set_client(client: EnvClient | None) -> None:
    """Use this client from now on (tests pass one over `TestClient(app)`); None resets to the default."""
    global _client
    with _lock:
        _client = client


def _as_dict(result: ScoreResult) -> dict[str, Any]:
    if result.reward is None:
        raise ValueError(f"the environment could not score this sample: {result.error}")
    return {
        "score": result.reward,
        **{f"reward_{name}": points for name, points in result.components.items()},
        "score_ratio": result.score_ratio or 0.0,
        "valid": float(result.verdict is not None and result.verdict.value == "valid"),
    }


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[str | Mapping[str, Any]],
    extra_infos: Sequence[Any] | None = None,
    profile: str = "default",
    **_: Any,
) -> list[dict[str, Any]]:
    """One `/v1/score` request for the whole batch → one dict per sample: `score` (the service's reward),
    each reward component as `reward_<name>` (the `default` profile has a component named `score`),
    `score_ratio` and `valid`. `profile` can be set through verl's
    `custom_reward_function.reward_kwargs`."""
    if len(solution_strs) != len(ground_truths):
        raise ValueError(f"{len(solution_strs)} solutions but {len(ground_truths)} ground truths")
    items: list[ScoreItem] = [
        label_to_item(gt, s) for s, gt in zip(solution_strs, ground_truths, strict=True)
    ]
    response = get_client().score(items, profile=profile)
    return [_as_dict(r) for r in response.results]


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str | Mapping[str, Any],
    extra_info: Any = None,
    profile: str = "default",
    **_: Any,
) -> dict[str, Any]:
    """verl's per-sample signature; same result as `compute_score_batch` for a batch of one."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], profile)[0]
