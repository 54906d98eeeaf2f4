"""The curriculum session's wire contract (docs/contract.md section 7; env_server/task/curriculum.py)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared_schema.models import ProblemWithPrompt, PromptStyle


class Rung(BaseModel):
    """One step of a curriculum's ladder: a generator level and the share of scaffolded prompts."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    level: int = Field(
        ge=0, le=7, description="Generator level (0 = 3 events ... 4 = the test distribution)."
    )
    guided: float = Field(
        ge=0, le=1, description="Share of this rung's prompts in the `guided` style; the rest are `default`."
    )


class CurriculumConfig(BaseModel):
    """`POST /v1/curriculum`: how the session moves. Every field has a default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    target: float = Field(default=0.5, gt=0, lt=1, description="Success rate the session aims for.")
    band: float = Field(
        default=0.15, ge=0, lt=0.5, description="Move only when the rate leaves target ± band."
    )
    window: int = Field(default=4, ge=1, le=10_000, description="Reported groups per decision.")
    success_reward: float = Field(
        default=80.0, ge=0, le=100, description="A completion succeeds when its reward reaches this."
    )
    rungs: list[Rung] | None = Field(
        default=None, min_length=1, max_length=64, description="The ladder, easiest first (default: 8 rungs)."
    )
    start_rung: int = Field(default=0, ge=0, description="Rung the session starts on.")
    spread: list[Annotated[float, Field(ge=0, le=1e6)]] = Field(
        default=[0.25, 0.5, 0.25],
        min_length=1,
        max_length=9,
        description="Weights of the rungs around the current one in every batch (odd length, centred).",
    )
    offset: int = Field(
        default=0,
        ge=0,
        le=10**11,
        description="Index of the first served problem (sessions that share no problem: other offsets).",
    )
    max_pending: int = Field(
        default=4096,
        ge=1,
        le=100_000,
        description="Served but unreported problems remembered (oldest dropped).",
    )
    max_history: int = Field(default=1000, ge=0, le=100_000, description="Decisions kept in `history`.")

    @field_validator("spread")
    @classmethod
    def _spread(cls, v: list[float]) -> list[float]:
        if len(v) % 2 == 0:
            raise ValueError("spread has an odd number of weights, the middle one for the current rung")
        if any(w < 0 or not math.isfinite(w) for w in v) or sum(v) <= 0:
            raise ValueError("spread weights are finite, non-negative and not all 0")
        return v


class CurriculumState(BaseModel):
    """A session's whole state: persisted as it is, returned by every curriculum call."""

    model_config = ConfigDict(extra="forbid", strict=True)

    session_id: str
    config: CurriculumConfig
    rung: int = Field(description="The current rung.")
    served: int = Field(default=0, description="Problems served so far.")
    reported: int = Field(default=0, description="Groups reported so far.")
    moves: int = Field(default=0, description="Times the rung changed.")
    served_per_rung: dict[str, int] = Field(default_factory=dict)
    pending: dict[str, int] = Field(
        default_factory=dict, description="Served, unreported problem → its rung."
    )
    recent: list[str] = Field(
        default_factory=list, description="Problems reported lately: a repeated report of one is ignored."
    )
    window_groups: int = 0
    window_successes: int = 0
    window_completions: int = 0
    history: list[dict[str, Any]] = Field(
        default_factory=list, description="Each decision: rate and rung after."
    )

    @model_validator(mode="after")
    def _rung(self) -> CurriculumState:
        if self.rung < 0:
            raise ValueError("rung must be >= 0")
        return self


class CurriculumStatus(BaseModel):
    """What every curriculum call answers: the state, and the current rung's level and scaffold share."""

    model_config = ConfigDict(extra="allow")

    state: CurriculumState
    level: int = Field(description="The current rung's generator level.")
    guided: float = Field(description="The current rung's share of `guided` prompts.")
    rungs: list[Rung] = Field(description="The session's ladder.")


class CurriculumProblem(ProblemWithPrompt):
    """A served problem: its prompt is in `prompt_style`; `rung` and `level` say where it came from."""

    prompt_style: PromptStyle
    rung: int
    level: int


class NextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    n: int = Field(ge=1, le=1024, description="How many problems to serve.")


class NextResponse(CurriculumStatus):
    problems: list[CurriculumProblem]


class GroupReport(BaseModel):
    """The rewards of the completions sampled for one served problem (a GRPO group)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    problem_id: str = Field(max_length=64)
    rewards: list[float] = Field(min_length=1, max_length=1024)

    @field_validator("rewards")
    @classmethod
    def _finite(cls, v: list[float]) -> list[float]:
        if any(not math.isfinite(r) for r in v):
            raise ValueError("rewards are finite numbers")
        return v


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    groups: list[GroupReport] = Field(min_length=1, max_length=4096)
