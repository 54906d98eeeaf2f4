"""`hf` backend: a local transformers model, or a LoRA adapter directory, with batched generation.

Weights load in `dtype`; `auto` is bfloat16 on a GPU or a CPU that computes it natively (AVX512-BF16,
AMX: about twice as fast as float32 there), else float32 (`trainer.training.model_prep.native_bf16`).

Prompts go through the tokenizer's chat template; batches are left-padded so every row's completion
starts at the same position, and sorted by prompt length so padding stays small. An adapter directory is
recognised by its `adapter_config.json`, loaded on top of its base model with peft and merged into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.evaluation.dataset import EvalProblem
from trainer.evaluation.generation import Generation, Progress, SamplingConfig, adapter_base


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
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from trainer.training.model_prep import resolve_dtype

        self.sampling, self.batch_size = sampling, max(1, batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = resolve_dtype(dtype, self.device)
        base = adapter_base(model)
        tok_source = model if base is None or (Path(model) / "tokenizer_config.json").is_file() else base
        self.tokenizer = AutoTokenizer.from_pretrained(tok_source)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        net: Any = AutoModelForCausalLM.from_pretrained(base or model, dtype=getattr(torch, self.dtype))
        if base is not None:
            from peft import PeftModel

            # Merged for inference: one matmul per layer instead of three (bfloat16 greedy decoding of the
            # 135M model: 0.097 → 0.070 s per token at batch 8 here).
            net = PeftModel.from_pretrained(net, model).merge_and_unload()
        self.model = net.to(self.device).eval()

    def _generate_batch(self, prompts: list[str]) -> list[Generation]:
        import torch

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.device)
        s = self.sampling
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        eos = self.tokenizer.eos_token_id
        gens = []
        for row in new.tolist():
            ended = eos in row or self.tokenizer.pad_token_id in row
            text = str(self.tokenizer.decode(row, skip_special_tokens=True))
            gens.append(Generation(text, "stop" if ended or len(row) < s.max_new_tokens else "length"))
        return gens

    def generate(self, problems: Sequence[EvalProblem], progress: Progress | None = None) -> list[Generation]:
        import torch

        torch.manual_seed(self.sampling.seed)
        texts = [
            str(self.tokenizer.apply_chat_template(p.messages(), tokenize=False, add_generation_prompt=True))
            for p in problems
        ]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: dict[int, Generation] = {}
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            for i, g in zip(idx, self._generate_batch([texts[i] for i in idx]), strict=True):
                results[i] = g
            if progress is not None:
                progress(len(idx))
        return [results[i] for i in range(len(texts))]
