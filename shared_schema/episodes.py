"""The check-and-submit tool episode's wire contract (docs/contract.md section 8).

An episode is one problem: `POST /v1/episodes` starts it (the prompt, with the tool instructions), any
number of `check` calls up to its budget each say what a draft breaks and what it is worth, never the
optimum, and `submit` scores the answer with the same exact profile as `/v1/score` and ends it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat

from shared_schema.integrations import Count
from shared_schema.models import (
    ChatMessage,
    Event,
    PromptStyle,
    ReadEvent,
    ScoreResult,
    Verdict,
    Violation,
)
from shared_schema.text import CleanText


class EpisodeStart(BaseModel):
    """`POST /v1/episodes`: which problem, how it is written, and the episode's check budget.

    The problem: `problem_id`, or `split` with `index` (a position), `seed` (reproducible on any replica)
    or neither (at random), as `/openenv/reset` picks."""

    model_config = ConfigDict(extra="forbid")

    problem_id: str | None = Field(default=None, max_length=200, description="A served problem's id.")
    split: Literal["train", "test"] = Field(default="train", description="Split to pick from without an id.")
    index: Count | None = Field(default=None, description="Position in `split`.")
    seed: Count | None = Field(default=None, description="Seed of the pick in `split`.")
    prompt_style: PromptStyle = Field(default="default", description="How the prompt is written.")
    profile: str = Field(default="default", max_length=64, description="Reward profile `submit` scores with.")
    checks: Count | None = Field(
        default=None,
        description="Check budget of this episode; default: the service's `episode_checks` (3), at most "
        "`episode_max_checks` (20).",
    )
    check_cost: StrictFloat = Field(
        default=0.0,
        ge=0,
        le=100,
        description="Points `submit` takes off the reward per check used (0: checks are free). The "
        "profile's reward and components are reported as scored; `reward` is after the cost, never below 0.",
    )


class EpisodeState(BaseModel):
    """`GET /v1/episodes/{id}`, and the part of every answer that says where the episode stands."""

    model_config = ConfigDict(extra="allow")

    episode_id: str = Field(description="The episode's id (`ep-` and 16 hex digits).")
    problem_id: str = Field(description="The served problem of the episode.")
    profile: str = Field(description="Reward profile `submit` scores with.")
    checks: int = Field(description="The episode's check budget.")
    checks_used: int = Field(description="Checks spent so far.")
    remaining_checks: int = Field(description="Checks left (`checks - checks_used`).")
    check_cost: StrictFloat = Field(description="Points per check used that `submit` takes off the reward.")
    expires_in_s: float = Field(
        description="Seconds until the episode is dropped unless it is used (each check renews it)."
    )


class EpisodeStarted(EpisodeState):
    """`POST /v1/episodes`' answer: the episode, and the problem as the model sees it."""

    prompt: list[ChatMessage] = Field(
        description="Chat messages (system, user): the problem in `prompt_style`, then how to use the tools."
    )
    tool_instructions: str = Field(
        description="The tool paragraph alone (the end of the system message), for adapters that place it "
        "elsewhere (TRL's environment `reset` appends it to the user message)."
    )
    events: list[Event] = Field(description="The problem's events.")
    priorities: list[str] = Field(description="Names of the priority events.")


CALL_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
CALL_ID_MAX = 64
CALL_ID_SCHEMA = {  # `call_id` as a tool argument (the OpenEnv MCP and OpenReward doors' input schemas)
    "type": "string",
    "minLength": 1,
    "maxLength": CALL_ID_MAX,
    "pattern": CALL_ID_PATTERN,
    "description": "Optional: names this call, so that a retry with the same call_id and answer gets the "
    "first attempt's result (a check is not spent twice); the same call_id with another answer is refused.",
}


class AnswerRequest(BaseModel):
    """`POST /v1/episodes/{id}/check` and `/submit`: an answer, written as `/v1/score` reads completions."""

    model_config = ConfigDict(extra="forbid")

    answer: CleanText = Field(
        description="The answer text: a `<schedule>` of `<event>`s (a `<think>` block is optional here)."
    )
    return_events: StrictBool = Field(
        default=False, description="Also return the events read from the answer (`events`)."
    )
    call_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=CALL_ID_MAX,
        pattern=CALL_ID_PATTERN,
        description="Names this call, so that a retry with the same `call_id` (the answer lost on the way) "
        "gets the first attempt's answer: a check is not spent twice, a submit finds its own result rather "
        "than an ended episode. Another call with the same id is a 409. `EnvClient` sends one per call.",
    )


class CheckResult(EpisodeState):
    """What a check says about a draft: the rules it breaks and its value, **never the optimum**."""

    verdict: Verdict = Field(description="The first check the draft fails, or `valid` (contract section 3).")
    violations: list[Violation] = Field(
        description="Every rule the draft breaks: overlapping pairs, unknown or altered events, repeats, "
        "order, format (the `indices` point into the events read)."
    )
    value: int = Field(
        description="Σ weight × duration of the draft's events that are events of the problem, each counted "
        "once (what the schedule would be worth if what it breaks were mended by dropping events)."
    )
    events: list[ReadEvent] | None = Field(
        default=None, description="The events read from the draft, when `return_events` was set."
    )


class SubmitResult(EpisodeState):
    """`submit`'s answer: the score, as `/v1/score` gives it, and the reward after the checks' cost. The
    episode has ended: its id answers 404 from now on."""

    reward: float = Field(description="`result.reward` less `check_penalty`, never below 0.")
    check_penalty: float = Field(description="`check_cost` × `checks_used`.")
    result: ScoreResult = Field(description="The answer scored by the episode's profile, as `/v1/score`.")
