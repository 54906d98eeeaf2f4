"""GRPO on a curriculum session: prompts from `/v1/curriculum/{id}/next`, each group's rewards reported back.

    sched-train train --config trainer/configs/smollm2-135m-grpo-cpu.yaml --curriculum true
    sched-train train ... --curriculum true --curriculum_config '{"target": 0.5, "window": 4}'

`CurriculumFeed` is the whole integration, and it works with any trainer that takes a dataset and reward
functions (docs/training.md has a plain TRL example without this project's trainer):

- `feed.dataset()` is a `datasets.IterableDataset` that asks the session for problems only when the
  trainer reads them (a generation batch at a time), so the difficulty follows the learner with at most
  a batch of delay. Rows: `prompt` (chat messages), `problem_id`.
- `feed.observe(problem_ids, rewards)` groups a scored batch's rewards by problem and reports them;
  `EnvScorer(on_results=feed.observe_results)` calls it after every `/v1/score`.
- A service restarted without `SCHED_CURRICULUM_DIR` has lost the session: the feed puts back the last
  state it was sent (`PUT /v1/curriculum/{id}`) and goes on.

TRL shuffles a dataset through a buffer (1000 rows read ahead): the run turns `shuffle_dataset` off, the
session already mixes difficulties in every batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from shared_schema import ScoreResult
from shared_schema.curriculum import CurriculumConfig, CurriculumState, CurriculumStatus, GroupReport
from trainer.client.env_client import EnvClient, EnvRequestError
from trainer.client.rewards import RewardResult

log = logging.getLogger("trainer.training.curriculum")
T = TypeVar("T")


class CurriculumFeed:
    """One curriculum session, fed to a trainer: problems out, group rewards in."""

    def __init__(
        self, client: EnvClient, config: CurriculumConfig | None = None, prompts_per_call: int = 8
    ) -> None:
        self.client = client
        self.prompts_per_call = prompts_per_call
        status = client.curriculum_start(config)
        self.state: CurriculumState = status.state
        self.status: CurriculumStatus = status
        log.info(
            "curriculum session %s: rung %d (level %d, %.0f%% guided prompts)",
            self.session_id,
            self.state.rung,
            status.level,
            100 * status.guided,
        )

    @property
    def session_id(self) -> str:
        return self.state.session_id

    def _call(self, fn: Callable[[], T]) -> T:
        """`fn()`, and once more after putting the session back when the service has lost it (404)."""
        try:
            return fn()
        except EnvRequestError as e:
            if e.status_code != 404:
                raise
            log.warning("curriculum session %s lost by the service: restoring it", self.session_id)
            self.client.curriculum_restore(self.state)
            return fn()

    def _keep(self, status: CurriculumStatus) -> None:
        if status.state.rung != self.state.rung:
            log.info(
                "curriculum: rung %d -> %d (level %d, %.0f%% guided) after %d groups",
                self.state.rung,
                status.state.rung,
                status.level,
                100 * status.guided,
                status.state.reported,
            )
        self.state, self.status = status.state, status

    def rows(self) -> Iterator[dict[str, Any]]:
        """Rows without end: `prompt` and `problem_id` (plus `prompt_style`, `level`, for logs)."""
        while True:
            response = self._call(lambda: self.client.curriculum_next(self.session_id, self.prompts_per_call))
            self._keep(response)
            for p in response.problems:
                yield {
                    "prompt": [m.model_dump() for m in p.prompt],
                    "problem_id": p.id,
                    "prompt_style": p.prompt_style,
                    "level": p.level,
                }

    def dataset(self) -> Any:
        """The rows as a `datasets.IterableDataset`, read lazily by the trainer."""
        from datasets import IterableDataset

        return IterableDataset.from_generator(self.rows)

    def observe(self, problem_ids: Sequence[str], rewards: Sequence[float | None]) -> None:
        """Report a scored batch: rewards grouped by problem in first-seen order (unscored ones left out)."""
        groups: dict[str, list[float]] = {}
        for pid, reward in zip(problem_ids, rewards, strict=True):
            if reward is not None:
                groups.setdefault(pid, []).append(reward)
        reports = [GroupReport(problem_id=pid, rewards=r) for pid, r in groups.items()]
        if reports:
            self._keep(self._call(lambda: self.client.curriculum_report(self.session_id, reports)))

    def observe_results(
        self, problem_ids: Sequence[str], results: Sequence[ScoreResult | RewardResult]
    ) -> None:
        """`observe` with the service's results (what `EnvScorer(on_results=...)` passes)."""
        self.observe(problem_ids, [r.reward for r in results])


def parse_config(text: str | None) -> CurriculumConfig:
    """`--curriculum_config`: a JSON object of `CurriculumConfig` fields (none: the defaults)."""
    return CurriculumConfig.model_validate_json(text) if text else CurriculumConfig()
