"""Schedules drawn as timelines: the problem's events, each answer's schedule and the optimum on one axis.

Reports link a few of these per verdict (`write_samples`), and `compare` draws the same problems once
for every run (`write_side_by_side`). What each answer scheduled is the service's own reading of it
(`ResultRow.events`, which evaluation asks `/v1/score` for with `return_events`), so a violation's indices
point at the boxes the service meant and nothing here parses an answer. Verdicts, overlaps and unknown
events come from the service's `violations`, never recomputed. A row without `events` (a `results.jsonl`
written before the field) is drawn as "not read": `rescore` it to draw it. PNGs use matplotlib's Agg
backend (headless).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared_schema import ProblemSpec, ReadEvent, ScheduledEvent, Violation
from trainer.client.env_client import EnvClient
from trainer.evaluation.records import ERROR, VERDICTS, ResultRow

TIMELINES = "timelines"
SAMPLES_PER_VERDICT = 2
COLORS = {
    "event": ("#dbeafe", "#60a5fa"),
    "priority": ("#fef3c7", "#f59e0b"),
    "overlap": ("#fee2e2", "#dc2626"),
    "unknown": ("#ffffff", "#6b7280"),
    "optimal": ("#dcfce7", "#16a34a"),
}


Drawn = ScheduledEvent | ReadEvent  # the problem's and the optimum's events, or an answer's as read


def _minutes(hhmm: str) -> int | None:
    try:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)
    except ValueError:
        return None


@dataclass
class Lane:
    """One answer drawn on a problem's timeline: its events and what the service said about them."""

    label: str
    events: list[ReadEvent]
    overlapping: set[int] = field(default_factory=set)
    clashes: list[tuple[int, int]] = field(default_factory=list)
    note: str = ""

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each event in minutes, as the service read them."""
        return [(e.start_min, e.end_min) for e in self.events]

    @property
    def unknown(self) -> set[int]:
        """Positions of the events that are not the problem's."""
        return {i for i, e in enumerate(self.events) if e.problem_index is None}

    @classmethod
    def of(cls, label: str, row: ResultRow) -> Lane:
        """The lane of a scored row, from the events the service read (`row.events`)."""
        note = _note(row) if row.events is not None or row.verdict is None else f"{_note(row)}; not read"
        lane = cls(label, list(row.events or []), note=note)
        for v in row.violations:
            _mark(lane, v)
        return lane


def _note(row: ResultRow) -> str:
    verdict = row.verdict or ERROR
    reward = "–" if row.reward is None else f"{row.reward:g}"
    return f"{verdict}, reward {reward}"


def _mark(lane: Lane, v: Violation) -> None:
    ok = [i for i in v.indices if 0 <= i < len(lane.events)]
    if v.type == "overlap" and len(ok) == 2:  # unknown events: `Lane.unknown`, from the reading itself
        lane.overlapping.update(ok)
        a, b = (lane.events[i] for i in ok)
        lane.clashes.append((max(a.start_min, b.start_min), min(a.end_min, b.end_min)))


def _pack(spans: Sequence[tuple[float, float]]) -> tuple[list[int], int]:
    """Greedy lane packing: each span goes to the first lane free at its start."""
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    ends: list[float] = []
    lane = [0] * len(spans)
    for i in order:
        k = next((j for j, e in enumerate(ends) if e <= spans[i][0]), len(ends))
        if k == len(ends):
            ends.append(0.0)
        ends[k], lane[i] = spans[i][1], k
    return lane, max(len(ends), 1)


def draw(
    problem: Mapping[str, Any],
    lanes: Sequence[Lane],
    optimum: Sequence[ScheduledEvent] | None,
    path: Path,
    title: str,
) -> Path:
    """One PNG: the problem's events (priorities starred), each lane's schedule (overlapping pairs in
    red with the clash shaded, unknown events dashed), then the optimal schedule, on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    events = [ScheduledEvent(**e) for e in problem.get("events", [])]
    prio = set(problem.get("priorities", []))

    def span(e: Drawn) -> tuple[int, int] | None:
        """An answer's event as the service read it; the problem's and the optimum's (valid HH:MM) here."""
        s, t = (e.start_min, e.end_min) if isinstance(e, ReadEvent) else (_minutes(e.start), _minutes(e.end))
        return (s, t) if s is not None and t is not None and s < t else None

    everything: list[Drawn] = [*events, *(x for lane in lanes for x in lane.events)]
    drawn = [sp for e in everything if (sp := span(e))]
    t0 = min((s for s, _ in drawn), default=0) // 60 * 60
    t1 = max(t0 + 120, -(-max((t for _, t in drawn), default=t0 + 120) // 60) * 60)
    width_in = 12.0

    def label_of(e: Drawn, unknown: bool = False) -> str:
        return ("★ " if e.name in prio and not unknown else "") + ("? " if unknown else "") + e.name

    def extent(e: Drawn, unknown: bool = False) -> tuple[float, float]:
        s, t = span(e) or (0, 0)
        width = (len(label_of(e, unknown)) + 1) * per_char
        return s, (t if t - s > width else t + 3 + width)  # the name inside the box, or beside it

    per_char = 0.0
    for _ in range(2):  # the axis grows (once) so that names near the end of the day fit too
        per_char = (t1 - t0) / (width_in * 0.8) * (7.5 * 0.7 / 72)  # minutes one 7.5-pt character takes
        shown: list[Drawn] = [*events, *(optimum or []), *(x for ln in lanes for x in ln.events if span(x))]
        widest = max((extent(e, True)[1] for e in shown), default=t1)
        t1 = max(t1, -(-int(widest + 4 * per_char) // 60) * 60)

    rows: list[tuple[str, float]] = []  # (tick label, y) of each group's first row
    boxes: list[tuple[float, Drawn, str, bool]] = []  # (y, event, style, unknown)
    shades: list[tuple[float, float, int, int]] = []  # (y top, height, start, end)
    y = 0.0
    ev_lane, n = _pack([extent(e) for e in events])
    boxes += [
        (y + k, e, "priority" if e.name in prio else "event", False)
        for e, k in zip(events, ev_lane, strict=True)
    ]
    rows.append(("problem", y))
    y += n + 0.6
    for lane in lanes:
        valid = [i for i, x in enumerate(lane.events) if span(x)]
        unknown_at = lane.unknown
        sub, m = _pack([extent(lane.events[i], i in unknown_at) for i in valid])
        for i, k in zip(valid, sub, strict=True):
            x = lane.events[i]
            style = "overlap" if i in lane.overlapping else "priority" if x.name in prio else "event"
            boxes.append((y + k, x, style, i in unknown_at))
        shades += [(y, m, s, t) for s, t in lane.clashes]
        rows.append((f"{lane.label}\n{lane.note}" if lane.note else lane.label, y))
        if not lane.events:
            boxes.append((y, ScheduledEvent(name="(no events)", start="", end=""), "none", False))
        y += m + 0.3
    if optimum is not None:
        y += 0.3
        sub, m = _pack([extent(e) for e in optimum])
        boxes += [(y + k, e, "optimal", False) for e, k in zip(optimum, sub, strict=True)]
        rows.append(("optimal", y))
        y += m

    fig, ax = plt.subplots(figsize=(width_in, 0.9 + 0.34 * y))
    for top, height, s, t in shades:
        ax.add_patch(Rectangle((s, top - 0.05), t - s, height + 0.1, color="#dc2626", alpha=0.25, lw=0))
    for top, e, style, unknown in boxes:
        if style == "none":
            ax.text(
                t0 + 5,
                top + 0.45,
                "no events in the answer",
                va="center",
                fontsize=7.5,
                style="italic",
                color="#6b7280",
            )
            continue
        s, t = span(e) or (0, 0)
        face, edge = COLORS["unknown" if unknown and style != "overlap" else style]
        bold = style in ("overlap",) or (style == "optimal" and e.name in prio)
        ax.add_patch(
            Rectangle(
                (s, top + 0.1), t - s, 0.8, facecolor=face, edgecolor=edge,
                linewidth=1.8 if bold else 1.0, linestyle="--" if unknown else "-",
            )
        )  # fmt: skip
        ax.text(s + 2 if t - s > (len(label_of(e, unknown)) + 1) * per_char else t + 3, top + 0.5,
                label_of(e, unknown), va="center", fontsize=7.5, clip_on=True)  # fmt: skip
    ax.set_xlim(t0, t1)
    ax.set_ylim(y, -0.2)
    step = 60 if (t1 - t0) <= 16 * 60 else 120
    ax.set_xticks(range(t0, t1 + 1, step))
    ax.set_xticklabels([f"{t // 60:02d}:00" for t in range(t0, t1 + 1, step)], fontsize=8)
    ax.set_yticks([r[1] + 0.5 for r in rows])
    ax.set_yticklabels([r[0] for r in rows], fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color="#eef0f4", zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    legend = [
        Patch(facecolor=COLORS["priority"][0], edgecolor=COLORS["priority"][1], label="★ priority (×2)"),
        Patch(facecolor=COLORS["event"][0], edgecolor=COLORS["event"][1], label="event"),
        Patch(facecolor=COLORS["overlap"][0], edgecolor=COLORS["overlap"][1], label="overlapping pair"),
        Patch(
            facecolor="#ffffff", edgecolor=COLORS["unknown"][1], linestyle="--", label="? not an input event"
        ),
        Patch(facecolor=COLORS["optimal"][0], edgecolor=COLORS["optimal"][1], label="optimal schedule"),
    ]
    ax.legend(
        handles=legend, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=5, frameon=False, fontsize=7.5
    )
    ax.set_title(title, fontsize=10, pad=22)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def sample(rows: Sequence[ResultRow], per_verdict: int = SAMPLES_PER_VERDICT) -> dict[str, list[ResultRow]]:
    """The first `per_verdict` rows of each verdict that carry their problem inline (for drawing)."""
    out: dict[str, list[ResultRow]] = {}
    for row in rows:
        key = row.verdict or ERROR
        if row.problem.get("events") and len(out.setdefault(key, [])) < per_verdict:
            out[key].append(row)
    order = [*VERDICTS, ERROR]
    return {k: out[k] for k in sorted(out, key=order.index) if out[k]}


@dataclass(frozen=True)
class TimelineLink:
    """A drawn timeline, as the report links it (`path` relative to the report)."""

    run: str
    verdict: str
    problem_id: str
    path: str


def write_samples(
    label: str,
    rows: Sequence[ResultRow],
    optima: Mapping[str, Sequence[ScheduledEvent]],
    output_dir: Path,
    per_verdict: int = SAMPLES_PER_VERDICT,
) -> list[TimelineLink]:
    """Draw a few answers of each verdict into `output_dir/timelines/`; returns the links for the report."""
    links = []
    for verdict, chosen in sample(rows, per_verdict).items():
        for row in chosen:
            name = f"{TIMELINES}/{_slug(label)}-{verdict}-{_slug(row.problem_id)}.png"
            draw(
                row.problem,
                [Lane.of(label, row)],
                optima.get(row.problem_id),
                output_dir / name,
                f"{row.problem_id} · {label}: {_note(row)}",
            )
            links.append(TimelineLink(label, verdict, row.problem_id, name))
    return links


def pick_shared(runs: Sequence[Sequence[ResultRow]], count: int = 3) -> list[str]:
    """Problems every run answered, those on which the runs' verdicts differ first."""
    by_id = [{r.problem_id: r for r in rows} for rows in runs]
    shared = [pid for pid in (r.problem_id for r in runs[0]) if all(pid in m for m in by_id)] if runs else []
    shared = [pid for pid in shared if by_id[0][pid].problem.get("events")]
    differ = [pid for pid in shared if len({m[pid].verdict for m in by_id}) > 1]
    return (differ + [p for p in shared if p not in differ])[:count]


def write_side_by_side(
    runs: Sequence[tuple[str, Sequence[ResultRow]]],
    optima: Mapping[str, Sequence[ScheduledEvent]],
    output_dir: Path,
    count: int = 3,
) -> list[TimelineLink]:
    """The same problems drawn once per run, one lane each, above the optimum (`compare`)."""
    ids = pick_shared([rows for _, rows in runs], count)
    maps = [(label, {r.problem_id: r for r in rows}) for label, rows in runs]
    links = []
    for pid in ids:
        name = f"{TIMELINES}/compare-{_slug(pid)}.png"
        lanes = [Lane.of(label, by_id[pid]) for label, by_id in maps]
        draw(maps[0][1][pid].problem, lanes, optima.get(pid), output_dir / name, f"{pid}: every run's answer")
        links.append(TimelineLink("compare", "", pid, name))
    return links


def optima_from_solver(rows: Sequence[ResultRow]) -> dict[str, list[ScheduledEvent]]:
    """Optimal schedules from a solver run's answers (a reference run every eval writes), as the service
    read them; rows without `events` are left out."""
    return {
        r.problem_id: [ScheduledEvent(name=e.name, start=e.start, end=e.end) for e in r.events]
        for r in rows
        if r.verdict == "valid" and r.score_ratio >= 1.0 - 1e-9 and r.events is not None
    }


def optima_from_service(client: EnvClient, rows: Sequence[ResultRow]) -> dict[str, list[ScheduledEvent]]:
    """Optimal schedules from the service's `/v1/solve`, for the rows given (a report's samples)."""
    out = {}
    for r in rows:
        if r.problem.get("events") and r.problem_id not in out:
            solved = client.solve(ProblemSpec.model_validate(r.problem))
            out[r.problem_id] = [
                ScheduledEvent(name=e.name, start=e.start, end=e.end) for e in solved.schedule
            ]
    return out
