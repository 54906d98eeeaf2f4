"""Progress a person can read: one line per logged training step instead of raw metric dictionaries.

`StepPrinter` is a transformers `TrainerCallback`. For GRPO it prints the mean reward with its spread,
each component in points (TRL logs each reward function's mean; times the profile's weight that is the
component's points), and the share of groups whose completions all earned the same reward (those give
GRPO no gradient). For SFT it prints the loss and the token accuracy on the completions. Pass it in
`callbacks` and take TRL's default printer off (`QUIET`) so the console shows only these lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

log = logging.getLogger("trainer.training.progress")

QUIET = (PrinterCallback, ProgressCallback)  # the callbacks that print metric dictionaries


def grpo_line(logs: dict[str, Any], names: Sequence[str], weights: Sequence[float]) -> str:
    """`reward 41.2 ± 18.3 | format 8.8  order 15.0  score 17.4 | zero-spread groups 25%`."""
    parts = [f"reward {logs.get('reward', 0.0):5.1f} ± {logs.get('reward_std', 0.0):4.1f}"]
    comps = [
        f"{name} {logs[f'rewards/{name}/mean'] * w:4.1f}"
        for name, w in zip(names, weights, strict=True)
        if f"rewards/{name}/mean" in logs
    ]
    if comps:
        parts.append("  ".join(comps))
    if "frac_reward_zero_std" in logs:
        parts.append(f"zero-spread groups {100 * logs['frac_reward_zero_std']:3.0f}%")
    if "completions/mean_length" in logs:
        parts.append(f"{logs['completions/mean_length']:.0f} tokens")
    return " | ".join(parts)


def sft_line(logs: dict[str, Any]) -> str:
    """`loss 0.412 | token accuracy 88.1%`."""
    parts = [f"loss {logs['loss']:.3f}"]
    if "mean_token_accuracy" in logs:
        parts.append(f"token accuracy {100 * logs['mean_token_accuracy']:.1f}%")
    return " | ".join(parts)


class StepPrinter(TrainerCallback):
    """Print `PHASE step i/N | … | s/step` at every logging step (main process only)."""

    def __init__(
        self,
        phase: str,
        reward_names: Sequence[str] = (),
        reward_weights: Sequence[float] = (),
        console: Console | None = None,
    ) -> None:
        self.phase, self.names, self.weights = phase, list(reward_names), list(reward_weights)
        self.console = console or Console()
        self.history: list[dict[str, Any]] = []
        self._started = time.monotonic()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.monotonic()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "reward" in logs:
            body = grpo_line(logs, self.names, self.weights)
        elif "loss" in logs:
            body = sft_line(logs)
        else:
            return  # the end-of-training summary
        self.history.append({"step": state.global_step, **logs})
        per_step = (time.monotonic() - self._started) / max(1, state.global_step)
        self.console.print(
            f"{self.phase} step {state.global_step:>3}/{state.max_steps} | {body} | {per_step:.0f} s/step",
            soft_wrap=True,  # one line per step, also in a log file or a narrow terminal
        )


def sampled_token_curve(history: Sequence[dict[str, Any]], batch: int) -> list[tuple[int, float]]:
    """(step, completion tokens sampled so far) per logged step of a GRPO log history: each log adds
    `completions/mean_length` × the generation batch × the steps since the previous log (TRL logs the
    mean over them). Tool results are not in TRL's mean length, so they are not counted."""
    curve: list[tuple[int, float]] = []
    total, last = 0.0, 0
    for entry in history:
        step = int(entry.get("step", 0))
        if "completions/mean_length" in entry and step > last:
            total += float(entry["completions/mean_length"]) * batch * (step - last)
            last = step
            curve.append((step, total))
    return curve


class SampledTokenBudget(TrainerCallback):
    """Stops training once `budget` completion tokens have been sampled (`--max_sampled_tokens`),
    counted as `sampled_token_curve` counts them. On resume the count starts from the checkpoint's log
    history, so a resumed run stops where an uninterrupted one would. `sampled` is the running total."""

    def __init__(self, budget: int, generation_batch_size: int) -> None:
        self.budget, self.batch = budget, generation_batch_size
        self.history: list[dict[str, Any]] = []

    @property
    def sampled(self) -> float:
        curve = sampled_token_curve(self.history, self.batch)
        return curve[-1][1] if curve else 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.history = list(state.log_history)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.history.append({**(logs or {}), "step": state.global_step})
        sampled = self.sampled
        if sampled >= self.budget:
            control.should_training_stop = True
            log.info("sampled %d completion tokens (budget %d): stopping", sampled, self.budget)
