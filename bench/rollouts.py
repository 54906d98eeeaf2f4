"""Rollout throughput: generated tokens per second of three engines on SmolLM2-135M, at GRPO shapes.

A GRPO step spends most of its time generating completions, so this measures the generation engines
alone on the same model and the same prompts: real task prompts (the service's generated `train`
problems in the `default` prompt style, rendered with the tokenizer's chat template, ~340 tokens), in
batches of `--batches` prompts generated together (for GRPO: problems × completions), each sequence
sampled at temperature 1 for exactly `--max_new_tokens` tokens (end-of-sequence is masked or ignored,
and the real counts are reported).

- `hf`: transformers `model.generate` (left padding, the trainer's own path), in `--hf_dtype`;
- `vllm`: vLLM's CPU build, prompts passed as token ids; its start-up is reported apart from generation;
- `llamacpp`: llama.cpp on the wheel's Q4_1 GGUF, all prompts of a batch decoded together through
  llama-cpp-python's low-level API (one sequence id per prompt: the high-level `Llama` API generates
  one sequence at a time), the prompts' common prefix (the system prompt, ~200 tokens) prefilled once
  and copied to every sequence (`--llamacpp_no_share_prefix`: each prompt in full);
- `llamacpp_seq` (not in the default list): that high-level API, prompt after prompt.

Prefix reuse differs by engine and is printed with its figures: vLLM caches prefix blocks when its
prefix caching is on, `Llama.generate` reuses the prefix it shares with the previous prompt, the batched
llama.cpp path shares the common prefix, and transformers prefills every prompt in full. On a CPU with
AMX (Sapphire Rapids and later) llama.cpp's AMX weight repacking crashes this llama-cpp-python build
on any multi-token decode, so it is turned off (`--llamacpp_extra_bufts` turns it back on).

llama.cpp runs the Q4_1 weights while the others run bf16 (or fp32) de-quantised from them: its figure
is the CPU's practical ceiling for this model, not the same arithmetic. Engines run one after another in
this process, each freed before the next; each has one untimed warm-up pass at a small shape. Figures
are printed (and with `--json PATH` written); the closing ratios use each engine's median over
`--repeats`. Nothing is asserted.

    .venv/bin/python bench/rollouts.py [--batches 8 16 32] [--max_new_tokens 400] \\
        [--engines hf vllm llamacpp] [--repeats 1] [--hf_dtype auto] [--vllm_dtype auto] [--vllm_eager] \\
        [--json out.json]

`auto` dtypes are what the project runs (`resolve_dtype`): bfloat16 where the CPU computes it natively
(AVX512-BF16 or AMX), float32 elsewhere; both engines run the same dtype unless told otherwise.

vLLM is optional (the `vllm-cpu` build, or vLLM on a GPU machine) and runs with the evaluation
backend's CPU settings (`trainer/evaluation/vllm_backend.require_vllm`): on a machine of up to 4 cores
the worker computes on all of them (vLLM's `auto` binding keeps one for the engine-core process, which
polls: 46 against 71 tokens per second at batch 8 on 2 cores). `VLLM_CPU_OMP_THREADS_BIND` set in the
environment wins; `VLLM_LOGGING_LEVEL=INFO` shows vLLM's log.

llama-cpp-python is not in `make install` (it compiles llama.cpp from source, about 5 minutes):
`pip install llama-cpp-python==0.3.36`.
An engine whose package is missing is skipped with a message.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# vLLM's CPU backend reserves this many GiB of KV cache (its default, 4, is more than these shapes need).
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
# vLLM logs every step of its start-up (and one warning per fp32 weight cast to bf16) on stdout.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

from env_server.task.generator import PRESETS, generate_split  # noqa: E402
from env_server.task.prompts import build_prompt  # noqa: E402

ENGINES = ("hf", "vllm", "llamacpp", "llamacpp_seq")
PACKAGES = {"hf": "transformers", "vllm": "vllm", "llamacpp": "llama_cpp", "llamacpp_seq": "llama_cpp"}
WARMUP_BATCH, WARMUP_TOKENS = 2, 8
LLAMACPP_THREADS, LLAMACPP_N_BATCH = 2, 512


class Engine(Protocol):
    notes: list[str]

    def generate(self, prompts: list[list[int]], max_new_tokens: int) -> list[int]:
        """Generate for every prompt together; return the number of tokens generated for each."""
        ...

    def close(self) -> None: ...


@dataclass
class Timing:
    engine: str
    batch: int
    repeat: int
    prompts: int
    tokens: int
    seconds: float
    tokens_per_s: float
    min_tokens: int
    max_tokens: int


@dataclass
class EngineReport:
    engine: str
    startup_s: float | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)


def version(*dists: str) -> str:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def task_prompts(tokenizer: Any, count: int, seed: int = 0) -> list[list[int]]:
    """Token ids of the first `count` generated train problems, `default` style, with the chat template."""
    out = []
    for problem in generate_split(seed, "train", count, PRESETS["default"]):
        messages = [m.model_dump() for m in build_prompt(problem, "default")]
        encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        out.append([int(t) for t in encoded["input_ids"]])
    return out


class HFEngine:
    """transformers `generate`: left-padded batch, full-vocabulary sampling, EOS masked until the end."""

    def __init__(self, path: Path, dtype: str, pad_id: int, eos_id: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype))
        self.pad_id, self.eos_id = pad_id, eos_id
        attention = getattr(self.model.config, "_attn_implementation", "?")
        self.notes = [f"dtype {dtype}, {torch.get_num_threads()} torch threads, attention {attention}"]

    def generate(self, prompts: list[list[int]], max_new_tokens: int) -> list[int]:
        torch = self.torch
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        torch.manual_seed(0)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, pad_token_id=self.pad_id,
            )  # fmt: skip
        counts = []
        for row in out[:, width:].tolist():
            # a finished row is padded with pad == EOS after its EOS: count up to and including the first
            counts.append(row.index(self.eos_id) + 1 if self.eos_id in row else len(row))
        return counts

    def close(self) -> None:
        del self.model


class VLLMEngine:
    """vLLM `LLM.generate` on token-id prompts, `ignore_eos` so every sequence runs to `max_tokens`."""

    def __init__(self, path: Path, eager: bool, dtype: str) -> None:
        from trainer.evaluation.vllm_backend import require_vllm

        require_vllm()  # the project's CPU settings: KV cache size, thread binding on small CPUs
        from vllm import LLM

        self.llm: Any = LLM(
            model=str(path), dtype=dtype, seed=0, max_model_len=2048, gpu_memory_utilization=0.3,
            enforce_eager=eager,
        )  # fmt: skip
        cache = getattr(getattr(self.llm.llm_engine, "vllm_config", None), "cache_config", None)
        bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto")
        self.notes = [
            f"dtype {dtype}, enforce_eager={eager}, "
            f"VLLM_CPU_KVCACHE_SPACE={os.environ.get('VLLM_CPU_KVCACHE_SPACE')} GiB",
            f"VLLM_CPU_OMP_THREADS_BIND={bind}"
            + (
                f" (auto keeps one of the {os.cpu_count()} cores for the engine-core process)"
                if bind == "auto"
                else ""
            ),
            f"prefix caching {getattr(cache, 'enable_prefix_caching', '?')}, "
            f"block size {getattr(cache, 'block_size', '?')} (the shared system prompt can be cached)",
            "engine seed=0 (per-request seeds fail on chunked prefills in vLLM 0.32's CPU runner)",
        ]

    def generate(self, prompts: list[list[int]], max_new_tokens: int) -> list[int]:
        from vllm import SamplingParams

        # the engine's seed: per-request seeds crash vLLM 0.32's CPU runner on chunked prefills
        params = SamplingParams(max_tokens=max_new_tokens, temperature=1.0, ignore_eos=True)
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        return [len(o.outputs[0].token_ids) for o in outputs]

    def close(self) -> None:
        core = getattr(self.llm.llm_engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()  # stops the engine-core worker processes, which otherwise keep spinning
        del self.llm


def gguf_path() -> Path:
    from trainer.training.model_prep import SMOLLM2_GGUF, smollm2_gguf_dir

    return smollm2_gguf_dir() / SMOLLM2_GGUF


def load_llama(gguf: Path, n_ctx: int, extra_bufts: bool) -> Any:
    """`llama_cpp.Llama` on the GGUF, with llama.cpp's extra weight buffers (AMX, repacking) only if asked.

    On an AMX CPU (Sapphire Rapids and later) llama.cpp repacks the Q4_1 weights for AMX, and this build
    then crashes (SIGSEGV in `ggml_backend_amx_mul_mat`) on any decode of more than one token: a prompt,
    or a batch (llama.cpp issue #20824). `Llama` has no argument for it, so the model parameters it asks
    for are patched for the duration of the constructor: `use_extra_bufts = False` keeps the plain CPU
    kernels.
    """
    lib: Any = importlib.import_module("llama_cpp")
    raw: Any = importlib.import_module("llama_cpp.llama_cpp")  # the module `Llama` reads its defaults from
    default = raw.llama_model_default_params

    def model_params() -> Any:
        params = default()
        params.use_extra_bufts = extra_bufts
        return params

    raw.llama_model_default_params = model_params
    try:
        return lib.Llama(
            model_path=str(gguf), n_ctx=n_ctx, n_threads=LLAMACPP_THREADS, n_batch=LLAMACPP_N_BATCH, seed=0,
            verbose=False,
        )  # fmt: skip
    finally:
        raw.llama_model_default_params = default


def shared_prefix(prompts: list[list[int]]) -> int:
    """Length of the token prefix all prompts share, leaving each at least one token of its own."""
    n = 0
    for column in zip(*prompts, strict=False):
        if any(t != column[0] for t in column):
            break
        n += 1
    return min(n, min(len(p) for p in prompts) - 1)


class LlamaCppBatched:
    """All prompts of a batch as sequences of one llama.cpp context, decoded together.

    llama-cpp-python's `Llama` generates one sequence at a time (only embeddings take several sequences),
    so this uses its bindings of the C API: a context with `n_seq_max` = the largest batch, prompts
    prefilled in `n_batch`-token chunks, then one `llama_decode` per step with one token per sequence,
    each sampled by a `dist` sampler (full vocabulary, temperature 1). EOS is not special: every sequence
    decodes exactly `max_new_tokens` tokens, counted as they are sampled.
    """

    def __init__(
        self, gguf: Path, max_batch: int, ctx_per_seq: int, extra_bufts: bool, share_prefix: bool
    ) -> None:
        lib: Any = importlib.import_module("llama_cpp")
        self.lib = lib
        self.llm = load_llama(gguf, ctx_per_seq, extra_bufts)
        params = lib.llama_context_default_params()
        params.n_ctx = max_batch * ctx_per_seq
        params.n_batch = params.n_ubatch = LLAMACPP_N_BATCH
        params.n_seq_max = max_batch
        params.kv_unified = False  # each sequence attends over its own cells only
        params.n_threads = params.n_threads_batch = LLAMACPP_THREADS
        self.ctx = lib.llama_init_from_model(self.llm.model, params)
        if not self.ctx:
            raise RuntimeError("llama_init_from_model failed")
        self.max_batch, self.share_prefix, self.last_shared = max_batch, share_prefix, 0
        self.last_generated: list[list[int]] = []
        self.batch = lib.llama_batch_init(max(LLAMACPP_N_BATCH, max_batch), 0, 1)
        self.notes = [
            f"Q4_1 GGUF, low-level batched decode: n_seq_max={max_batch}, n_ctx={params.n_ctx} "
            f"({ctx_per_seq} per sequence), n_batch={LLAMACPP_N_BATCH}, {LLAMACPP_THREADS} threads, "
            f"extra (AMX/repack) weight buffers {'on' if extra_bufts else 'off'}",
            "the prompts' common prefix (system prompt) prefilled once and copied to every sequence"
            if share_prefix
            else "every prompt prefilled in full (--llamacpp_no_share_prefix)",
        ]

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One `llama_decode` of (token, position, sequence, wants logits) entries."""
        b = self.batch
        b.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, int(logits)
            b.seq_id[i][0] = seq
        rc = self.lib.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def generate(self, prompts: list[list[int]], max_new_tokens: int) -> list[int]:
        lib = self.lib
        if len(prompts) > self.max_batch:
            raise ValueError(f"{len(prompts)} prompts > n_seq_max {self.max_batch}")
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        sampler = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_dist(0))
        try:
            generated: list[list[int]] = [[] for _ in prompts]
            shared = shared_prefix(prompts) if self.share_prefix and len(prompts) > 1 else 0
            if shared:
                # the prefix every prompt starts with (the system prompt) is decoded once, on sequence 0,
                # and its KV cells copied to the other sequences, as llama.cpp's `batched` example does
                prefix = list(enumerate(prompts[0][:shared]))
                for start in range(0, shared, LLAMACPP_N_BATCH):
                    self._decode([(t, pos, 0, False) for pos, t in prefix[start : start + LLAMACPP_N_BATCH]])
                memory = lib.llama_get_memory(self.ctx)
                for seq in range(1, len(prompts)):
                    lib.llama_memory_seq_cp(memory, 0, seq, -1, -1)
            self.last_shared = shared
            # Prefill: prompts packed into n_batch-token chunks; a sequence's first token is sampled right
            # after the chunk holding its last prompt token (logits only live until the next decode).
            flat = [
                (t, pos, s, pos == len(p) - 1)
                for s, p in enumerate(prompts)
                for pos, t in enumerate(p)
                if pos >= shared
            ]
            for start in range(0, len(flat), LLAMACPP_N_BATCH):
                chunk = flat[start : start + LLAMACPP_N_BATCH]
                self._decode(chunk)
                for i, (_, _, seq, last) in enumerate(chunk):
                    if last:
                        generated[seq].append(lib.llama_sampler_sample(sampler, self.ctx, i))
            for _ in range(max_new_tokens - 1):
                self._decode(
                    [
                        (g[-1], len(p) + len(g) - 1, s, True)
                        for s, (p, g) in enumerate(zip(prompts, generated, strict=True))
                    ]
                )
                for s, g in enumerate(generated):
                    g.append(lib.llama_sampler_sample(sampler, self.ctx, s))
            self.last_generated = generated
            return [len(g) for g in generated]
        finally:
            lib.llama_sampler_free(sampler)

    def close(self) -> None:
        self.lib.llama_batch_free(self.batch)
        self.lib.llama_free(self.ctx)
        self.llm.close()
        del self.llm


class LlamaCppSequential:
    """llama-cpp-python's high-level `Llama.generate`: the prompts one after another (its only way)."""

    def __init__(self, gguf: Path, ctx_per_seq: int, extra_bufts: bool) -> None:
        self.llm = load_llama(gguf, ctx_per_seq, extra_bufts)
        self.notes = [
            "Q4_1 GGUF, high-level Llama.generate, one prompt after another; it reuses the KV cache of the "
            "prefix shared with the previous prompt (the system prompt); extra (AMX/repack) weight buffers "
            f"{'on' if extra_bufts else 'off'}",
        ]

    def generate(self, prompts: list[list[int]], max_new_tokens: int) -> list[int]:
        counts = []
        for p in prompts:
            # `generate` never stops by itself (EOS included): take exactly max_new_tokens tokens
            tokens = self.llm.generate(p, top_k=0, top_p=1.0, min_p=0.0, temp=1.0, repeat_penalty=1.0)
            counts.append(sum(1 for _ in itertools.islice(tokens, max_new_tokens)))
        return counts

    def close(self) -> None:
        self.llm.close()
        del self.llm


def start_engine(name: str, opts: argparse.Namespace, model: Path, tok: Any, ctx_per_seq: int) -> Engine:
    if name == "hf":
        return HFEngine(model, opts.hf_dtype, tok.pad_token_id, tok.eos_token_id)
    if name == "vllm":
        return VLLMEngine(model, opts.vllm_eager, opts.vllm_dtype)
    if name == "llamacpp":
        return LlamaCppBatched(
            gguf_path(), max(opts.batches), ctx_per_seq, opts.llamacpp_extra_bufts,
            not opts.llamacpp_no_share_prefix,
        )  # fmt: skip
    return LlamaCppSequential(gguf_path(), ctx_per_seq, opts.llamacpp_extra_bufts)


def run_engine(
    name: str, opts: argparse.Namespace, model: Path, tok: Any, prompts: list[list[int]]
) -> EngineReport:
    report = EngineReport(name)
    if importlib.util.find_spec(PACKAGES[name]) is None:  # imported by the engine: part of its start-up
        report.skipped = f"{PACKAGES[name]} is not installed"
        if name.startswith("llamacpp"):
            report.skipped += "; `pip install llama-cpp-python==0.3.36` (compiles for ~5 minutes)"
        print(f"[{name}] skipped: {report.skipped}", flush=True)
        return report
    ctx_per_seq = -(-(max(len(p) for p in prompts) + opts.max_new_tokens + 1) // 256) * 256
    start = time.perf_counter()
    engine = start_engine(name, opts, model, tok, ctx_per_seq)
    report.startup_s = time.perf_counter() - start
    report.notes = list(engine.notes)
    print(f"[{name}] started in {report.startup_s:.1f} s; " + "; ".join(report.notes), flush=True)
    try:
        start = time.perf_counter()
        engine.generate(prompts[:WARMUP_BATCH], WARMUP_TOKENS)
        print(
            f"[{name}] warm-up ({WARMUP_BATCH} x {WARMUP_TOKENS}) {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        for batch in opts.batches:
            for repeat in range(opts.repeats):
                start = time.perf_counter()
                counts = engine.generate(prompts[:batch], opts.max_new_tokens)
                seconds = time.perf_counter() - start
                t = Timing(
                    name, batch, repeat, len(counts), sum(counts), seconds, sum(counts) / seconds,
                    min(counts), max(counts),
                )  # fmt: skip
                report.timings.append(t)
                print(row(t), flush=True)
    finally:
        engine.close()
        del engine
        gc.collect()
    return report


HEADER = (
    f"{'engine':<13} {'batch':>5} {'rep':>3} {'prompts':>7} {'gen tokens':>10} {'min/max':>9} "
    f"{'seconds':>8} {'tok/s':>8}"
)


def row(t: Timing) -> str:
    return (
        f"{t.engine:<13} {t.batch:>5} {t.repeat:>3} {t.prompts:>7} {t.tokens:>10} "
        f"{f'{t.min_tokens}/{t.max_tokens}':>9} {t.seconds:>8.2f} {t.tokens_per_s:>8.1f}"
    )


def median_rate(report: EngineReport | None, batch: int) -> float | None:
    rates = [t.tokens_per_s for t in report.timings if t.batch == batch] if report else []
    return statistics.median(rates) if rates else None


def ratios(reports: dict[str, EngineReport], batches: list[int]) -> list[dict[str, Any]]:
    out = []
    for batch in batches:
        hf, vllm, llama = (median_rate(reports.get(e), batch) for e in ("hf", "vllm", "llamacpp"))
        out.append({
            "batch": batch,
            "vllm_over_hf": vllm / hf if vllm and hf else None,
            "llamacpp_over_vllm": llama / vllm if llama and vllm else None,
        })  # fmt: skip
    return out


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32], help="prompts generated together")
    cli.add_argument("--max_new_tokens", type=int, default=400)
    cli.add_argument("--engines", nargs="+", choices=ENGINES, default=["hf", "vllm", "llamacpp"])
    cli.add_argument("--repeats", type=int, default=1, help="timed runs per (engine, batch), each reported")
    cli.add_argument("--hf_dtype", choices=["auto", "bfloat16", "float32"], default="auto")
    cli.add_argument("--vllm_eager", action="store_true", help="enforce_eager: no compilation (faster start)")
    cli.add_argument("--vllm_dtype", choices=["auto", "bfloat16", "float32"], default="auto")
    cli.add_argument(
        "--llamacpp_extra_bufts",
        action="store_true",
        help="let llama.cpp repack weights for AMX/AVX kernels (off: that path crashes on AMX CPUs)",
    )
    cli.add_argument(
        "--llamacpp_no_share_prefix",
        action="store_true",
        help="batched llama.cpp: prefill every prompt in full instead of the common prefix once",
    )
    cli.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    opts = cli.parse_args()
    from trainer.training.model_prep import resolve_dtype

    # auto: what the project runs, bfloat16 where the CPU computes it natively, float32 elsewhere
    opts.hf_dtype, opts.vllm_dtype = resolve_dtype(opts.hf_dtype), resolve_dtype(opts.vllm_dtype)

    import torch
    from transformers import AutoTokenizer

    from trainer.training.model_prep import prepare_smollm2

    print(f"cpu_count {os.cpu_count()}, torch threads {torch.get_num_threads()}")
    versions = {
        "torch": version("torch"), "transformers": version("transformers"),
        "vllm": version("vllm", "vllm-cpu"), "llama_cpp": version("llama_cpp_python", "llama-cpp-python"),
    }  # fmt: skip
    print(", ".join(f"{k} {v}" for k, v in versions.items()))
    model = prepare_smollm2()
    tok = AutoTokenizer.from_pretrained(str(model))
    prompts = task_prompts(tok, max(opts.batches))
    mean_len = statistics.mean(len(p) for p in prompts)
    print(
        f"model {model} (fp32 checkpoint from the Q4_1 GGUF); {len(prompts)} task prompts, 'default' style, "
        f"mean {mean_len:.0f} tokens (min {min(map(len, prompts))}, max {max(map(len, prompts))}); "
        f"common prefix {shared_prefix(prompts)} tokens; {opts.max_new_tokens} new tokens per sequence, "
        "sampled at temperature 1"
    )
    print(
        "note: llama.cpp runs the Q4_1 weights while the others run bf16/fp32: its figure is the CPU's "
        "practical ceiling, not the same arithmetic"
    )

    reports: dict[str, EngineReport] = {}
    for name in opts.engines:
        reports[name] = run_engine(name, opts, model, tok, prompts)

    print()
    print(HEADER)
    for report in reports.values():
        for t in report.timings:
            print(row(t))
        if report.skipped:
            print(f"{report.engine:<13} skipped: {report.skipped}")
    print()
    startups = [f"{r.engine} {r.startup_s:.1f} s" for r in reports.values() if r.startup_s is not None]
    print("start-up (not in the figures above): " + (", ".join(startups) or "none"))
    table = ratios(reports, opts.batches)
    for r in table:
        fmt = [f"{r[k]:.2f}x" if r[k] is not None else "n/a" for k in ("vllm_over_hf", "llamacpp_over_vllm")]
        print(f"batch {r['batch']:>3}: vllm/hf {fmt[0]:>7}   llamacpp/vllm {fmt[1]:>7}")
    if opts.json:
        opts.json.write_text(json.dumps({
            "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), **versions},
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
            "prompts": {"count": len(prompts), "mean_tokens": mean_len, "style": "default"},
            "engines": [asdict(r) for r in reports.values()],
            "ratios": table,
        }, indent=2))  # fmt: skip
        print(f"wrote {opts.json}")


if __name__ == "__main__":
    main()
