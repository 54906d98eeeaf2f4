"""Wire types of the OpenReward Standard (ORS) routes (env_server/service/integrations/openreward.py).

The shapes are those the `openreward` SDK (0.1.167) sends and reads, and that its reference server
(`openreward.environments.Server`) answers. As the other foreign protocols' types
(shared_schema/integrations.py), requests *ignore* unknown fields: the SDK adds optional ones between
releases.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from shared_schema.integrations import Count

_LENIENT = ConfigDict(extra="ignore")
SplitName = Literal["train", "test"]


class OrsSplitRequest(BaseModel):
    """`POST /tasks` and `/num_tasks`: a split."""

    model_config = _LENIENT

    split: SplitName = Field(description="`train` or `test`.")


class OrsTaskRequest(BaseModel):
    """`POST /task`: one task by split and position."""

    model_config = _LENIENT

    split: SplitName = Field(description="`train` or `test`.")
    index: Count = Field(description="Position in the split.")


class OrsTaskRangeRequest(BaseModel):
    """`POST /task_range`: the tasks at `range(start, stop)` of a split (Python slice rules)."""

    model_config = _LENIENT

    split: SplitName = Field(description="`train` or `test`.")
    start: StrictInt | None = Field(default=None, description="First position (negative: from the end).")
    stop: StrictInt | None = Field(
        default=None, description="Position after the last (negative: from the end)."
    )


class OrsCreate(BaseModel):
    """`POST /create`: open the session named by `X-Session-ID` on a task (`split` and `index`, or the
    `task_spec` a task listing gave)."""

    model_config = _LENIENT

    env_name: str | None = Field(default=None, max_length=64, description="Environment (`scheduling`).")
    task_spec: dict[str, Any] | None = Field(default=None, description="A task as `/task` gives it.")
    split: SplitName | None = Field(default=None, description="`train` or `test`.")
    index: Count | None = Field(default=None, description="Position in the split.")
    toolset_name: str | None = Field(default=None, max_length=64, description="Not served: must be null.")


class OrsToolCall(BaseModel):
    """`POST /call`: a tool and its input."""

    model_config = _LENIENT

    name: str = Field(max_length=64, description="`check_schedule` or `submit`.")
    input: dict[str, Any] = Field(description='The tool\'s arguments (`{"answer": "<schedule>…"}`).')
    task_id: str | None = Field(default=None, max_length=64, description="SSE resume token (not kept here).")


class OrsSplit(BaseModel):
    name: str = Field(description="The split's name.")
    type: Literal["train", "validation", "test"] = Field(description="What the split is for.")


class OrsTaskSpec(BaseModel):
    """One task: a served problem."""

    problem_id: str = Field(description="The served problem's id (`/v1/problems/{id}`).")
    split: str = Field(description="Its split.")
    index: int = Field(description="Its position in the split.")
    n_events: int = Field(description="How many events it lists.")
    optimal_score: int = Field(description="The best schedule's value (what the solver reaches).")


class OrsTask(BaseModel):
    task: OrsTaskSpec = Field(description="The task.")
    env_name: str = Field(description="The environment's name.")


class OrsTasks(BaseModel):
    tasks: list[OrsTaskSpec] = Field(description="The tasks, in split order.")
    env_name: str = Field(description="The environment's name.")


class OrsNumTasks(BaseModel):
    num_tasks: int = Field(description="How many tasks the split holds.")


class OrsToolSpec(BaseModel):
    name: str = Field(description="The tool's name.")
    description: str = Field(description="What it does, for the model.")
    input_schema: dict[str, Any] = Field(description="JSON Schema of its input.")


class OrsTools(BaseModel):
    tools: list[OrsToolSpec] = Field(description="The tools the model may call.")
    terminal_tool: None = Field(default=None, description="No terminal tool: the model calls `submit`.")


class OrsSession(BaseModel):
    sid: str = Field(description="The session id (the tool episode's id, `ep-` and 16 hex digits).")


class OrsStatus(BaseModel):
    status: Literal["ok"] = Field(description="The session is open.")


class OrsTextBlock(BaseModel):
    text: str = Field(description="Text.")
    detail: dict[str, Any] | None = Field(default=None, description="Unused.")
    type: Literal["text"] = Field(default="text", description="Block type.")


class OrsToolOutput(BaseModel):
    blocks: list[OrsTextBlock] = Field(description="What the tool tells the model.")
    metadata: dict[str, Any] | None = Field(default=None, description="The episode's structured answer.")
    reward: float | None = Field(default=None, description="`submit`'s reward; null for a check.")
    finished: bool = Field(default=False, description="True once the answer is submitted.")


class OrsToolSuccess(BaseModel):
    ok: Literal[True] = Field(default=True, description="The tool ran.")
    output: OrsToolOutput = Field(description="Its output.")


class OrsToolError(BaseModel):
    ok: Literal[False] = Field(default=False, description="The tool did not run.")
    error: str = Field(description="Why, for the model.")
    reason: Literal["not_found", "input_validation", "episode_finished"] | None = Field(
        default=None, description="Why, as a code."
    )
