"""Wire types shared by the environment service and its clients.

Pydantic models only, no I/O. Requests forbid unknown fields so that a typo in a client is an error,
not a silently ignored option. Responses allow extra fields so that older clients keep working when the
service adds one.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from shared_schema.text import CleanText, clip, clip_message, has_surrogates

MAX_HOUR = 47
TIME_PATTERN = "^(?:[0-3][0-9]|4[0-7]):[0-5][0-9]$"
"""`HH:MM`, hours 00–47, minutes 00–59, nothing before or after (matched whole, never with `$`'s newline)."""
_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2})")
NAME_PATTERN = r"^[^<>\s](?:[^<>]*[^<>\s])?$"
"""An event name: no '<' or '>', no white space at either end (and valid Unicode: no lone surrogate)."""


def to_minutes(hhmm: str) -> int:
    """`HH:MM` → minutes since 00:00 of the day. Hours 00–47 so events may run past midnight."""
    m = _TIME_RE.fullmatch(hhmm)
    if m is None:
        raise ValueError(f"time {clip(hhmm)} is not HH:MM")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes > 59:
        raise ValueError(f"time {hhmm!r} has minutes over 59")
    if hours > MAX_HOUR:
        raise ValueError(f"time {hhmm!r} has hours over {MAX_HOUR}")
    return hours * 60 + minutes


def from_minutes(minutes: int) -> str:
    """Minutes since 00:00 → `HH:MM` (inverse of `to_minutes`)."""
    if not 0 <= minutes <= MAX_HOUR * 60 + 59:
        raise ValueError(f"{minutes} minutes is outside 00:00–{MAX_HOUR}:59")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


MAX_FIELDS = 16
"""Most keys a request object may have: more than any model declares, so only junk is refused. Checked
before field validation so that 100,000 unknown keys cost one error, not 100,000 (time and memory)."""


class _FewFields(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _few_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_FIELDS:
            raise ValueError(f"an object with {len(data)} keys; at most {MAX_FIELDS} are accepted here")
        return data


class _Request(_FewFields):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class Event(_FewFields):
    """One event of a day. Events are taken whole: times are never moved, shortened or split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        max_length=200,
        description="Event name, unique within a problem; no '<' or '>' and no surrounding white space.",
        json_schema_extra={"pattern": NAME_PATTERN},
    )
    start: str = Field(
        description="Start time `HH:MM` (hours 00–47, minutes 00–59).",
        examples=["09:30"],
        pattern=TIME_PATTERN,
    )
    end: str = Field(
        description="End time `HH:MM`, strictly after `start`.", examples=["10:45"], pattern=TIME_PATTERN
    )

    @field_validator("name")
    @classmethod
    def _name_is_writable(cls, v: str) -> str:
        if v != v.strip():
            raise ValueError("name must not start or end with white space")
        if "<" in v or ">" in v:
            raise ValueError(
                "name must not contain '<' or '>' (it could not be written in the answer format)"
            )
        if has_surrogates(v):
            raise ValueError("name must be valid Unicode text (it holds a lone UTF-16 surrogate)")
        return v

    @field_validator("start", "end")
    @classmethod
    def _time_ok(cls, v: str) -> str:
        to_minutes(v)
        return v

    @model_validator(mode="after")
    def _end_after_start(self) -> Event:
        if to_minutes(self.end) <= to_minutes(self.start):
            raise ValueError(f"event {clip(self.name)} must end after it starts ({self.start}–{self.end})")
        return self

    @property
    def start_min(self) -> int:
        return to_minutes(self.start)

    @property
    def end_min(self) -> int:
        return to_minutes(self.end)

    @property
    def duration(self) -> int:
        return self.end_min - self.start_min


class ProblemSpec(_FewFields):
    """The task itself: a day's events and which of them are priorities (weight 2)."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=2000, description="The day's events, any order.")
    priorities: list[str] = Field(
        default_factory=list,
        max_length=2000,
        description="Names of priority events (a subset of the event names).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ProblemSpec:
        names = [e.name for e in self.events]
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise ValueError(f"event names must be unique; {clip(n)} appears twice")
            seen.add(n)
        unknown = [p for p in self.priorities if p not in seen]
        if unknown:
            shown = ", ".join(clip(u) for u in unknown[:3])
            raise ValueError(clip_message(f"priorities must name events; unknown ({len(unknown)}): {shown}"))
        if len(set(self.priorities)) != len(self.priorities):
            raise ValueError("priorities must not repeat a name")
        return self


class Problem(ProblemSpec):
    """A problem as served: stable `id` and the exact optimum computed by the service's solver."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="Stable identifier, e.g. `train-000042`.")
    optimal_score: int = Field(
        ge=0, description="Σ weight × duration of the optimal schedule (exact solver)."
    )


PromptStyle = Literal["default", "compact", "guided"]
"""How the service writes a problem's chat prompt. `default`: the full rules and answer format (as the
published experiment). `compact`: the same rules in about a third of the tokens, for small models whose
cost grows with every prompt token; events and priorities are written as in `default`. `guided`: the
compact rules, and the events listed by start time with each one's value (its minutes, doubled for a
priority), for small models that cannot yet sort times or subtract them; which events to keep is still
the model's to work out."""

PROMPT_STYLES: tuple[str, ...] = ("default", "compact", "guided")
# How a traced answer's `<think>` block lists the events before choosing: by start time, or by a scan of
# the day's hours (for prompts that list them unsorted), or by that scan with each event's duration sum
# and overlap check written out (env_server/task/traces.py).
TraceStyle = Literal["sorted", "by_hour", "checked"]
TRACE_STYLES: tuple[str, ...] = ("sorted", "by_hour", "checked")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"] = Field(description="Chat role.")
    content: str = Field(description="Message text.")


class ProblemWithPrompt(Problem):
    prompt: list[ChatMessage] = Field(
        description="Chat messages (system, user) a trainer sends to the model."
    )


class ProblemList(_Response):
    total: int = Field(description="Number of problems in the split.")
    items: list[ProblemWithPrompt] = Field(description="The requested page of problems.")


class Verdict(str, Enum):
    """Evaluation verdict: the first check that fails (docs/contract.md section 3)."""

    format_error = "format_error"
    too_few_events = "too_few_events"
    unknown_event = "unknown_event"
    unsorted = "unsorted"
    overlap = "overlap"
    valid = "valid"


ViolationType = Literal[
    "format", "too_few_events", "unknown_event", "repeated_event", "unsorted", "overlap", "truncated"
]


class ScheduledEvent(BaseModel):
    """An event as the model wrote it (not validated: it may be invented or have impossible times)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Name as written.")
    start: str = Field(description="Start as written.")
    end: str = Field(description="End as written.")


class Violation(_Response):
    """One rule the completion breaks; `indices` are positions in the parsed schedule (0-based)."""

    type: ViolationType = Field(description="Which rule is broken.")
    indices: list[int] = Field(default_factory=list, description="Positions of the events involved.")
    events: list[ScheduledEvent] = Field(default_factory=list, description="The events involved.")
    message: str = Field(description="Human-readable explanation.")


class ReadEvent(_Response):
    """One event as the profile read it from the scored completion (`ScoreRequest.return_events`).

    The reading is the one that scored: the `default` profile's events of the last complete schedule
    block, the `original` profile's events anywhere. Position i in `ScoreResult.events` is position i in
    `violations[].indices`."""

    name: str = Field(
        description="Name as the profile compares it: trimmed under `default`, as written under `original`."
    )
    start: str = Field(description="Start as written.")
    end: str = Field(description="End as written.")
    start_min: int = Field(
        description="Start in minutes since 00:00, as the checks read it (hours are not limited to 47 "
        "here: `99:99` is 6039; under `original` any Unicode digit counts)."
    )
    end_min: int = Field(description="End in minutes since 00:00, as the checks read it.")
    problem_index: int | None = Field(
        description="Position of this event in the problem's `events` (0-based), or null when it is not "
        "exactly one of them (invented, or its name or times altered)."
    )


class ScoreItem(_Request):
    """One completion to score, against a served problem (`problem_id`) or one given inline (`problem`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={  # exactly one of the two sources, as `_one_source` checks
            "oneOf": [
                {"required": ["problem_id"], "properties": {"problem_id": {"type": "string"}}},
                {"required": ["problem"], "properties": {"problem": {"type": "object"}}},
            ]
        },
    )

    problem_id: str | None = Field(
        default=None, description="Id of a problem the service serves. Give this or `problem`, not both."
    )
    problem: ProblemSpec | None = Field(
        default=None, description="An inline problem (events, priorities). Give this or `problem_id`."
    )
    completion: CleanText = Field(
        description="The model's answer text (a lone UTF-16 surrogate is read as U+FFFD)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ScoreItem:
        if (self.problem_id is None) == (self.problem is None):
            raise ValueError("give exactly one of `problem_id` or `problem`")
        return self


class ScoreRequest(_Request):
    profile: str = Field(
        default="default", max_length=64, description="Reward profile name (see `/v1/info`)."
    )
    items: list[ScoreItem] = Field(
        min_length=1,
        fail_fast=True,  # a batch of 100,000 bad items reports the first, in microseconds
        description="Completions to score, in order; at most `limits.max_batch_items` (413 beyond).",
    )
    return_events: StrictBool = Field(
        default=False,
        description="Also return, in each result's `events`, the events the profile read from the "
        "completion, in order, each with its position in the problem (what `violations[].indices` point "
        "at). Off by default: it costs one more reading of each completion.",
    )


class ScoreResult(_Response):
    reward: float | None = Field(description="Total reward (sum of `components`); null when `error` is set.")
    components: dict[str, float] = Field(default_factory=dict, description="Component name → points.")
    verdict: Verdict | None = Field(default=None, description="Verdict (docs/contract.md section 3).")
    score_ratio: float | None = Field(
        default=None, description="Σ weight × duration / optimal_score when valid, else 0."
    )
    optimal_score: int | None = Field(default=None, description="The problem's exact optimum.")
    violations: list[Violation] = Field(default_factory=list, description="Every rule the completion breaks.")
    error: str | None = Field(default=None, description="Why this item could not be scored, else null.")
    events: list[ReadEvent] | None = Field(
        default=None,
        description="The events the profile read from the completion, in order (the positions "
        "`violations[].indices` name); only when the request set `return_events`, and null for an item "
        "with `error`.",
    )


class ScoreResponse(_Response):
    reward_version: str = Field(description="Version of the reward definitions that produced these results.")
    profile: str = Field(description="Profile used.")
    results: list[ScoreResult] = Field(description="One result per item, in request order.")


class SolveRequest(_Request):
    problem: ProblemSpec = Field(description="The problem to solve.")
    trace: bool = Field(
        default=False,
        description="Write the optimal `completion` with a step-by-step `<think>` trace (events by "
        "start time with their values, each group of overlapping events and which it keeps, the total), "
        "for cold-start fine-tuning. Default: a one-line reasoning block.",
    )
    trace_style: TraceStyle = Field(
        default="sorted",
        description="With `trace`: `sorted` lists the events by start time; `by_hour` scans the hours of "
        "the day, each followed by the events starting in it (for prompts that list them unsorted); "
        "`checked` is that scan with each event's duration written as a sum and its start set beside the "
        "latest end before it (`overlap` or `clear`).",
    )


class SolveResponse(_Response):
    reward_version: str = Field(description="Reward version of the service.")
    optimal_score: int = Field(description="Σ weight × duration of the optimal schedule.")
    schedule: list[Event] = Field(description="The optimal schedule, chronological.")
    completion: str = Field(description="The optimal answer written in the answer format.")


class PromptRequest(_Request):
    """Ask the service for the chat prompt of an inline problem (read-only; nothing is stored)."""

    problem: ProblemSpec = Field(description="The problem (events, priorities) to write a prompt for.")
    prompt_style: PromptStyle = Field(default="default", description="Prompt style (see `/v1/info`).")


class PromptResponse(_Response):
    prompt: list[ChatMessage] = Field(description="Chat messages (system, user), as `/v1/problems` serves.")


class ComponentInfo(_Response):
    name: str = Field(description="Component name, as in `components`.")
    weight: float = Field(description="Maximum points of this component.")
    description: str = Field(description="What earns the points.")


class ProfileInfo(_Response):
    name: str = Field(description="Profile name.")
    description: str = Field(description="What the profile is for.")
    components: list[ComponentInfo] = Field(description="Components and their weights.")
    max_reward: float = Field(description="Sum of the weights.")


class Difficulty(BaseModel):
    """Generator knobs. The defaults reproduce the published dataset's distribution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_events: int = Field(default=4, ge=2, le=500, description="Fewest events in a problem.")
    max_events: int = Field(default=8, ge=2, le=500, description="Most events in a problem.")
    min_duration: int = Field(default=15, ge=1, description="Shortest event, minutes.")
    max_duration: int = Field(default=120, ge=1, description="Longest event, minutes.")
    duration_step: int = Field(default=15, ge=1, description="Durations are multiples of this, minutes.")
    latest_start: int = Field(default=21 * 60 + 59, ge=0, le=47 * 60, description="Latest start, minutes.")
    granularity: int = Field(
        default=1, ge=1, le=60, description="Start times are multiples of this, minutes."
    )
    force_overlap_prob: float = Field(
        default=0.2, ge=0, le=1, description="Chance an event is forced to start inside an earlier one."
    )
    min_overlap_pairs: int = Field(default=1, ge=0, description="Fewest overlapping pairs accepted.")
    max_overlap_ratio: float = Field(
        default=0.4, ge=0, description="Most overlapping pairs accepted, as a fraction of the event count."
    )
    min_priority_ratio: float = Field(default=0.2, ge=0, le=1, description="Fewest priorities, fraction.")
    max_priority_ratio: float = Field(default=0.4, ge=0, le=1, description="Most priorities, fraction.")

    @model_validator(mode="after")
    def _ranges(self) -> Difficulty:
        if self.min_events > self.max_events:
            raise ValueError("min_events must be <= max_events")
        if self.min_duration > self.max_duration:
            raise ValueError("min_duration must be <= max_duration")
        if self.min_priority_ratio > self.max_priority_ratio:
            raise ValueError("min_priority_ratio must be <= max_priority_ratio")
        return self


class InfoResponse(_Response):
    reward_version: str = Field(description="Version of the reward definitions.")
    profiles: list[ProfileInfo] = Field(description="Available reward profiles.")
    default_profile: str = Field(description="Profile used when a request names none.")
    splits: dict[str, int] = Field(description="Split name → number of problems.")
    difficulties: dict[str, Difficulty] = Field(description="Named generator presets (`difficulty` query).")
    generator: dict[str, Any] = Field(description="Seed, default difficulty and source of each split.")
    limits: dict[str, int] = Field(description="Request limits (body bytes, batch items, completion chars).")
    prompt_styles: list[str] = Field(
        default_factory=lambda: list(PROMPT_STYLES),
        description="Prompt styles the service writes (`prompt_style` query of `/v1/problems`).",
    )


class HealthResponse(_Response):
    status: Literal["ok"] = Field(description="Always `ok` when the service answers.")
    reward_version: str = Field(description="Version of the reward definitions.")
