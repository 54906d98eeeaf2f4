"""The GRPO sampling-temperature probe (issue 26; the method and the rule are in docs/learning.md,
"GRPO's sampling temperature"): what groups of completions would GRPO learn from at each temperature?

From one checkpoint (GRPO's starting point: `make learn`'s SFT adapter), each of `--val_size` validation
problems (`train[1900:...]`: neither SFT, `train[0:320]`, nor GRPO, `train[1000:1256]`, sees them; never
the test split) gets `--group` completions at each `--temperatures` value, in one vLLM engine (or
transformers with `--engine hf`), up to 640 new tokens as in GRPO, with the published prompt (`default`
style) unless `--prompt_style` says otherwise. Every completion is scored by a live service under the
`default` profile (GRPO's reward). Per temperature it prints and writes:

- `valid`: the share of valid completions; `reward`: their mean reward; `score_ratio`: the mean score ratio
  (invalid answers count 0); `tokens`: mean completion tokens; `clipped`: the share cut at the limit;
- `groups_with_valid`: the share of groups holding at least one valid completion;
- `signal_groups`: the share of groups holding at least one valid completion *and* a reward spread
  (GRPO's advantage is zero in a group whose rewards are all equal): the figure the rule reads;
- `group_std`: the mean within-group reward standard deviation.

Nothing is asserted; it writes `probe.json`.

    .venv/bin/python bench/sampling_probe.py --model runs/learn/sft --output_dir runs/sampling-probe
    .venv/bin/python bench/sampling_probe.py --model runs/learn/sft --output_dir /tmp/sp --engine hf \\
        --val_size 2 --group 2 --temperatures 0.7 1.0 --max_new_tokens 32                       # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def group_figures(rows: list[Any], tokens: list[int], group: int) -> dict[str, float]:
    """The probe's figures for one temperature's scored rows (each problem's `group` rows together)."""
    by_problem: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_problem[row.problem_id].append(row)
    groups = list(by_problem.values())
    if any(len(g) != group for g in groups):
        raise RuntimeError(f"expected {group} completions per problem")

    def valid(row: Any) -> bool:
        return row.verdict == "valid"

    def reward(row: Any) -> float:
        return float(row.reward or 0.0)

    return {
        "valid": sum(map(valid, rows)) / len(rows),
        "reward": statistics.fmean(map(reward, rows)),
        "score_ratio": statistics.fmean(float(r.score_ratio or 0.0) for r in rows),
        "tokens": statistics.fmean(tokens),
        "clipped": sum(r.finish_reason == "length" for r in rows) / len(rows),
        "groups_with_valid": sum(any(map(valid, g)) for g in groups) / len(groups),
        "signal_groups": sum(any(map(valid, g)) and len({reward(r) for r in g}) > 1 for g in groups)
        / len(groups),
        "group_std": statistics.fmean(statistics.pstdev(map(reward, g)) for g in groups),
    }


def choose(table: dict[float, dict[str, float]], val_size: int, tie_groups: int) -> float:
    """The rule, fixed before the probe ran: the temperature with the most signal groups; one within
    `tie_groups` groups of the most counts as tied, and a tie goes to the highest temperature."""
    best = max(f["signal_groups"] for f in table.values())
    tied = [t for t, f in table.items() if (best - f["signal_groups"]) * val_size <= tie_groups + 1e-9]
    return max(tied)


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--model", required=True, help="Checkpoint or LoRA adapter (GRPO's starting point).")
    cli.add_argument("--output_dir", type=Path, default=Path("runs/sampling-probe"))
    cli.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 0.7, 0.85, 1.0])
    cli.add_argument("--group", type=int, default=4, help="Completions per problem (GRPO's group).")
    cli.add_argument("--val_offset", type=int, default=1900)
    cli.add_argument("--val_size", type=int, default=64)
    cli.add_argument("--prompt_style", default="default")
    cli.add_argument("--max_new_tokens", type=int, default=640)
    cli.add_argument("--tie_groups", type=int, default=3, help="The rule's tie margin, in groups.")
    cli.add_argument("--engine", default="auto")
    opts = cli.parse_args()

    from transformers import AutoTokenizer

    from trainer.client.env_client import EnvClient
    from trainer.client.local_service import local_service
    from trainer.evaluation.backends import make_backend
    from trainer.evaluation.dataset import from_split
    from trainer.evaluation.generation import SamplingConfig
    from trainer.evaluation.runner import generate, score_generations, write_run
    from trainer.pipelines.learn import choose_engine
    from trainer.training.model_prep import resolve_dtype

    out = opts.output_dir
    out.mkdir(parents=True, exist_ok=True)
    engine, why = choose_engine(opts.engine, False)
    dtype = resolve_dtype("auto", "cpu")
    print(f"generation: {engine} ({why}), {dtype}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(opts.model)
    table: dict[float, dict[str, float]] = {}
    timings: dict[str, float] = {}
    with local_service(train_size=2000, test_size=16) as url, EnvClient.from_url(url) as client:
        client.wait_until_healthy(timeout=120)
        problems = from_split(
            client, "train", opts.val_size, prompt_style=opts.prompt_style, offset=opts.val_offset
        )
        repeated = [p for p in problems for _ in range(opts.group)]
        started = time.monotonic()
        backend = make_backend(
            engine,
            client,
            model=opts.model,
            sampling=SamplingConfig(opts.max_new_tokens, opts.temperatures[0], seed=0),
            dtype=dtype,
            batch_size=16,
        )
        timings["engine_start"] = round(time.monotonic() - started, 1)
        for temperature in opts.temperatures:
            sampling = SamplingConfig(opts.max_new_tokens, temperature, seed=0)
            backend.sampling = sampling  # one engine; both model backends read it per call
            started = time.monotonic()
            generations = generate(backend, repeated)
            run = score_generations(
                client,
                backend,
                repeated,
                generations,
                started,
                label=f"T={temperature}",
                model=opts.model,
                sampling=sampling.as_dict(),
            )
            timings[f"T={temperature}"] = round(time.monotonic() - started, 1)
            write_run(run, out / f"T{temperature}")
            tokens = [len(tokenizer(g.text, add_special_tokens=False).input_ids) for g in generations]
            table[temperature] = group_figures(run.rows, tokens, opts.group)
            print(
                f"T={temperature}: " + ", ".join(f"{k} {v:.3f}" for k, v in table[temperature].items()),
                flush=True,
            )
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    chosen = choose(table, opts.val_size, opts.tie_groups)
    print(f"rule: most signal groups (ties within {opts.tie_groups} groups: the highest): T={chosen}")
    probe = {
        "model": opts.model,
        "validation": f"train[{opts.val_offset}:{opts.val_offset + opts.val_size}]",
        "prompt_style": opts.prompt_style,
        "group": opts.group,
        "engine": engine,
        "dtype": dtype,
        "table": {str(t): f for t, f in table.items()},
        "chosen": chosen,
        "rule": f"most signal_groups; within {opts.tie_groups} groups counts as tied; ties: highest T",
        "timings_s": timings,
    }
    (out / "probe.json").write_text(json.dumps(probe, indent=2) + "\n")
    print(f"wrote {out / 'probe.json'}", flush=True)


if __name__ == "__main__":
    main()
