"""`hf` backend: a local transformers model, or a LoRA adapter directory, with batched generation.

Weights load in `dtype`; `auto` is bfloat16 on a GPU or a CPU that computes it natively (AVX512-BF16,
AMX: about twice as fast as float32 there), else float32 (`trainer.training.model_prep.native_bf16`).

Prompts go through the tokenizer's chat template; batches are left-padded so every row's completion
starts at the same position, and sorted by prompt length so padding stays small. An adapter directory is
recognised by its `adapter_config.json`, loaded on top of its base model with peft and merged into it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainer.evaluation.dataset import EvalProblem
from trainer.evaluation.generation import Generation, Progress, SamplingConfig, adapter_base


def _generate(
    model: Any,
    tokenizer: Any,
    s: SamplingConfig,
    device: str,
    prompts: list[str],
    **extra: Any,
) -> list[Generation]:
    """One `model.generate` call on a left-padded batch of chat-formatted `prompts`."""
    import torch

    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    kwargs: dict[str, Any] = {"max_new_tokens": s.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    if s.temperature > 0:
        kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    with torch.inference_mode():
        out = model.generate(**enc, **kwargs, **extra)
    new = out[:, enc["input_ids"].shape[1] :]
    eos = tokenizer.eos_token_id
    gens = []
    for row in new.tolist():
        ended = eos in row or tokenizer.pad_token_id in row
        text = str(tokenizer.decode(row, skip_special_tokens=True))
        gens.append(Generation(text, "stop" if ended or len(row) < s.max_new_tokens else "length"))
    return gens


def _left_padded_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _generate_all(
    backend: HFBackend | HFAdapterMix,
    problems: Sequence[EvalProblem],
    progress: Progress | None,
    adapter_names: list[str] | None = None,
) -> list[Generation]:
    """One completion per problem, in order: chat-formatted, sorted by length, `backend.batch_size` at a
    time; `adapter_names` (one per problem) names the adapter each row of a mixed batch uses."""
    import torch

    torch.manual_seed(backend.sampling.seed)
    tok = backend.tokenizer
    texts = [
        str(tok.apply_chat_template(p.messages(), tokenize=False, add_generation_prompt=True))
        for p in problems
    ]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: dict[int, Generation] = {}
    for start in range(0, len(order), backend.batch_size):
        idx = order[start : start + backend.batch_size]
        extra = {"adapter_names": [adapter_names[i] for i in idx]} if adapter_names is not None else {}
        batch = _generate(
            backend.model, tok, backend.sampling, backend.device, [texts[i] for i in idx], **extra
        )
        for i, g in zip(idx, batch, strict=True):
            results[i] = g
        if progress is not None:
            progress(len(idx))
    return [results[i] for i in range(len(texts))]


class HFBackend:
    """Greedy or sampled generation with `model.generate`, `batch_size` prompts at a time."""

    kind = "hf"

    def __init__(
        self,
        model: str,
        sampling: SamplingConfig,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str = "auto",
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        from trainer.training.model_prep import resolve_dtype

        self.sampling, self.batch_size = sampling, max(1, batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = resolve_dtype(dtype, self.device)
        base = adapter_base(model)
        tok_source = model if base is None or (Path(model) / "tokenizer_config.json").is_file() else base
        self.tokenizer = _left_padded_tokenizer(tok_source)
        net: Any = AutoModelForCausalLM.from_pretrained(base or model, dtype=getattr(torch, self.dtype))
        if base is not None:
            from peft import PeftModel

            # Merged for inference: one matmul per layer instead of three (bfloat16 greedy decoding of the
            # 135M model: 0.097 → 0.070 s per token at batch 8 here).
            net = PeftModel.from_pretrained(net, model).merge_and_unload()
        self.model = net.to(self.device).eval()

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        return _generate_all(self, problems, progress)


BASE_ROWS = "__base__"  # PEFT's name for the rows of a mixed batch that the base model answers


class HFAdapterMix:
    """Several fine-tunes of one base model answering in the same transformers batches.

    `models` maps a name to the LoRA adapter directories that make it, applied in order: `[]` is the
    base model itself, `[sft]` an adapter on it, `[sft, grpo]` an adapter trained on `sft` merged into
    the base (`learn`'s GRPO phase: `grpo`'s base is `sft/merged`, checked), loaded as one adapter that
    concatenates both (PEFT's `cat` combination: the sum of their updates, exactly). Each row of a batch
    names its model (PEFT's mixed-adapter batches), so a decoding step reads the base weights once for
    every model's rows. On this CPU that does not pay: unmerged adapters cost every row, and `make demo`'s
    40 mixed rows took 333-441 s against 320 s for three merged evaluations (docs/learning.md).

    The adapters stay unmerged (each row's update is computed beside the base matmul), so answers equal
    those of each model evaluated on its own up to the rounding of merging (tested in float32).
    """

    kind = "hf"

    def __init__(
        self,
        base: str,
        models: Mapping[str, Sequence[str]],
        sampling: SamplingConfig,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str = "auto",
    ) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from trainer.training.model_prep import MERGED, resolve_dtype

        self.sampling, self.batch_size = sampling, max(1, batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = resolve_dtype(dtype, self.device)
        self.tokenizer = _left_padded_tokenizer(base)
        net: Any = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, self.dtype))
        loaded: dict[str, str] = {}  # adapter directory -> its PEFT name
        self.adapter: dict[str, str] = {}  # model name -> the PEFT adapter (or BASE_ROWS) its rows use
        for name, stack in models.items():
            for below, above in itertools.pairwise(stack):
                expected = (Path(below) / MERGED).resolve()
                if Path(adapter_base(above) or "").resolve() != expected:
                    raise ValueError(f"{name}: {above} is not an adapter on {below} merged ({expected})")
            for folder in stack:
                if adapter_base(folder) is None:
                    raise ValueError(f"{name}: {folder} is not a LoRA adapter directory")
                if folder not in loaded:
                    loaded[folder] = f"a{len(loaded)}"
                    if isinstance(net, PeftModel):
                        net.load_adapter(folder, adapter_name=loaded[folder])
                    else:
                        net = PeftModel.from_pretrained(net, folder, adapter_name=loaded[folder])
            if not stack:
                self.adapter[name] = BASE_ROWS
            elif len(stack) == 1:
                self.adapter[name] = loaded[stack[0]]
            else:
                self.adapter[name] = f"m{len(self.adapter)}"
                parts = [loaded[f] for f in stack]
                net.add_weighted_adapter(parts, [1.0] * len(parts), self.adapter[name], "cat")
        self.model = net.to(self.device).eval()

    def view(self, name: str) -> _MixedModel:
        """One of the models as a `Backend` (its rows generated on their own)."""
        if name not in self.adapter:
            raise KeyError(f"no model {name!r} in this mix; it has {sorted(self.adapter)}")
        return _MixedModel(self, name)

    def generate_rows(
        self, items: Sequence[tuple[str, EvalProblem]], progress: Progress | None = None
    ) -> list[Generation]:
        """One completion per (model name, problem), in order; batches mix the models' rows."""
        rows = [self.adapter[name] for name, _ in items]
        return _generate_all(self, [p for _, p in items], progress, rows)


class _MixedModel:
    """One model of an `HFAdapterMix`, as a `Backend`."""

    kind = "hf"

    def __init__(self, mix: HFAdapterMix, name: str) -> None:
        self.mix, self.name, self.dtype = mix, name, mix.dtype

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        return self.mix.generate_rows([(self.name, p) for p in problems], progress)
