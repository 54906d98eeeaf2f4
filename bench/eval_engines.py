"""The evaluation phase of `make learn`, timed with each generation engine on the same problems.

`sched-train learn` evaluates three times on 100 held-out test problems: greedy decoding, up to 640 new
tokens, the `guided` prompt style, transformers at 50 prompts per `generate` (`--engine hf`) or vLLM
over all of them (`--engine vllm`). This runs that evaluation (`trainer.pipelines.learn.evaluate`,
scored by a live service) once per engine on the same model and problems, one engine after the other
in this process, and prints wall time (vLLM's start-up included and also shown apart), generated
tokens, tokens per second, and how many answers and verdicts the engines share (greedy decoding in
bfloat16 on different kernels can part ways on near-ties). Nothing is asserted.

    .venv/bin/python bench/eval_engines.py [--model smollm2-135m-instruct] [--n 100] [--engines hf vllm]

`--model` may be an adapter (e.g. runs/learn/sft): its answers are the lengths `learn` meets after SFT;
the base model's run longer.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--model", default="smollm2-135m-instruct")
    cli.add_argument("--n", type=int, default=100)
    cli.add_argument("--engines", nargs="+", choices=["hf", "vllm"], default=["hf", "vllm"])
    cli.add_argument("--prompt_style", default="guided")
    cli.add_argument("--json", type=Path, default=None)
    opts = cli.parse_args()

    from transformers import AutoTokenizer

    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.dataset import from_split
    from trainer.pipelines.learn import LearnSettings, evaluate
    from trainer.training.model_prep import resolve_dtype, resolve_model

    model = resolve_model(opts.model)
    settings = LearnSettings(
        eval_size=opts.n, prompt_style=opts.prompt_style, dtype=resolve_dtype("auto", "cpu")
    )
    tok = AutoTokenizer.from_pretrained(model)
    runs: dict[str, dict[str, Any]] = {}
    with local_service(train_size=64, test_size=max(opts.n, 16)) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        problems = from_split(client, "test", opts.n, prompt_style=opts.prompt_style)
        for engine in opts.engines:
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                run_settings = replace(settings, engine=engine, output_dir=Path(out))
                found = evaluate(client, engine, model, {opts.prompt_style: problems}, run_settings)
                summary, rows = found[opts.prompt_style]
                wall = time.perf_counter() - started
            tokens = sum(len(tok.encode(r.completion, add_special_tokens=False)) for r in rows)
            runs[engine] = {
                "wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall,
                "valid_pct": summary.valid_pct, "mean_reward": summary.mean_reward,
                "completions": [r.completion for r in rows], "verdicts": [r.verdict for r in rows],
            }  # fmt: skip
            print(
                f"[{engine}] {wall:.1f} s for {opts.n} answers, {tokens} generated tokens, "
                f"{tokens / wall:.1f} tok/s (start-up included); valid {summary.valid_pct:.0f} %, "
                f"mean reward {summary.mean_reward:.1f}",
                flush=True,
            )
    if "hf" in runs and "vllm" in runs:
        hf, vllm = runs["hf"], runs["vllm"]
        same = sum(a == b for a, b in zip(hf["completions"], vllm["completions"], strict=True))
        verdicts = sum(a == b for a, b in zip(hf["verdicts"], vllm["verdicts"], strict=True))
        print(
            f"vllm vs hf: {hf['wall_s'] / vllm['wall_s']:.2f}x faster end to end; "
            f"identical answers {same}/{opts.n}, "
            f"same verdict {verdicts}/{opts.n}"
        )
    if opts.json:
        opts.json.write_text(json.dumps({k: {**v, "completions": None} for k, v in runs.items()}, indent=2))


if __name__ == "__main__":
    main()
