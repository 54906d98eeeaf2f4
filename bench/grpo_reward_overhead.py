"""GRPO step time with the remote reward (HTTP `/v1/score`) vs an in-process call of the same scoring code.

One training run of a tiny random Llama (the end-to-end test's model) against a real uvicorn service.
The reward backend alternates every step (odd steps over HTTP, even steps in-process), so both see the
same machine load; the figures are medians and ratios because a shared 2-core machine is noisy. A second
measurement times `/v1/score` alone for a batch of the published recipe's shape (8 prompts × 8
completions of realistic length) to show what HTTP costs per batch in absolute terms.

    .venv/bin/python bench/grpo_reward_overhead.py [--steps 40] [--batch 8] [--generations 2]

The benchmark (not the trainer) imports `env_server`, to build the in-process backend.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformers import TrainerCallback  # noqa: E402

from env_server.scoring.batch import score_items  # noqa: E402
from env_server.scoring.profiles import REWARD_VERSION, get_profile  # noqa: E402
from env_server.service.settings import Settings  # noqa: E402
from env_server.service.store import ProblemStore  # noqa: E402
from shared_schema import InfoResponse, ScoreItem, ScoreResponse  # noqa: E402
from tests.conftest import SMALL, start_server  # noqa: E402
from trainer.client.env_client import EnvClient  # noqa: E402
from trainer.client.rewards import RewardResponse, RewardResult  # noqa: E402
from trainer.training.reward_funcs import EnvScorer  # noqa: E402


class InProcessBackend:
    """The service's scoring functions called directly: no HTTP, no JSON (the baseline)."""

    def __init__(self, info: InfoResponse) -> None:
        self._info = info
        self.store = ProblemStore(Settings(**SMALL))

    def info(self) -> InfoResponse:
        return self._info

    def score(self, items: Sequence[ScoreItem], profile: str = "default") -> ScoreResponse:
        results = score_items(items, get_profile(profile), self.store.index)
        return ScoreResponse(reward_version=REWARD_VERSION, profile=profile, results=results)

    def rewards(self, items: Sequence[ScoreItem], profile: str = "default") -> RewardResponse:
        """`score`'s results as the reward path's view (`EnvScorer` calls this)."""
        fields = RewardResult.__struct_fields__
        results = [
            RewardResult(**{f: getattr(r, f) for f in fields})
            for r in score_items(items, get_profile(profile), self.store.index)
        ]
        return RewardResponse(reward_version=REWARD_VERSION, profile=profile, results=results)


class Alternate(TrainerCallback):  # type: ignore[misc]
    """Odd steps score over HTTP, even steps in-process; records each step's wall time and reward time."""

    def __init__(self, scorer: EnvScorer, remote: Any, local: Any) -> None:
        self.scorer, self.remote, self.local = scorer, remote, local
        self.step_seconds: dict[str, list[float]] = {"remote": [], "in-process": []}
        self.reward_seconds: dict[str, list[float]] = {"remote": [], "in-process": []}
        self._mode, self._start, self._before = "remote", 0.0, 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._mode = "remote" if state.global_step % 2 == 0 else "in-process"
        self.scorer.backend = self.remote if self._mode == "remote" else self.local
        self._start, self._before = time.perf_counter(), self.scorer.seconds

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_seconds[self._mode].append(time.perf_counter() - self._start)
        self.reward_seconds[self._mode].append(self.scorer.seconds - self._before)


def tiny_model(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from trainer.training.model_prep import save_smollm2_tokenizer

    save_smollm2_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


def alternating_run(url: str, model: Path, out: Path, opts: argparse.Namespace) -> Alternate:
    from trl import GRPOTrainer

    from trainer.training.grpo import build_dataset, parse

    _, training, _ = parse([
        "--env_url", url, "--output_dir", str(out), "--max_steps", str(opts.steps), "--bf16", "false",
        "--per_device_train_batch_size", str(opts.batch), "--num_generations", str(opts.generations),
        "--max_completion_length", "32", "--gradient_checkpointing", "false", "--logging_steps", "1",
        "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", "--seed", "0",
        "--log_level", "warning",
    ])  # fmt: skip
    remote = EnvClient.from_url(url)
    scorer = EnvScorer(remote)
    training.reward_weights = scorer.weights
    local = InProcessBackend(remote.info())
    alternate = Alternate(scorer, remote, local)
    trainer = GRPOTrainer(
        model=str(model), reward_funcs=scorer.reward_funcs(), args=training, callbacks=[alternate],
        train_dataset=build_dataset(remote, "train", 64, None),
    )  # fmt: skip
    trainer.train()
    return alternate


def batch_round_trip(url: str, repeats: int = 20) -> tuple[float, float]:
    """Median seconds to score 8 × 8 realistic completions (gold answers padded with ~1 KB of reasoning)."""
    remote = EnvClient.from_url(url)
    local = InProcessBackend(remote.info())
    problems = remote.problems("train", 0, 8).items
    think = "<think>" + "Compare the overlapping events and keep the heavier ones. " * 20 + "</think>\n"
    items = [
        ScoreItem(
            problem_id=p.id, completion=think + remote.solve(p).completion.split("</think>")[-1].strip()
        )
        for p in problems
        for _ in range(8)
    ]
    medians = []
    for backend in (remote, local):
        backend.score(items)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            backend.score(items)
            runs.append(time.perf_counter() - start)
        medians.append(statistics.median(runs))
    return medians[0], medians[1]


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--steps", type=int, default=40)
    cli.add_argument("--batch", type=int, default=8, help="completions per step")
    cli.add_argument("--generations", type=int, default=2)
    cli.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 avoids oversubscribing 2 cores)"
    )
    opts = cli.parse_args()
    import torch

    torch.set_num_threads(opts.threads)
    server = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model = tiny_model(Path(tmp) / "tiny")
            alternate = alternating_run(server.url, model, Path(tmp) / "run", opts)
        http, inproc = batch_round_trip(server.url)
    finally:
        server.stop()

    # the first step of each backend carries warm-up: left out
    med = {k: statistics.median(v[1:]) for k, v in alternate.step_seconds.items()}
    call = {k: statistics.median(v[1:]) for k, v in alternate.reward_seconds.items()}
    print(f"tiny Llama, {opts.batch} completions/step of ≤32 tokens, {opts.steps} steps alternating backends")
    for k in ("in-process", "remote"):
        n = len(alternate.step_seconds[k]) - 1
        print(f"  {k:10s}: median step {med[k] * 1e3:7.1f} ms over {n} steps; "
              f"median reward call {call[k] * 1e3:6.2f} ms")  # fmt: skip
    ratio = med["remote"] / med["in-process"]
    overhead = (call["remote"] - call["in-process"]) / med["in-process"]
    print(f"  step-time ratio remote / in-process: {ratio:.3f} ({(ratio - 1) * 100:+.1f} %, noisy)")
    print(f"  reward-call overhead / step time: {overhead * 100:+.2f} %  (target < 2 %)")
    print(f"64 realistic completions (8 prompts × 8): /v1/score {http * 1e3:.1f} ms vs in-process "
          f"{inproc * 1e3:.1f} ms: HTTP adds {(http - inproc) * 1e3:.1f} ms per batch")  # fmt: skip


if __name__ == "__main__":
    main()
