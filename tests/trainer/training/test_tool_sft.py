"""`sched-train sft --tool_share F`: tool-episode transcripts TRL's tool loop reads back, and an SFT run on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared_schema import ProblemWithPrompt
from tests.conftest import LiveServer
from trainer.client.env_client import EnvClient
from trainer.integrations.trl_tools import tool_calling_tokenizer, training_environment
from trainer.training.tool_sft import mixed_rows, split_trace, tool_transcript, with_dropped_event

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def problem_with_overlap(client: EnvClient) -> tuple[ProblemWithPrompt, str]:
    """The first train problem whose optimum leaves out an event that overlaps a kept one."""
    for problem in client.problems("train", 0, 20, prompt_style="guided").items:
        traced = client.solve(problem, trace=True).completion
        if with_dropped_event(split_trace(traced)[1], problem) is not None:
            return problem, traced
    raise AssertionError("no problem among 20 leaves out an overlapping event")


def test_split_trace_and_the_mended_draft(live_server: LiveServer) -> None:
    with EnvClient.from_url(live_server.url) as client:
        problem, traced = problem_with_overlap(client)
    think, gold = split_trace(traced)
    assert think.startswith("<think>") and think.endswith("</think>") and think + "\n" + gold == traced
    mended = with_dropped_event(gold, problem)
    assert mended is not None
    draft, dropped = mended
    assert draft.count("<event>") == gold.count("<event>") + 1 and f"<name>{dropped}</name>" in draft
    assert f"<name>{dropped}</name>" not in gold
    starts = [line[line.index("<start>") + 7 :][:5] for line in draft.splitlines() if "<start>" in line]
    assert starts == sorted(starts)  # put back in start-time order
    with pytest.raises(ValueError, match="not a traced answer"):
        split_trace("<schedule></schedule>")


def test_transcripts_are_what_the_tool_loop_reads_back(live_server: LiveServer, tiny_model_dir: Path) -> None:
    """A mended transcript: the check reports the overlap the draft has, the optimum is submitted, and the
    chat template renders each call so that TRL's response parser gives back the very call (raw `<`, no
    JSON escapes the model would have to learn)."""
    from transformers import AutoTokenizer
    from trl.chat_template_utils import add_response_schema

    with EnvClient.from_url(live_server.url) as client:
        problem, traced = problem_with_overlap(client)
        env = training_environment(live_server.url, 2, "guided")()
        row = tool_transcript(env, problem, traced, mend=True)
    first, checked, submit, confirmed, last = row["completion"]
    assert checked["content"].startswith("verdict: overlap\n- ") and checked["content"].endswith(
        "checks left: 1"
    )
    answer = submit["tool_calls"][0]["function"]["arguments"]["answer"]
    assert answer.endswith("</think>\n" + split_trace(traced)[1]) and answer.startswith("<think>")
    assert "overlaps an event I keep: drop it." in answer
    assert confirmed["content"] == "submitted: valid, reward 100" and last == {
        "role": "assistant",
        "content": "",
    }
    user = row["prompt"][-1]["content"]
    assert user.startswith(problem.prompt[-1].content + "\n\nTools: ") and "You have 2 checks." in user

    tokenizer = add_response_schema(tool_calling_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir)))
    tools = json.loads(row["tools"])
    prefix = tokenizer.apply_chat_template(
        row["prompt"], tools=tools, tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(row["prompt"] + [first], tools=tools, tokenize=False)
    assert full.startswith(prefix) and "\\u003c" not in full and "<schedule>" in full
    parsed = tokenizer.parse_response(full[len(prefix) :], prefix=prefix)
    assert parsed["tool_calls"][0]["function"] == first["tool_calls"][0]["function"]
    # the parser moves the reasoning block of a message that calls a tool into `reasoning_content`
    assert parsed["reasoning_content"].strip() == first["content"].removeprefix("<think>").removesuffix(
        "</think>"
    )


def test_mixed_rows_spread_the_share(live_server: LiveServer) -> None:
    with EnvClient.from_url(live_server.url) as client:
        problems = client.problems("train", 0, 6, prompt_style="guided").items
        rows = mixed_rows(client, problems, 0.5, 2, "guided", live_server.url)
    kinds = ["tool" if r["tools"] else "single" for r in rows]
    assert kinds == ["single", "tool"] * 3 and [r["problem_id"] for r in rows] == [p.id for p in problems]
    assert rows[0]["completion"][0]["content"].startswith("<think>By start time:")


def test_sft_on_a_mixed_dataset_saves_the_tool_template(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from trainer.client.env_card import read_card
    from trainer.training.sft import parse, run_sft

    out = tmp_path / "sft-tools"
    args = [
        "--env_url", live_server.url, "--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out),
        "--dataset_size", "4", "--prompt_style", "guided", "--tool_share", "0.5", "--max_steps", "1",
        "--per_device_train_batch_size", "4", "--max_length", "2048", "--use_peft", "--lora_r", "4",
        "--lora_target_modules", "q_proj", "v_proj", "--bf16", "false", "--report_to", "none", "--save_strategy", "no",
    ]  # fmt: skip
    trainer = run_sft(*parse(args))
    assert trainer.state.global_step == 1
    card = read_card(out)
    assert card["tool_share"] == 0.5 and card["tool_checks"] == 2 and card["prompt_style"] == "guided"
    assert "<tool_call>" in (out / "chat_template.jinja").read_text()  # `train --tool_checks` keeps it
    with pytest.raises(ValueError, match="tool_share"):
        run_sft(*parse([*args, "--tool_share", "1.5"]))
