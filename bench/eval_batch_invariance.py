"""Is greedy evaluation with vLLM on this CPU the same whatever else is in the batch? (issue 26)

The same SFT adapter gave 22 % and 28 % valid on the same 100 validation problems when vLLM generated
them in calls of 200 and of 100 prompts (docs/learning.md, "Twice the SFT data"). This measures that
directly, per dtype, in one engine each:

- `alone`: the N published prompts of `train[OFFSET:OFFSET+N]`, greedy, in one call;
- `again`: the same call repeated (is the engine deterministic from call to call?);
- `mixed`: the same N prompts followed by their N `guided` twins in one call of 2N (what the studies
  that evaluate both prompt styles do); only the first N are compared.

For each pair it prints how many of the N completions are identical and the valid count of each, scored
by a live service. Nothing is asserted; it writes `invariance.json`.

    .venv/bin/python bench/eval_batch_invariance.py --model runs/learn/sft --output_dir runs/eval-invariance
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--model", required=True, help="Checkpoint or LoRA adapter.")
    cli.add_argument("--output_dir", type=Path, default=Path("runs/eval-invariance"))
    cli.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    cli.add_argument("--val_offset", type=int, default=1900)
    cli.add_argument("--val_size", type=int, default=100)
    cli.add_argument("--max_new_tokens", type=int, default=640)
    opts = cli.parse_args()

    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.dataset import from_split
    from trainer.evaluation.generation import SamplingConfig
    from trainer.evaluation.runner import generate, score_generations
    from trainer.evaluation.vllm_backend import VLLMBackend

    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    sampling = SamplingConfig(opts.max_new_tokens, 0.0, seed=0)
    figures: dict[str, dict[str, float]] = {}
    with local_service(train_size=2000, test_size=16) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        published = from_split(client, "train", opts.val_size, offset=opts.val_offset)
        guided = from_split(client, "train", opts.val_size, prompt_style="guided", offset=opts.val_offset)
        for dtype in opts.dtypes:
            started = time.monotonic()
            backend = VLLMBackend(opts.model, sampling, dtype=dtype)
            row: dict[str, float] = {"engine_start_s": round(time.monotonic() - started, 1)}
            texts: dict[str, list[str]] = {}
            for name, prompts in (("alone", published), ("again", published), ("mixed", published + guided)):
                started = time.monotonic()
                generations = generate(backend, prompts)[: len(published)]
                row[f"{name}_s"] = round(time.monotonic() - started, 1)
                run = score_generations(client, backend, published, generations, started, label=name)
                texts[name] = [g.text for g in generations]
                row[f"{name}_valid"] = sum(r.verdict == "valid" for r in run.rows)
            for other in ("again", "mixed"):
                row[f"identical_alone_{other}"] = sum(
                    a == b for a, b in zip(texts["alone"], texts[other], strict=True)
                )
            backend.close()
            del backend
            figures[dtype] = row
            print(f"{dtype}: {row}", flush=True)
    result = {
        "model": opts.model,
        "validation": f"train[{opts.val_offset}:{opts.val_offset + opts.val_size}]",
        "sampling": sampling.as_dict(),
        "figures": figures,
    }
    (out / "invariance.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'invariance.json'}", flush=True)


if __name__ == "__main__":
    main()
