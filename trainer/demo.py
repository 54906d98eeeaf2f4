"""`make demo`: the whole loop on a laptop CPU in a few minutes.

Starts the environment service in the background on a free port, waits for `/health`, trains the
embedded SmolLM2-135M-Instruct with LoRA for a handful of GRPO steps (rewards from the service), prints
the reward per component at the first and last step and where the adapter was saved, then stops the
service. The service runs as its own process (`python -m env_server.cli serve`): the trainer talks to it
only over HTTP.

    python -m trainer.demo [--steps 4] [--output_dir runs/demo-smollm2]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shared_schema import ScoreItem
from trainer.env_client import EnvClient
from trainer.model_prep import prepare_smollm2
from trainer.train import parse, run

CONFIG = Path(__file__).parent / "configs" / "smollm2-135m-cpu.yaml"
console = Console()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(train_size: int = 256) -> tuple[subprocess.Popen[bytes], str]:
    """`sched-env serve` on a free local port, with a small train split so it starts at once."""
    port = _free_port()
    env = {
        **os.environ,
        "SCHED_TRAIN_SIZE": str(train_size),
        "SCHED_TEST_SIZE": "16",
        "SCHED_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "env_server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env), f"http://127.0.0.1:{port}"


def component_table(log_history: list[dict[str, Any]], weights: dict[str, float]) -> Table:
    """Points per component (TRL's mean fraction × the profile's weight) at the first and last step."""
    steps = [h for h in log_history if "reward" in h]
    first, last = steps[0], steps[-1]
    table = Table(title="Reward per component (points; from the service)")
    table.add_column("component")
    table.add_column(f"step {first['step']}", justify="right")
    table.add_column(f"step {last['step']}", justify="right")
    for name, weight in weights.items():
        key = f"rewards/{name}/mean"
        table.add_row(f"{name} (max {weight:g})", f"{first[key] * weight:.2f}", f"{last[key] * weight:.2f}")
    table.add_row("total", f"{first['reward']:.2f}", f"{last['reward']:.2f}", style="bold")
    return table


def reference_line(client: EnvClient) -> str:
    """What the optimal answer to the first training problem earns, through the same `/v1/score` path.

    A 135M model rarely writes the answer format within a few CPU steps, so its rewards stay near 0;
    this line shows the scale the rewards are on and that the scoring path the run used is alive.
    """
    problem = client.problems("train", 0, 1).items[0]
    gold = client.solve(problem).completion
    result = client.score([ScoreItem(problem_id=problem.id, completion=gold)]).results[0]
    parts = ", ".join(f"{k} {v:g}" for k, v in result.components.items())
    return (
        f"reference: the optimal answer to {problem.id} earns {result.reward:g} ({parts}). "
        "SmolLM2-135M rarely writes the answer format in a few CPU steps; the 7B recipe on a GPU "
        "(trainer/configs/qwen2.5-coder-7b-lora.yaml) is the one that learns the task."
    )


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--steps", type=int, default=4, help="GRPO steps (default 4)")
    cli.add_argument("--output_dir", default="runs/demo-smollm2", help="Where the adapter goes")
    opts = cli.parse_args(argv)

    console.rule("1/3 model")
    console.print(f"SmolLM2-135M-Instruct checkpoint: {prepare_smollm2()}")
    console.rule("2/3 environment service")
    process, url = start_service()
    try:
        with EnvClient.from_url(url) as client:
            health = client.wait_until_healthy(timeout=120)
        console.print(f"service healthy at {url} (reward_version {health.reward_version})")
        console.rule(f"3/3 GRPO, {opts.steps} steps")
        args = ["--config", str(CONFIG), "--env_url", url, "--max_steps", str(opts.steps)]
        args += ["--output_dir", opts.output_dir, "--report_to", "none", "--save_steps", str(opts.steps)]
        trainer = run(*parse(args))
        weights = dict(zip(trainer.reward_func_names, trainer.reward_weights.tolist(), strict=True))
        console.print(component_table(trainer.state.log_history, weights))
        with EnvClient.from_url(url) as client:
            console.print(reference_line(client))
        console.print(f"LoRA adapter saved to [bold]{Path(opts.output_dir).resolve()}[/bold]")
        trainer.end()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        console.print("environment service stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
