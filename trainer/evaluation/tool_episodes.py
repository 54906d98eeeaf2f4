"""Evaluate a model on tool episodes: the loop TRL's `GRPOTrainer` runs in training, greedy, on any problems.

`sched-train train --tool_checks N` trains on episodes in which the model may call `check_schedule` and
`submit` (trainer/client/tool_env.py, `TrainingToolEnv`). To judge such a model as it is trained,
this runs the same loop, token for token as TRL 1.16's `_tool_call_loop` builds it:

- the prompt is the served chat with the episode's tool instructions after the user message, rendered
  with the tools' schemas by the tokenizer's chat template;
- each turn's tokens are parsed by TRL's `parse_response`; a turn that calls tools gets their results
  (an exception becomes `{"error": ...}`, as in TRL) appended as the template's tool-result tokens, and
  the model goes on from prompt + completion + results; a turn without a call ends the episode;
- at most `max_tool_calling_iterations` rounds of tool calls, and `max_completion_length` tokens for
  the whole completion (sampled tokens and tool results): tool results that would pass it are not
  added and the episode ends, as in TRL;
- the answer is the submitted one, or else the last message's (submitted for it), and `/v1/score` scores
  it with the run's profile, exactly as the training reward does.

With `tools=False` the same code runs single-turn episodes (no tools in the prompt, one turn), so a run
with tools and one without are judged by one harness. Generation is greedy, by vLLM (token prompts) or
transformers, through `TokenEngine`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from shared_schema import ProblemWithPrompt, ScoreItem
from trainer.client.env_client import EnvClient
from trainer.client.tool_env import TOOL_NAMES, last_message_text, tool_schemas


class TokenEngine(Protocol):
    """Greedy continuation of token prompts: each prompt's new tokens, the stop token included."""

    def continue_tokens(self, prompts: list[list[int]], max_new_tokens: list[int]) -> list[list[int]]: ...


@dataclass
class EpisodeRecord:
    """One evaluated episode: how it went and how its answer scored."""

    problem_id: str
    answer: str
    verdict: str | None
    reward: float | None
    score_ratio: float | None
    checks_used: int
    submit_called: bool
    tool_calls: int
    tool_errors: int
    turns: int
    sampled_tokens: int  # tokens the model generated (tool results not counted), as TRL's mean_length
    completion_tokens: int  # sampled tokens and tool results: what `max_completion_length` bounds
    truncated: bool  # the budget ran out before the model ended


def tool_suffix_ids(tokenizer: Any, tool_messages: list[dict[str, Any]]) -> list[int]:
    """The tokens the chat template puts after an assistant turn for these tool results, up to the next
    assistant header (TRL's `_get_tool_suffix_ids`, for a text tokenizer)."""
    dummy = [
        {"role": "user", "content": "dummy"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": tool_messages[0]["name"], "arguments": {}}}
            ],
        },
    ]
    prefix = list(tokenizer.apply_chat_template(dummy, tokenize=True, return_dict=False))
    full = list(
        tokenizer.apply_chat_template(
            dummy + tool_messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )
    eos = [i for i, t in enumerate(prefix) if t == tokenizer.eos_token_id]
    if eos:
        prefix = prefix[: eos[-1] + 1]
    if full[: len(prefix)] != prefix:
        raise ValueError("unexpected tokenization: the EOS-trimmed prefix is not a prefix of the full ids")
    return full[len(prefix) :]


@dataclass
class _Episode:
    problem: ProblemWithPrompt
    env: Any
    prompt_ids: list[int]
    ids: list[int]  # prompt + completion so far
    messages: list[dict[str, Any]]  # the completion's messages so far
    sampled: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    turns: int = 0
    done: bool = False
    truncated: bool = False


def run_episodes(
    engine: TokenEngine,
    tokenizer: Any,
    client: EnvClient,
    problems: Sequence[ProblemWithPrompt],
    env_factory: Callable[[], Any] | None,
    *,
    tools: bool,
    profile: str = "default",
    max_completion_length: int = 640,
    max_tool_calling_iterations: int = 4,
) -> list[EpisodeRecord]:
    """Run one greedy episode per problem (all problems' turns batched) and score each answer."""
    from trl.chat_template_utils import parse_response

    if tools and env_factory is None:
        raise ValueError("tool episodes need an env_factory (trl_tools.training_environment)")
    parser = getattr(tokenizer, "response_template", None) or getattr(tokenizer, "response_schema", None)
    if tools and parser is None:
        from trl.chat_template_utils import add_response_schema

        tokenizer = add_response_schema(tokenizer)  # as GRPOTrainer does when it is given tools
    schemas: list[Any] | None = None
    episodes = []
    for problem in problems:
        env: Any = env_factory() if tools and env_factory is not None else None
        messages = [m.model_dump() for m in problem.prompt]
        if env is not None:
            note = env.reset(problem_id=problem.id)
            messages[-1] = {**messages[-1], "content": messages[-1]["content"] + note}
            schemas = tool_schemas()
        ids = list(
            tokenizer.apply_chat_template(
                messages, tools=schemas, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )
        episodes.append(_Episode(problem, env, ids, list(ids), []))

    rounds = 0
    while True:
        active = [e for e in episodes if not e.done]
        if not active:
            break
        budgets = [max_completion_length - (len(e.ids) - len(e.prompt_ids)) for e in active]
        outputs = engine.continue_tokens([e.ids for e in active], budgets)
        for episode, new, budget in zip(active, outputs, budgets, strict=True):
            before = episode.ids
            episode.ids = before + new
            episode.sampled += len(new)
            episode.turns += 1
            if (
                tools
            ):  # as TRL parses a turn when the prompt has tools: after what came before, with the tools
                message = parse_response(tokenizer, new, prefix=before, tools=schemas)
            else:
                message = {"role": "assistant", "content": tokenizer.decode(new, skip_special_tokens=True)}
            episode.messages.append(message)
            calls = message.get("tool_calls") if tools else None
            if len(new) >= budget and tokenizer.eos_token_id not in new:
                episode.done, episode.truncated = True, True
            elif not calls or rounds >= max_tool_calling_iterations:
                episode.done = True
            else:
                results = [_call_tool(episode, call) for call in calls]
                suffix = tool_suffix_ids(tokenizer, results)
                if len(episode.ids) + len(suffix) - len(episode.prompt_ids) > max_completion_length:
                    episode.done, episode.truncated = True, True  # TRL drops the results and stops
                else:
                    episode.messages += results
                    episode.ids += suffix
        rounds += 1
    return _score(client, episodes, profile, tools)


def _call_tool(episode: _Episode, call: dict[str, Any]) -> dict[str, Any]:
    episode.tool_calls += 1
    function = call.get("function", {})
    name = function.get("name", "unknown")
    try:
        if call.get("type") != "function" or name not in TOOL_NAMES:
            raise ValueError(f"Tool {name} not found.")
        result: Any = getattr(episode.env, name)(**function.get("arguments", {}))
    except Exception as e:  # TRL hands every tool error back to the model the same way
        episode.tool_errors += 1
        result = {"error": str(e)}
    return {"role": "tool", "name": name, "content": str(result)}


def _score(client: EnvClient, episodes: list[_Episode], profile: str, tools: bool) -> list[EpisodeRecord]:
    answers = [e.env._final_answer(e.messages) if tools else last_message_text(e.messages) for e in episodes]
    items = [ScoreItem(problem_id=e.problem.id, completion=a) for e, a in zip(episodes, answers, strict=True)]
    results = client.rewards(items, profile).results
    records = []
    for e, answer, r in zip(episodes, answers, results, strict=True):
        records.append(
            EpisodeRecord(
                problem_id=e.problem.id,
                answer=answer,
                verdict=r.verdict.value if r.verdict is not None else None,
                reward=r.reward,
                score_ratio=r.score_ratio,
                checks_used=getattr(e.env, "checks_used", 0),
                submit_called=bool(getattr(e.env, "submit_called", False)),
                tool_calls=e.tool_calls,
                tool_errors=e.tool_errors,
                turns=e.turns,
                sampled_tokens=e.sampled,
                completion_tokens=len(e.ids) - len(e.prompt_ids),
                truncated=e.truncated,
            )
        )
    return records


def summarize(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """Shares and means over the episodes (an invalid answer's score ratio counts 0)."""
    n = len(records)
    verdicts: dict[str, int] = {}
    for r in records:
        verdicts[str(r.verdict)] = verdicts.get(str(r.verdict), 0) + 1
    return {
        "n": n,
        "valid_pct": 100 * verdicts.get("valid", 0) / n,
        "overlap_pct": 100 * verdicts.get("overlap", 0) / n,
        "mean_score_ratio": sum(r.score_ratio or 0.0 for r in records) / n,
        "mean_reward": sum(r.reward or 0.0 for r in records) / n,
        "verdicts": verdicts,
        "mean_checks": sum(r.checks_used for r in records) / n,
        "share_checking": sum(r.checks_used > 0 for r in records) / n,
        "share_submit_called": sum(r.submit_called for r in records) / n,
        "tool_errors": sum(r.tool_errors for r in records),
        "mean_sampled_tokens": sum(r.sampled_tokens for r in records) / n,
        "truncated": sum(r.truncated for r in records),
    }


def as_rows(records: Sequence[EpisodeRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]


class VLLMTokenEngine:
    """`TokenEngine` over a `VLLMBackend`'s engine (a LoRA adapter merged on a CPU), greedy."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def continue_tokens(self, prompts: list[list[int]], max_new_tokens: list[int]) -> list[list[int]]:
        import vllm

        params = [vllm.SamplingParams(max_tokens=max(1, m), temperature=0.0) for m in max_new_tokens]
        outputs = self.backend.llm.generate(
            [{"prompt_token_ids": p} for p in prompts],
            params,
            use_tqdm=False,
            lora_request=self.backend.lora,
        )
        return [list(o.outputs[0].token_ids) for o in outputs]


class HFTokenEngine:
    """`TokenEngine` over an `HFBackend`'s model, greedy, `batch_size` prompts at a time (left-padded)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def continue_tokens(self, prompts: list[list[int]], max_new_tokens: list[int]) -> list[list[int]]:
        import torch

        model, tok = self.backend.model, self.backend.tokenizer
        pad = tok.pad_token_id
        out: dict[int, list[int]] = {}
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.backend.batch_size):
            idx = order[start : start + self.backend.batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in idx])
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx])
            limit = max(1, max(max_new_tokens[i] for i in idx))
            with torch.inference_mode():
                gen = model.generate(
                    input_ids=ids.to(model.device),
                    attention_mask=mask.to(model.device),
                    max_new_tokens=limit,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=pad,
                )
            for row, i in zip(gen[:, width:].tolist(), idx, strict=True):
                if tok.eos_token_id in row:
                    row = row[: row.index(tok.eos_token_id) + 1]
                out[i] = row[: max(1, max_new_tokens[i])]
        return [out[i] for i in range(len(prompts))]
