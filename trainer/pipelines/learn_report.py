"""The learning report: `report.md` and its charts from `learning.json` (written by `sched-train learn`).

Three pictures: the GRPO reward and each component per step (mean and spread across the step's
completions), the valid share and mean score ratio per phase next to the reference policies, and the
verdict mix per phase. The table and the verdict charts are the evaluation report's own
(`trainer.evaluation.report`), so a learning run reads like any evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.evaluation.records import RunSummary
from trainer.evaluation.report import FAILURE_CHART, PUBLISHED_NOTE, VALID_CHART, charts, table
from trainer.evaluation.stats import TABLE_HEAD, PairedDifference

STEPS_CHART = "grpo_rewards.png"


def step_chart(steps: list[dict[str, Any]], weights: dict[str, float], path: Path) -> Path:
    """Reward per GRPO step (mean ± std over the step's completions), then one panel per component."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [("reward", "total reward", 1.0)] + [
        (f"rewards/{name}", f"{name} (max {w:g})", w) for name, w in weights.items()
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    x = [int(h["step"]) for h in steps]
    for ax, (key, title, scale) in zip(axes[0], panels, strict=True):
        mean_key, std_key = (key, "reward_std") if key == "reward" else (f"{key}/mean", f"{key}/std")
        mean = [float(h.get(mean_key, 0.0)) * scale for h in steps]
        std = [float(h.get(std_key, 0.0)) * scale for h in steps]
        low = [m - s for m, s in zip(mean, std, strict=True)]
        high = [m + s for m, s in zip(mean, std, strict=True)]
        ax.plot(x, mean, marker="o", color="#1565c0")
        ax.fill_between(x, low, high, color="#1565c0", alpha=0.15, linewidth=0)
        ax.set_title(title)
        ax.set_xlabel("GRPO step")
        ax.set_ylim(bottom=min(0.0, *low))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("points (mean ± std)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _summaries(learning: dict[str, Any]) -> list[RunSummary]:
    phases = [RunSummary.model_validate(learning["phases"][name]) for name in ("base", "sft", "grpo")]
    refs = [RunSummary.model_validate(r) for r in learning["references"].values()]
    return phases + refs


def _secondary(learning: dict[str, Any]) -> list[str]:
    """The table of each evaluation in the training style, when it is not the headline's."""
    headline = learning["eval"].get("prompt_style", learning["prompt_style"])
    out = []
    for style, phases in learning.get("phases_by_style", {}).items():
        if style == headline:
            continue
        summaries = [
            RunSummary.model_validate(phases[name]) for name in ("base", "sft", "grpo") if name in phases
        ]
        out += [
            f"### The same problems in the training style (`{style}` prompts: a scaffold)",
            "",
            table(summaries),
            "",
        ]
    return out


def _comparison_lines(learning: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (
        ("sft_vs_base", "SFT vs the base model"),
        ("grpo_vs_sft", "GRPO vs the SFT checkpoint"),
        ("grpo_vs_base", "GRPO vs the base model"),
    ):
        for d in learning["comparisons"][key].values():
            lines.append(PairedDifference(**d).markdown_row(label))
    return lines


def markdown(learning: dict[str, Any]) -> str:
    ev, steps = learning["eval"], learning["grpo_steps"]
    zero = [float(h["frac_reward_zero_std"]) for h in steps if "frac_reward_zero_std" in h]
    timings = learning["timings_s"]
    headline = ev.get("prompt_style", learning["prompt_style"])
    trained = "a curriculum session" if learning.get("curriculum") else f"{learning['prompt_style']} prompts"
    trained += f" (SFT on `{learning.get('trace_style', 'sorted')}` traces)"
    out = [
        "# Learning report",
        "",
        f"Base model `{learning['base_model']}`, final model `{learning['final_model']}`, trained on "
        f"{trained}, reward version {learning['reward_version']}. Every phase is "
        f"evaluated on the same {ev['n']} held-out `{ev['split']}` problems (never trained on), "
        f"{ev['decoding']} decoding, at most {ev['max_new_tokens']} new tokens, with the **{headline}** "
        "prompt (the published one when `default`).",
        "",
        "## Before and after",
        "",
        table(_summaries(learning)),
        "",
        *_secondary(learning),
        f"![valid and score]({VALID_CHART})",
        "",
        f"![verdicts]({FAILURE_CHART})",
        "",
        "## Paired differences",
        "",
        "Per problem, the later phase minus the earlier one; 95% percentile bootstrap over problems "
        "(10,000 resamples). `P(≤ 0)` is the share of resamples whose mean difference is not positive.",
        "",
        *TABLE_HEAD,
        *_comparison_lines(learning),
        "",
        "## GRPO, step by step",
        "",
        f"![GRPO rewards per step]({STEPS_CHART})",
        "",
    ]
    if zero:
        out += [
            f"Groups whose completions all earned the same reward (no GRPO gradient): mean "
            f"{100 * sum(zero) / len(zero):.0f}% of groups per step (min {100 * min(zero):.0f}%, max "
            f"{100 * max(zero):.0f}%).",
            "",
        ]
    out += [
        "## Time",
        "",
        "| phase | seconds |",
        "|---|---:|",
        *(f"| {k} | {v:.0f} |" for k, v in timings.items()),
        "",
        PUBLISHED_NOTE,
        "",
    ]
    return "\n".join(out)


def write_learning_report(learning: dict[str, Any], output_dir: Path) -> Path:
    """Write the charts and `report.md` into `output_dir`; returns the report's path."""
    step_chart(learning["grpo_steps"], learning["component_weights"], output_dir / STEPS_CHART)
    charts(_summaries(learning), output_dir)
    path = output_dir / "report.md"
    path.write_text(markdown(learning), encoding="utf-8")
    return path
