"""The environment card: how a model was trained against the service, saved next to its weights.

`sched_env.json` records the prompt style (and the profile and reward version) a checkpoint was trained
with, so that evaluating or continuing it uses the same prompt by default: a model fine-tuned on
`compact` prompts and evaluated on `default` ones would be judged on a task it never saw. `sched-train
sft` and `sched-train train` write it; `sched-train eval --model DIR` and `train` read it. An adapter
without a card inherits its base model's (an SFT checkpoint continued with GRPO, say).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD = "sched_env.json"


def write_card(output_dir: str | Path, *, prompt_style: str, **fields: Any) -> Path:
    """Write `sched_env.json` into `output_dir` (created if needed)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / CARD
    path.write_text(json.dumps({"prompt_style": prompt_style, **fields}, indent=2) + "\n", encoding="utf-8")
    return path


def read_card(model: str | Path | None) -> dict[str, Any]:
    """The card of a model directory, else of its adapter's base directory, else `{}`."""
    seen: set[Path] = set()
    path = Path(model) if model else None
    while path is not None and path.is_dir() and path.resolve() not in seen:
        seen.add(path.resolve())
        if (path / CARD).is_file():
            return dict(json.loads((path / CARD).read_text(encoding="utf-8")))
        adapter = path / "adapter_config.json"
        base = json.loads(adapter.read_text()).get("base_model_name_or_path") if adapter.is_file() else None
        path = Path(base) if base else None
    return {}


def trained_prompt_style(model: str | Path | None, default: str = "default") -> str:
    """The prompt style `model` was trained with (its card), or `default` when it has none."""
    return str(read_card(model).get("prompt_style", default))
