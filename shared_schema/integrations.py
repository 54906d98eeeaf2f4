"""Wire types of the foreign protocols the service also speaks: OpenRLHF's remote reward model and OpenEnv.

They live here, beside our own contract, for the same reason our types do: the server validates with them,
clients and tests parse with them, and the OpenAPI page documents them. They differ from our own types in
one way: requests *ignore* unknown fields instead of forbidding them, because we do not control the
sender. OpenRLHF and OpenEnv add fields between releases, and rejecting a request that carries a new
optional field would stop someone's training run for nothing.

`label_to_item` is the one place where an integration's "label" / "ground truth" (a problem id or a problem
as JSON) becomes a `ScoreItem`; the OpenRLHF route and the verl reward function both use it, so they cannot
disagree on what a label means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, model_validator

from shared_schema.models import ChatMessage, Event, ProblemSpec, ScoreItem, ScoreResult, _FewFields
from shared_schema.text import CleanText

Label = CleanText | dict[str, Any]


def _json_integer(value: object) -> object:
    """JSON Schema's `integer`: `3` and `3.0`, never `true` or `"3"` (pydantic's lax mode takes both)."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError("must be a JSON integer, not a boolean or a string")
    return value


Count = Annotated[int, Field(ge=0), BeforeValidator(_json_integer)]  # this order: `minimum` in the schema
"""A non-negative JSON integer."""


def label_to_item(label: Label | Mapping[str, Any], completion: str) -> ScoreItem:
    """A `ScoreItem` for a label that is a problem id (`"train-000042"`) or a problem as JSON.

    A JSON label is an object with `events` (and `priorities`): a served problem with its `id`,
    `optimal_score` and `prompt` works too (the extra keys are dropped: the service recomputes the optimum).
    An object without `events` but with an `id` or `problem_id` is taken as that id. Raises `ValueError`
    with a readable message otherwise.
    """
    data: Any = label
    if isinstance(label, str):
        text = label.strip()
        if not text.startswith("{"):
            if not text:
                raise ValueError("empty label: expected a problem id or a problem as JSON")
            return ScoreItem(problem_id=text, completion=completion)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"label looks like JSON but does not parse: {e}") from None
        except RecursionError:
            raise ValueError("label is JSON nested too deeply to read") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"label must be a problem id or a JSON object, not {type(data).__name__}")
    if "events" in data:
        spec = ProblemSpec.model_validate(
            {"events": data["events"], "priorities": data.get("priorities", [])}
        )
        return ScoreItem(problem=spec, completion=completion)
    pid = data.get("problem_id", data.get("id"))
    if isinstance(pid, str) and pid:
        return ScoreItem(problem_id=pid, completion=completion)
    raise ValueError("a JSON label needs `events` (and `priorities`), or an `id`")


class _Foreign(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- OpenRLHF remote reward model (`--remote_rm_url http://env:8000/get_reward`) ----------------------------


class OpenRLHFRewardRequest(_Foreign):
    """What OpenRLHF posts to a remote reward model: parallel lists, one entry per sample."""

    query: list[CleanText] = Field(
        fail_fast=True, description="Prompt + response text, as the actor decoded it."
    )
    prompts: list[CleanText] = Field(
        fail_fast=True, description="Prompt text of each sample; removed from the front of `query`."
    )
    labels: list[Label] = Field(
        fail_fast=True,
        description="Per sample: a problem id, or the problem as JSON (`{events, priorities}`).",
    )

    @model_validator(mode="after")
    def _parallel(self) -> OpenRLHFRewardRequest:
        if not len(self.query) == len(self.prompts) == len(self.labels):
            raise ValueError(
                f"query, prompts and labels must have one entry per sample; got {len(self.query)}, "
                f"{len(self.prompts)} and {len(self.labels)} (is --label_key set?)"
            )
        return self


class OpenRLHFRewardResponse(BaseModel):
    """What OpenRLHF reads back: `rewards` drive the advantage, `scores` its filtering, `extra_logs` W&B."""

    rewards: list[float] = Field(description="Total reward per sample, equal to `/v1/score`'s `reward`.")
    scores: list[float] = Field(
        description="`reward / max_reward` per sample, in [0, 1] (OpenRLHF's dynamic filtering range)."
    )
    extra_logs: dict[str, list[float]] = Field(
        description="Per-sample series logged by OpenRLHF: each reward component and `score_ratio`."
    )


# --- OpenEnv (HTTP `/reset` `/step` `/state` `/schema`, and the `/ws` session protocol) --------------------


class SchedulingAction(_FewFields):
    """The one action of the single-step episode: the model's answer."""

    model_config = ConfigDict(extra="forbid")

    completion: CleanText = Field(
        description="The model's answer text (a lone UTF-16 surrogate is read as U+FFFD)."
    )
    problem_id: str | None = Field(
        default=None,
        description="The problem answered (the reset observation's `problem_id`). Required over plain HTTP, "
        "which is stateless; a `/ws` session falls back to the problem of its last reset.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="OpenEnv action metadata; ignored.")


class SchedulingObservation(BaseModel):
    """A problem to answer (after reset) or the scored answer (after step)."""

    problem_id: str = Field(description="Id of the problem; send it back in the action.")
    prompt: list[ChatMessage] = Field(description="Chat messages (system, user) to give the model.")
    events: list[Event] = Field(description="The day's events.")
    priorities: list[str] = Field(description="Names of the priority events.")
    result: ScoreResult | None = Field(
        default=None,
        description="After a step: the full `/v1/score` result of the completion, always with its "
        "`events` (the events read, which `violations[].indices` point at).",
    )


class OpenEnvResetRequest(_Foreign):
    """OpenEnv's reset body (`seed`, `episode_id`) plus how to pick the problem; everything is optional."""

    seed: Count | None = Field(default=None, description="Pick the problem deterministically from this.")
    episode_id: str | None = Field(default=None, max_length=255, description="Echoed in the state.")
    problem_id: str | None = Field(default=None, description="Serve exactly this problem.")
    split: Literal["train", "test"] = Field(default="train", description="Split to pick from.")
    index: Count | None = Field(
        default=None, description="Serve the problem at this index of the split (an integer)."
    )


class SchedulingStepAction(SchedulingAction):
    """The action as plain HTTP takes it: stateless, so it names the problem it answers."""

    problem_id: str = Field(description="The problem answered: the reset observation's `problem_id`.")


class OpenEnvStepRequest(_Foreign):
    """OpenEnv's step body: the action, and optional tracking fields that this environment ignores."""

    action: SchedulingStepAction = Field(description="The completion to score, and its `problem_id`.")
    timeout_s: StrictFloat | None = Field(
        default=None, gt=0, description="Accepted for compatibility; ignored."
    )
    request_id: str | None = Field(default=None, max_length=255, description="Accepted; ignored.")


class OpenEnvResult(BaseModel):
    """OpenEnv's reset / step response: observation, reward (null at reset) and done."""

    observation: SchedulingObservation = Field(description="The problem, and after a step its result.")
    reward: float | None = Field(default=None, description="The step's reward (`/v1/score`'s `reward`).")
    done: bool = Field(default=False, description="True after the step: every episode is one answer.")


class OpenEnvState(BaseModel):
    """OpenEnv's state: the episode id, the number of steps taken, and the problem of the episode."""

    model_config = ConfigDict(extra="allow")

    episode_id: str | None = Field(default=None, description="Episode id given at reset, if any.")
    step_count: int = Field(default=0, ge=0, description="Steps taken in this episode (0 or 1).")
    problem_id: str | None = Field(default=None, description="Problem of the current episode, if any.")


class OpenEnvSchema(BaseModel):
    """OpenEnv's `/schema`: JSON schemas of the action, the observation and the state."""

    action: dict[str, Any] = Field(description="JSON schema of `SchedulingAction`.")
    observation: dict[str, Any] = Field(description="JSON schema of `SchedulingObservation`.")
    state: dict[str, Any] = Field(description="JSON schema of `OpenEnvState`.")


class OpenEnvMetadata(BaseModel):
    """OpenEnv's `/metadata`: what this environment is."""

    name: str = Field(description="Environment name.")
    description: str = Field(description="What an episode is.")
    version: str = Field(description="Reward version (as `/v1/info`'s `reward_version`).")


class OpenEnvHealth(BaseModel):
    """OpenEnv's `/health`."""

    status: Literal["healthy"] = Field(description="Always `healthy` when the service answers.")
