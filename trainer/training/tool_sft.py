"""Tool-episode transcripts for SFT: the solver's traced answer, checked with the check tool, then submitted.

A model that has never seen a tool call does not start calling one in a few hundred GRPO samples, so a
study of whether the check tool helps needs an SFT start that knows the protocol. `sched-train sft
--tool_share F --tool_checks N` turns a share F of the traced answers into episodes as `sched-train train
--tool_checks N` runs them (the same tools, prompts, chat template and tool results, produced by the same
`TrainingToolEnv` against the service):

1. the assistant writes the trace's `<think>` block and calls `check_schedule(draft)`;
2. the tool answers what the service's check says about the draft;
3. the assistant calls `submit(answer)` with the optimal schedule after a one-line reasoning block
   (what the check found; the final answer is scored whole, and the format wants the block), the tool
   confirms, and the assistant ends with an empty message (TRL's loop asks for one more turn after every
   tool result).

The draft is the optimal schedule itself in half of the transcripts (the check says `valid`) and, in the
other half, the optimal schedule with one dropped event put back where it belongs by start time, so that
the check reports the overlap and the submitted answer is the mended one: what using the tool looks like.
The rest of the rows stay single-turn traced answers, so one SFT start serves a run with tools and a run
without. Loss is on the whole completion, the tool results included (TRL's Qwen2.5 template marks no
assistant spans); they are the service's exact words, so this teaches reading them, nothing false.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared_schema import ProblemWithPrompt
from shared_schema.models import TraceStyle
from trainer.client.env_client import EnvClient
from trainer.client.tool_env import tool_schemas, training_environment

_EVENT = re.compile(r"<event><name>(.*?)</name><start>(\d\d:\d\d)</start><end>(\d\d:\d\d)</end></event>")


def split_trace(completion: str) -> tuple[str, str]:
    """A traced answer → (its `<think>…</think>` block, its `<schedule>…</schedule>` block)."""
    head, sep, tail = completion.partition("</think>")
    if not sep or "<schedule>" not in tail:
        raise ValueError("not a traced answer: no </think> followed by a <schedule> block")
    return head + sep, tail.strip()


def with_dropped_event(schedule: str, problem: ProblemWithPrompt) -> tuple[str, str] | None:
    """`schedule` with the first event it leaves out that overlaps a kept one (by start time) put back in
    start-time order, and that event's name; None when no left-out event overlaps a kept one."""
    kept = [(m.group(2), m.group(3), m.group(1)) for m in _EVENT.finditer(schedule)]
    names = {name for _, _, name in kept}
    for event in sorted(problem.events, key=lambda e: (e.start, e.end, e.name)):
        if event.name in names:
            continue
        if not any(start < event.end and event.start < end for start, end, _ in kept):
            continue
        rows = sorted([*kept, (event.start, event.end, event.name)])
        body = "\n".join(
            f"<event><name>{n}</name><start>{s}</start><end>{e}</end></event>" for s, e, n in rows
        )
        return f"<schedule>\n{body}\n</schedule>", event.name
    return None


def _call(name: str, answer: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": {"answer": answer}}}


def tool_transcript(env: Any, problem: ProblemWithPrompt, traced: str, mend: bool) -> dict[str, Any]:
    """One SFT row (`prompt`, `completion`, `tools`, `problem_id`) of an episode on `problem`, run by `env`
    (a `TrainingToolEnv` instance: the service's own tool results). `mend`: the draft has an overlap the
    check reports (when the problem allows one; else the draft is the answer)."""
    think, gold = split_trace(traced)
    mended = with_dropped_event(gold, problem) if mend else None
    if mended is None:
        draft, note = gold, "The check found no broken rule."
    else:
        draft, note = mended[0], f"{mended[1]} overlaps an event I keep: drop it."
    answer = f"<think>{note}</think>\n{gold}"  # the final answer is scored whole: a reasoning block first
    prompt = [m.model_dump() for m in problem.prompt]
    prompt[-1] = {**prompt[-1], "content": prompt[-1]["content"] + env.reset(problem_id=problem.id)}
    checked = env.check_schedule(draft)
    submitted = env.submit(answer)
    completion = [
        {"role": "assistant", "content": think, "tool_calls": [_call("check_schedule", draft)]},
        {"role": "tool", "name": "check_schedule", "content": checked},
        {"role": "assistant", "content": "", "tool_calls": [_call("submit", answer)]},
        {"role": "tool", "name": "submit", "content": submitted},
        {"role": "assistant", "content": ""},
    ]
    return {
        "prompt": prompt,
        "completion": completion,
        "tools": json.dumps(tool_schemas()),
        "problem_id": problem.id,
    }


def single_turn_row(problem: ProblemWithPrompt, traced: str) -> dict[str, Any]:
    """One SFT row of the traced answer as a single message (`tools` empty: no tool in the prompt)."""
    return {
        "prompt": [m.model_dump() for m in problem.prompt],
        "completion": [{"role": "assistant", "content": traced}],
        "tools": None,
        "problem_id": problem.id,
    }


def mixed_rows(
    client: EnvClient,
    problems: list[ProblemWithPrompt],
    tool_share: float,
    checks: int,
    prompt_style: str,
    env_url: str,
    api_key: str | None = None,
    trace_style: TraceStyle = "sorted",
) -> list[dict[str, Any]]:
    """Rows for `SFTTrainer`: every problem once, a share `tool_share` of them (spread evenly: problem i is
    a transcript when ⌊(i+1)·share⌋ > ⌊i·share⌋) as tool transcripts, alternately with a clean and a
    mended draft; the rest single-turn."""
    env = training_environment(env_url, checks, prompt_style, api_key=api_key)()
    rows, transcripts = [], 0
    for i, problem in enumerate(problems):
        traced = client.solve(problem, True, trace_style).completion
        if int((i + 1) * tool_share) > int(i * tool_share):
            rows.append(tool_transcript(env, problem, traced, mend=transcripts % 2 == 1))
            transcripts += 1
        else:
            rows.append(single_turn_row(problem, traced))
    return rows
