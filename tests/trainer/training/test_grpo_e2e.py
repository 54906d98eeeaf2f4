"""End to end: a real uvicorn service, `GRPOTrainer` on a tiny random model, rewards over HTTP.

Asserts that the logged per-component rewards are what `/v1/score` gives for the very completions
trained on, that resuming continues the step count, and that a service that goes away mid-run stops
training with a clear error while the checkpoint already written stays intact.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from transformers import TrainerCallback

from tests.conftest import LiveServer, start_server
from trainer.client.env_client import EnvUnavailableError
from trainer.training.grpo import main, parse, run
from trainer.training.reward_funcs import completion_text

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def argv(url: str, model: Path, out: Path, steps: int, *extra: str) -> list[str]:
    """Tiny, fast GRPO: 1 prompt × 2 generations of 16 tokens per step, LoRA, one checkpoint per step."""
    return [
        "--env_url", url, "--model_name_or_path", str(model), "--output_dir", str(out), "--max_steps", str(steps),
        "--dataset_size", "16", "--per_device_train_batch_size", "2", "--num_generations", "2",
        "--max_completion_length", "16", "--bf16", "false", "--gradient_checkpointing", "false",
        "--use_peft", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj",
        "--learning_rate", "1e-3", "--logging_steps", "1", "--save_steps", "1", "--report_to", "none",
        "--log_completions", "--num_completions_to_print", "0", "--seed", "0",
        "--env_max_attempts", "2", "--env_backoff", "0.01", "--env_health_timeout", "10", *extra,
    ]  # fmt: skip


def rescore(url: str, problem_ids: list[str], completions: list[Any]) -> list[dict[str, Any]]:
    items = [
        {"problem_id": p, "completion": completion_text(c)}
        for p, c in zip(problem_ids, completions, strict=True)
    ]
    response = httpx.post(f"{url}/v1/score", json={"items": items}, timeout=30)
    response.raise_for_status()
    return list(response.json()["results"])


def test_rewards_come_from_the_service_and_resume_continues(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    trainer = run(*parse(argv(live_server.url, tiny_model_dir, out, 2)))
    scorer = trainer.reward_funcs[0].scorer
    assert trainer.reward_func_names == scorer.component_names == ["format", "order", "score"]
    assert trainer.reward_weights.tolist() == scorer.weights
    assert scorer.requests == 2  # one /v1/score request per reward batch, not one per component

    logged = {h["step"]: h for h in trainer.state.log_history if "reward" in h}
    assert sorted(logged) == [1, 2]
    for step, metrics in logged.items():
        table = pd.read_parquet(out / "completions" / f"completions_{step:05d}.parquet")
        results = rescore(live_server.url, list(table["problem_id"]), list(table["completion"]))
        assert list(table["verdict"]) == [r["verdict"] for r in results]
        for name, weight in zip(scorer.component_names, scorer.weights, strict=True):
            points = [r["components"][name] for r in results]
            assert metrics[f"rewards/{name}/mean"] * weight == pytest.approx(
                sum(points) / len(points), abs=1e-5
            )
            assert list(table[name] * weight) == pytest.approx(points, abs=1e-5)
        assert metrics["reward"] == pytest.approx(sum(r["reward"] for r in results) / len(results), abs=1e-4)

    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2

    resumed = run(*parse(argv(live_server.url, tiny_model_dir, out, 3, "--resume_from_checkpoint", "last")))
    assert resumed.state.global_step == 3
    assert [h["step"] for h in resumed.state.log_history if "reward" in h] == [1, 2, 3]
    assert resumed.reward_funcs[0].scorer.requests == 1  # only step 3 was generated and scored


class ScriptedRollout:
    """A TRL `rollout_func` that answers each prompt with a known completion, cycling through optimal,
    overlapping, single-event and malformed answers, so the rewards checked below are not all zero
    (a tiny random model never writes the answer format)."""

    def __init__(self, url: str) -> None:
        self.answers: dict[str, list[str]] = {}
        with httpx.Client(base_url=url, timeout=30) as http:
            for p in http.get("/v1/problems", params={"limit": 16}).json()["items"]:
                spec = {"events": p["events"], "priorities": p["priorities"]}
                gold = http.post("/v1/solve", json={"problem": spec}).json()["completion"]
                extra = "".join(
                    f"<event><name>{e['name']}</name><start>{e['start']}</start><end>{e['end']}</end></event>"
                    for e in p["events"]
                )
                overlapping = f"<think>all of them</think><schedule>{extra}</schedule>"
                single = gold[: gold.index("</event>") + len("</event>")] + "</schedule>"
                self.answers[p["prompt"][-1]["content"]] = [gold, overlapping, single, "I am not sure."]
        self.calls = 0

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        tok = trainer.processing_class
        prompt_ids, completion_ids = [], []
        for i, prompt in enumerate(prompts):
            text = self.answers[prompt[-1]["content"]][(self.calls + i) % 4]
            prompt_ids.append(
                tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)[
                    "input_ids"
                ]
            )
            completion_ids.append([*tok.encode(text, add_special_tokens=False), tok.eos_token_id])
        self.calls += 1
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": [[0.0] * len(ids) for ids in completion_ids],
        }


def test_scripted_completions_get_the_services_rewards(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scripted"
    args = argv(
        live_server.url,
        tiny_model_dir,
        out,
        2,
        "--per_device_train_batch_size",
        "4",
        "--max_completion_length",
        "512",
    )
    trainer = run(*parse(args), rollout_func=ScriptedRollout(live_server.url))
    scorer = trainer.reward_funcs[0].scorer
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logged) == 2 and scorer.requests == 2
    seen_rewards: set[float] = set()
    for metrics in logged:
        table = pd.read_parquet(out / "completions" / f"completions_{metrics['step']:05d}.parquet")
        results = rescore(live_server.url, list(table["problem_id"]), list(table["completion"]))
        seen_rewards.update(r["reward"] for r in results)
        for name, weight in zip(scorer.component_names, scorer.weights, strict=True):
            points = [r["components"][name] for r in results]
            assert metrics[f"rewards/{name}/mean"] * weight == pytest.approx(
                sum(points) / len(points), abs=1e-5
            )
        assert metrics["reward"] == pytest.approx(sum(r["reward"] for r in results) / len(results), abs=1e-4)
    assert 100.0 in seen_rewards and 0.0 in seen_rewards and len(seen_rewards) >= 3


class _Signal(logging.Handler):
    def __init__(self, event: threading.Event) -> None:
        super().__init__(logging.WARNING)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


class RestartServiceAfterFirstStep(TrainerCallback):  # type: ignore[misc]
    """After step 1, stop the service for real; once the client has found it gone (its first logged
    retry), wait `down_for` more seconds and start it again on the same port, in the background while
    training waits in its retries."""

    def __init__(self, server: LiveServer, down_for: float) -> None:
        self.server, self.down_for = server, down_for
        self.restarted, self.client_failed = threading.Event(), threading.Event()
        logging.getLogger("trainer.client.env_client").addHandler(_Signal(self.client_failed))
        self.thread: threading.Thread | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step != 1:
            return
        port = int(self.server.url.rsplit(":", 1)[1])
        self.server.stop()
        assert self.server.process.poll() is not None

        def restart() -> None:
            self.client_failed.wait(timeout=60)
            time.sleep(self.down_for)
            self.server = start_server(port=port)
            self.restarted.set()

        self.thread = threading.Thread(target=restart, daemon=True)
        self.thread.start()


def test_training_rides_out_a_service_restart_without_losing_a_step(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 9: the service restarts between two steps (down for the restart plus a pause); the client
    retries by time, logs each wait, and every step is trained on rewards the service computed."""
    server = start_server()
    restart = RestartServiceAfterFirstStep(server, down_for=1.0)
    out = tmp_path / "run"
    args = argv(server.url, tiny_model_dir, out, 3)
    i = args.index("--env_max_attempts")
    del args[i : i + 2]  # no cap on attempts: retry by time alone
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.client.env_client"):
            trainer = run(*parse([*args, "--env_retry_timeout", "90"]), callbacks=[restart])
        assert restart.restarted.is_set()
        scorer = trainer.reward_funcs[0].scorer
        assert trainer.state.global_step == 3 and scorer.requests == 3  # one scored batch per step
        logged = {h["step"]: h for h in trainer.state.log_history if "reward" in h}
        assert sorted(logged) == [1, 2, 3]
        waits = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
        assert waits and all("POST /v1/score failed" in w for w in waits)  # the outage hit step 2's rewards
        for step in (2, 3):  # rewards after the restart are the (restarted) service's own
            table = pd.read_parquet(out / "completions" / f"completions_{step:05d}.parquet")
            results = rescore(restart.server.url, list(table["problem_id"]), list(table["completion"]))
            assert logged[step]["reward"] == pytest.approx(
                sum(r["reward"] for r in results) / len(results), abs=1e-4
            )
        assert json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["global_step"] == 3
    finally:
        for handler in logging.getLogger("trainer.client.env_client").handlers[:]:
            if isinstance(handler, _Signal):
                logging.getLogger("trainer.client.env_client").removeHandler(handler)
        if restart.thread is not None:
            restart.thread.join(timeout=60)
        restart.server.stop()
        server.stop()


class StopServiceAfterFirstCheckpoint(TrainerCallback):  # type: ignore[misc]
    def __init__(self, server: LiveServer) -> None:
        self.server = server

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.server.stop()


def test_service_gone_mid_run_stops_training_and_keeps_the_checkpoint(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    server = start_server()
    out = tmp_path / "run"
    try:
        with pytest.raises(EnvUnavailableError, match=r"failed 2 times on POST /v1/score.*sched-env serve"):
            run(
                *parse(argv(server.url, tiny_model_dir, out, 3)),
                callbacks=[StopServiceAfterFirstCheckpoint(server)],
            )
    finally:
        server.stop()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    checkpoint = out / "checkpoint-1"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 1
    from safetensors.torch import load_file

    assert load_file(str(checkpoint / "adapter_model.safetensors"))
    assert not (out / "adapter_model.safetensors").exists()  # no final save of a half-finished run


def test_cli_reports_an_unreachable_service(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_server()
    server.stop()
    code = main(argv(server.url, tiny_model_dir, tmp_path / "run", 1, "--env_health_timeout", "0.5"))
    assert code == 3
    err = capsys.readouterr().err
    assert "environment service is unreachable" in err and "No checkpoint was written" in err


def test_sched_train_cli_passes_flags_through(tiny_model_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trainer.cli import app

    server = start_server()
    server.stop()
    flags = argv(server.url, tiny_model_dir, tmp_path / "run", 1, "--env_health_timeout", "0.5")
    result = CliRunner().invoke(app, ["train", *flags])
    assert result.exit_code == 3, result.output
