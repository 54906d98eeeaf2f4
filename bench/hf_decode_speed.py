"""Where transformers' `generate` spends its time on this CPU: milliseconds per decoding step by batch size
(issue 26: what a shorter `make demo` can and cannot buy).

The embedded SmolLM2-135M-Instruct, one real published prompt of the test split repeated `batch` times,
greedy, exactly `--new_tokens` new tokens (EOS suppressed by `min_new_tokens`), in the dtype `auto`
chooses. For each batch size and cache kind it prints the prefill seconds and the milliseconds per
decoding step after it, then the share of one batch-1 decoding step spent in matmuls (torch profiler).
Nothing is asserted; it writes `hf_decode_speed.json` to `--output_dir`.

    .venv/bin/python bench/hf_decode_speed.py --output_dir runs/hf-decode-speed
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--output_dir", type=Path, default=Path("runs/hf-decode-speed"))
    cli.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16])
    cli.add_argument("--caches", nargs="+", default=["dynamic", "static"])
    cli.add_argument("--new_tokens", type=int, default=256)
    cli.add_argument("--dtype", default="auto")
    opts = cli.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from env_server.task.generator import generate_problem
    from env_server.task.prompts import build_prompt
    from trainer.training.model_prep import SMOLLM2_SENTINEL, resolve_dtype, resolve_model

    path = resolve_model(SMOLLM2_SENTINEL)
    dtype = resolve_dtype(opts.dtype, "cpu")
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
    problem = generate_problem(0, "test", 0)  # the service's default seed: test-000000
    messages = [m.model_dump() for m in build_prompt(problem, "default")]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt_tokens = len(tok(text, add_special_tokens=False)["input_ids"])
    print(f"dtype {dtype}, {torch.get_num_threads()} threads, prompt {prompt_tokens} tokens", flush=True)

    def run(enc: Any, new: int, cache: str) -> float:
        kwargs: dict[str, Any] = {"cache_implementation": "static"} if cache == "static" else {}
        started = time.perf_counter()
        model.generate(
            **enc,
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            pad_token_id=tok.eos_token_id,
            **kwargs,
        )
        return time.perf_counter() - started

    rows = []
    with torch.inference_mode():
        for batch in opts.batches:
            enc = tok([text] * batch, return_tensors="pt", padding=True, add_special_tokens=False)
            for cache in opts.caches:
                run(enc, 2, cache)  # warm-up
                prefill = run(enc, 1, cache)
                whole = run(enc, opts.new_tokens, cache)
                step_ms = (whole - prefill) / (opts.new_tokens - 1) * 1000
                rows.append(
                    {
                        "batch": batch,
                        "cache": cache,
                        "prefill_s": round(prefill, 2),
                        "step_ms": round(step_ms, 1),
                    }
                )
                print(
                    f"batch {batch:>2}, {cache:>7} cache: prefill {prefill:.2f} s, {step_ms:.1f} ms a step",
                    flush=True,
                )

        # One batch-1 decoding step, profiled: which operators take its time.
        enc = tok([text], return_tensors="pt", add_special_tokens=False)
        out = model(**enc, use_cache=True)
        cache_kv, last = out.past_key_values, enc["input_ids"][:, -1:]
        n = enc["input_ids"].shape[1]

        def step(i: int) -> None:
            nonlocal cache_kv
            pos = torch.tensor([n + i])
            cache_kv = model(
                input_ids=last,
                past_key_values=cache_kv,
                use_cache=True,
                position_ids=pos[None],
                cache_position=pos,
            ).past_key_values

        for i in range(3):
            step(i)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(3, 23):
                step(i)
    ops = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(ops.values())
    shares = {k: round(v / total, 3) for k, v in sorted(ops.items(), key=lambda kv: -kv[1])[:5]}
    print("batch-1 step, self time by operator: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    result = {"dtype": dtype, "threads": torch.get_num_threads(), "prompt_tokens": prompt_tokens,
              "new_tokens": opts.new_tokens, "rows": rows, "batch1_step_op_shares": shares}  # fmt: skip
    (opts.output_dir / "hf_decode_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {opts.output_dir / 'hf_decode_speed.json'}")


if __name__ == "__main__":
    main()
