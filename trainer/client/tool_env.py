"""The check-and-submit episode as a TRL environment class, over the service's `/v1/episodes`.

TRL (1.16) builds one instance per rollout with no arguments, calls `reset(**row)` with the dataset row
(its string is appended to the last user message), offers the public methods as tools (their type hints
and docstrings become the tool schema; an exception goes back to the model as `{"error": str(e)}`), and
calls `get_reward()` once the rollout ends. Here every call goes to the service's `/v1/episodes`
(docs/contract.md section 8): `reset` starts an episode on the row's `problem_id`, `check_schedule` spends
a check, `submit` scores and ends the episode, and `get_reward` is the submitted answer's reward (0 when
the model never submitted). No reward logic lives here.

It lives in the client layer because it is a client of the service: the TRL integration
(`trainer.integrations.trl_tools`, what users import), tool-episode training (`trainer.training.grpo
--tool_checks`, `TrainingToolEnv`), the tool SFT transcripts and the tool-episode evaluation all use it.

SmolLM2's own chat template renders no tool calls, so TRL refuses it; SmolLM2 speaks ChatML, as Qwen2.5
does, so `tool_calling_tokenizer` gives it TRL's Qwen2.5 template (tools in the system message, calls as
`<tool_call>{json}</tool_call>`), whose response parser TRL then sets itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from shared_schema.episodes import CheckResult, EpisodeStart
from trainer.client.env_client import EnvClient, EnvRequestError


def describe_check(result: CheckResult) -> str:
    """What a check tells the model, in a few lines: the verdict, each broken rule, the value, the budget."""
    lines = [f"verdict: {result.verdict.value}"]
    lines += [f"- {v.message}" for v in result.violations[:20]]
    if len(result.violations) > 20:
        lines.append(f"- and {len(result.violations) - 20} more")
    lines.append(f"value: {result.value}")
    lines.append(f"checks left: {result.remaining_checks}")
    return "\n".join(lines)


class SchedulingToolEnv:
    """One rollout's episode. Configure the class (or use `scheduling_environment`), not the instance:
    TRL constructs instances with no arguments."""

    env_url: ClassVar[str] = "http://127.0.0.1:8000"
    checks: ClassVar[int | None] = None  # None: the service's default budget
    check_cost: ClassVar[float] = 0.0
    prompt_style: ClassVar[str] = "default"
    profile: ClassVar[str] = "default"
    api_key: ClassVar[str | None] = None  # None: $SCHED_API_KEY, as every EnvClient
    _clients: ClassVar[dict[tuple[str, str | None], EnvClient]] = {}
    _clients_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        key = (self.env_url, self.api_key)
        with self._clients_lock:  # one pooled client per service for every instance (TRL makes many)
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = EnvClient.from_url(self.env_url, api_key=self.api_key)
        self.client = client
        self.episode_id: str | None = None
        self.reward: float | None = None
        self.answer: str | None = None  # the submitted answer
        self.checks_used = 0
        self.submit_called = False

    def reset(self, **row: Any) -> str:
        """Start an episode on the row's `problem_id`; the tool instructions go after the user message."""
        start = EpisodeStart.model_validate(
            {
                "problem_id": row["problem_id"],
                "checks": self.checks,
                "check_cost": self.check_cost,
                "prompt_style": self.prompt_style,
                "profile": self.profile,
            }
        )
        started = self.client.episode_start(start)
        self.episode_id, self.reward = started.episode_id, None
        self.answer, self.checks_used, self.submit_called = None, 0, False
        return "\n\n" + started.tool_instructions  # TRL appends it to the user message as it is

    def _open(self) -> str:
        if self.episode_id is None:
            raise RuntimeError("the task is over: the answer was already submitted")
        return self.episode_id

    def check_schedule(self, answer: str) -> str:
        """Check a draft schedule without ending the task. It says which rules the draft breaks and its
        total value, but not the best possible value; each call spends one of your checks.

        Args:
            answer: The draft: a <schedule> block with one <event> (name, start, end) per kept event.

        Returns:
            The verdict, each rule the draft breaks, its value and the checks left.
        """
        try:
            found = describe_check(self.client.episode_check(self._open(), answer))
        except EnvRequestError as e:
            if e.status_code == 409:
                raise RuntimeError("no checks left: submit your answer") from None
            raise
        self.checks_used += 1
        return found

    def submit(self, answer: str) -> str:
        """Submit the final schedule. It is scored once and the task ends.

        Args:
            answer: The final answer as the task asks for it: the reasoning block, then the <schedule>
                block with one <event> (name, start, end) per kept event.

        Returns:
            The verdict and the reward.
        """
        episode_id = self._open()  # a second submit is an error the model sees, before anything is recorded
        self.answer, self.submit_called = answer, True
        done = self.client.episode_submit(episode_id, answer)
        self.episode_id, self.reward = None, done.reward
        verdict = done.result.verdict.value if done.result.verdict is not None else "error"
        return f"submitted: {verdict}, reward {done.reward:g}"

    def get_reward(self) -> float:
        """The submitted answer's reward; 0 when the model never submitted."""
        return 0.0 if self.reward is None else self.reward


def last_message_text(completion: Any) -> str:
    """The text of a conversational completion's last assistant message ('' when it has none). TRL's
    response parser moves a `<think>` block into `reasoning_content` when the message also calls a tool;
    it is put back in front, as written, so that the answer is scored whole."""
    if isinstance(completion, str):
        return completion
    for message in reversed(completion):
        if message.get("role", "assistant") == "assistant":
            content = message.get("content") or ""
            if not isinstance(content, str):
                content = "".join(block.get("text", "") for block in content if block.get("type") == "text")
            reasoning = message.get("reasoning_content")
            return content if reasoning is None else f"<think>{reasoning}</think>\n{content}"
    return ""


class TrainingToolEnv(SchedulingToolEnv):
    """The episode as `sched-train train --tool_checks N` trains on it (docs/training.md, tool episodes).

    The same tools, one difference: the answer a rollout ends with is **the one it submitted, or else its
    last message**, submitted for it when the rollout ends (`_final_answer`: private, so that TRL does not
    offer it as a tool). A model that never calls a tool is then scored exactly as single-turn training
    scores it, so a run with tools and one without differ only in the tools offered. The reward is the
    trainer's `EnvScorer` over that answer (`/v1/score`, the run's profile, every component logged as in
    single-turn runs), not `get_reward`, which is switched off here so that TRL does not add it as a
    second reward. Checks cost nothing in this mode; their budget bounds them."""

    get_reward = None  # type: ignore[assignment]  # TRL adds a reward column only for a get_reward function

    def _final_answer(self, completion: Any) -> str:
        """The answer the rollout ends with: the submitted one, else the last message's text, which is
        then submitted (closing the episode). Idempotent: every reward component of a batch calls it."""
        if self.answer is None:
            self.answer = last_message_text(completion)
            if self.episode_id is not None:
                self.client.episode_submit(self.episode_id, self.answer)
                self.episode_id = None
        return self.answer


def training_environment(
    env_url: str,
    checks: int | None,
    prompt_style: str,
    profile: str = "default",
    api_key: str | None = None,
) -> type[TrainingToolEnv]:
    """A `TrainingToolEnv` class bound to a service, a check budget, a prompt style and a profile."""
    settings = {"env_url": env_url, "checks": checks, "prompt_style": prompt_style, "profile": profile}
    return type("SchedulingToolEnv", (TrainingToolEnv,), {**settings, "api_key": api_key})


TOOL_NAMES = ("check_schedule", "submit")


def tool_schemas() -> list[dict[str, Any]]:
    """The tools' JSON schemas, as TRL builds them from the methods (type hints and docstrings)."""
    from transformers.utils.chat_template_utils import get_json_schema

    return [get_json_schema(getattr(SchedulingToolEnv, name)) for name in TOOL_NAMES]


def tool_calling_tokenizer(tokenizer: Any) -> Any:
    """`tokenizer` with a chat template TRL's tool calling accepts: its own when TRL already does, else TRL's
    Qwen2.5 template (ChatML, as SmolLM2's own; `<tool_call>` JSON calls, `<tool_response>` results)."""
    from trl.chat_template_utils import qwen2_5_chat_template, supports_tool_calling

    if not supports_tool_calling(tokenizer):
        tokenizer.chat_template = qwen2_5_chat_template
    return tokenizer


def scheduling_environment(
    env_url: str, checks: int | None = None, check_cost: float = 0.0, prompt_style: str = "default"
) -> Callable[[], SchedulingToolEnv]:
    """A `SchedulingToolEnv` class bound to a service and an episode configuration (TRL calls it with no
    arguments for each rollout)."""
    settings = {"env_url": env_url, "checks": checks, "check_cost": check_cost, "prompt_style": prompt_style}
    return type("SchedulingToolEnv", (SchedulingToolEnv,), settings)


def tool_dataset(env_url: str, n: int, split: str = "train", offset: int = 0) -> list[dict[str, Any]]:
    """Rows for `GRPOTrainer(train_dataset=...)`: each a served problem's `problem_id` and its chat
    `prompt` (system, user) as `/v1/problems` serves it; `reset` adds the tool instructions."""
    with EnvClient.from_url(env_url) as client:
        page = client.problems(split=split, offset=offset, limit=n)
    return [{"problem_id": p.id, "prompt": [m.model_dump() for m in p.prompt]} for p in page.items]
