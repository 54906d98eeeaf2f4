"""Reports: one markdown table and two PNG charts for one or more runs.

`report.md` leads with the table (model, n, valid %, mean score ratio, exact optimal %, each verdict,
mean reward and each component), then the charts, the published reference numbers (labelled as such:
they were measured elsewhere, on other problems), notes on anything suspicious (wrong stated optima,
truncation, generation errors), one failure example per verdict, and links to timelines of a few
answers per verdict (`timeline.py`). Charts use matplotlib's Agg backend, so they render on headless
machines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trainer.evaluation.records import ERROR, FAILURES, RunSummary
from trainer.evaluation.stats import TABLE_HEAD, PairedDifference
from trainer.evaluation.timeline import TimelineLink

VALID_CHART = "valid_and_score.png"
FAILURE_CHART = "failures.png"

PUBLISHED_NOTE = (
    "> **Published reference (not measured here).** The published experiment evaluated on its own "
    "100-problem test set: valid schedules **9/100** (7B base model), **48/100** (14B base model) and "
    "**63/100** (the 7B after GRPO training), whose mean score ratio was **0.585**. Those problems and "
    "prompts differ from these, so compare trends rather than digits."
)

VERDICT_COLORS = {
    "valid": "#2e7d32",
    "format_error": "#9e9e9e",
    "too_few_events": "#8d6e63",
    "unknown_event": "#c62828",
    "unsorted": "#ef6c00",
    "overlap": "#f9a825",
    ERROR: "#000000",
}


def _name(s: RunSummary) -> str:
    return f"{s.label} (reference)" if s.reference else s.label


def table(summaries: Sequence[RunSummary]) -> str:
    """The markdown table: one row per run, models first, references after."""
    components = list(dict.fromkeys(c for s in summaries for c in s.mean_components))
    extra = [ERROR] if any(ERROR in s.verdicts for s in summaries) else []
    head = ["model", "n", "valid %", "mean score ratio", "exact optimal %", *FAILURES, *extra, "mean reward"]
    head += [f"{c} (mean)" for c in components]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for s in summaries:
        cells = [
            f"**{s.label}**" if not s.reference else _name(s),
            str(s.n),
            f"{s.valid_pct:.1f}",
            f"{s.mean_score_ratio:.3f}",
            f"{s.exact_optimal_pct:.1f}",
            *(str(s.verdicts.get(v, 0)) for v in [*FAILURES, *extra]),
            f"{s.mean_reward:.1f}",
            *(f"{s.mean_components[c]:.1f}" if c in s.mean_components else "–" for c in components),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _notes(summaries: Sequence[RunSummary]) -> list[str]:
    notes = []
    for s in summaries:
        if s.optimal_mismatches:
            first = s.optimal_mismatches[:5]
            shown = ", ".join(f"`{m.problem_id}` stated {m.stored}, solver {m.computed}" for m in first)
            notes.append(
                f"- **{s.label}**: {len(s.optimal_mismatches)} problem(s) state a wrong `optimal_score` "
                f"({shown}); score ratios use the solver's optimum."
            )
        if s.truncated:
            notes.append(
                f"- **{s.label}**: {s.truncated} completion(s) hit the token limit (`max_new_tokens`)."
            )
        if s.generation_errors:
            notes.append(
                f"- **{s.label}**: {s.generation_errors} generation request(s) failed after every retry "
                "(scored as empty answers); see `generation_error` in results.jsonl."
            )
    return notes


def _examples(summaries: Sequence[RunSummary]) -> list[str]:
    out = []
    for s in summaries:
        if s.reference or not s.examples:
            continue
        out += [f"\n### {s.label}\n", "| verdict | problem | first violation |", "|---|---|---|"]
        for verdict, ex in s.examples.items():
            message = ex.get("message", "").replace("|", "\\|").replace("\n", " ")
            message = message.replace("<", "&lt;").replace(">", "&gt;")  # tags in messages are text
            out.append(f"| {verdict} | `{ex.get('problem_id', '')}` | {message} |")
    return out


def _timelines(links: Sequence[TimelineLink]) -> list[str]:
    samples = [t for t in links if t.run != "compare"]
    shared = [t for t in links if t.run == "compare"]
    out: list[str] = []
    if shared:
        out += [
            "",
            "## The same problems, every run",
            "",
            "Each run's answer in its own lane (overlapping pairs in red, the clash shaded; invented events "
            "dashed), above the optimal schedule; the problem's events on top, ★ = priority.",
        ]
        for t in shared:
            out += ["", f"![{t.problem_id}]({t.path})"]
    if samples:
        out += [
            "",
            "## Schedules",
            "",
            "A few answers per verdict drawn as timelines: the problem's events (★ = priority, counts "
            "double), the answer's schedule (overlapping pairs in red, events not in the problem dashed) "
            "and the optimal schedule, on one time axis.",
        ]
        for run in dict.fromkeys(t.run for t in samples):
            out += ["", f"### {run}", ""]
            for verdict in dict.fromkeys(t.verdict for t in samples if t.run == run):
                shown = ", ".join(
                    f"[`{t.problem_id}`]({t.path})" for t in samples if t.run == run and t.verdict == verdict
                )
                out.append(f"- {verdict}: {shown}")
    return out


def _paired(comparisons: Sequence[tuple[str, str, PairedDifference]]) -> list[str]:
    if not comparisons:
        return []
    return [
        "",
        "## Paired differences",
        "",
        "Each run against the first, problem by problem on the problems both answered; 95% percentile "
        "bootstrap over problems (`trainer/evaluation/stats.py`). `P(≤ 0)` is the share of resamples whose "
        "mean difference is not positive.",
        "",
        *TABLE_HEAD,
        *(d.markdown_row(f"{run} vs {first}") for first, run, d in comparisons),
    ]


def markdown(
    summaries: Sequence[RunSummary],
    title: str = "Evaluation report",
    timelines: Sequence[TimelineLink] = (),
    comparisons: Sequence[tuple[str, str, PairedDifference]] = (),
) -> str:
    """The whole `report.md` text (charts referenced by their file names next to it). `comparisons`:
    (first run's label, run's label, difference) rows of the paired-differences table."""
    first = summaries[0]
    sources = sorted({s.source for s in summaries if s.source})
    versions = sorted({s.reward_version for s in summaries if s.reward_version})
    profiles = sorted({s.profile for s in summaries})
    lines = [
        f"# {title}",
        "",
        f"Problems: {', '.join(f'`{x}`' for x in sources) or 'n/a'} · profile {', '.join(profiles)} · "
        f"reward version {', '.join(versions) or 'n/a'} · {first.created_at or ''}".rstrip(" ·"),
        "",
        "Mean score ratio is averaged over all rows (an invalid schedule counts 0); "
        "exact optimal = ratio 1.0.",
        "",
        table(summaries),
        "",
        f"![Valid schedules and mean score ratio]({VALID_CHART})",
        "",
        f"![Verdict breakdown]({FAILURE_CHART})",
        "",
        PUBLISHED_NOTE,
        *_paired(comparisons),
    ]
    notes = _notes(summaries)
    if notes:
        lines += ["", "## Notes", "", *notes]
    examples = _examples(summaries)
    if examples:
        lines += ["", "## Failure examples", *examples]
    lines += _timelines(timelines)
    return "\n".join(lines) + "\n"


def charts(summaries: Sequence[RunSummary], output_dir: Path) -> list[Path]:
    """Bar charts of valid % and mean score ratio per run, and the stacked verdict breakdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [_name(s) for s in summaries]
    colors = ["#9e9e9e" if s.reference else "#1565c0" for s in summaries]
    height = 1.0 + 0.45 * len(summaries)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    for ax, values, label, xmax in (
        (left, [s.valid_pct for s in summaries], "valid schedules (%)", 100.0),
        (right, [s.mean_score_ratio for s in summaries], "mean score ratio", 1.0),
    ):
        bars = ax.barh(names, values, color=colors)
        ax.bar_label(bars, fmt="%.1f" if xmax > 1 else "%.3f", padding=3)
        ax.set_xlim(0, xmax * 1.15)
        ax.set_xlabel(label)
    left.invert_yaxis()  # shared y axis: first run on top, in both panels
    fig.tight_layout()
    valid_path = output_dir / VALID_CHART
    fig.savefig(valid_path, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, height + 0.6))
    lefts = [0.0] * len(summaries)
    for verdict in ["valid", *FAILURES, ERROR]:
        widths = [100.0 * s.verdicts.get(verdict, 0) / s.n if s.n else 0.0 for s in summaries]
        if not any(widths):
            continue
        ax.barh(names, widths, left=lefts, color=VERDICT_COLORS[verdict], label=verdict)
        lefts = [a + b for a, b in zip(lefts, widths, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of problems (%)")
    ax.set_title("Verdicts: valid, or the first check that failed")
    ax.invert_yaxis()
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    failure_path = output_dir / FAILURE_CHART
    fig.savefig(failure_path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [valid_path, failure_path]


def write_report(
    summaries: Sequence[RunSummary],
    output_dir: str | Path,
    title: str = "Evaluation report",
    timelines: Sequence[TimelineLink] = (),
    comparisons: Sequence[tuple[str, str, PairedDifference]] = (),
) -> Path:
    """Write `report.md` and the charts into `output_dir`; returns the report's path. `timelines` are
    drawings already written under `output_dir` (`trainer.evaluation.timeline`), linked from the report;
    `comparisons` fill its paired-differences table (`markdown`)."""
    if not summaries:
        raise ValueError("nothing to report: no runs given")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts(summaries, out)
    path = out / "report.md"
    path.write_text(markdown(summaries, title, timelines, comparisons), encoding="utf-8")
    return path
