"""What a trained model's `<think>` traces get right (issue 26: why `overlap` is the main failure).

For evaluation results (`results.jsonl` of `sched-train eval` or a `learn` phase), it reads each answer's
trace as the solver writes it (`env_server/task/traces.py`) and checks it against the problem:

- event lines (`- NAME HH:MM-HH:MM: value`): the share whose times are the problem's, and whose value is
  right (minutes, doubled for a priority);
- overlap lines (`A overlaps B: ...`, `A, B and C overlap: ...`): how many there are and how many are
  true (precision: the events a line names overlap, or are chained by overlaps), and how many of the
  problem's truly overlapping pairs some line names together (recall);
- `overlap` answers: whether the trace named the pair the schedule then broke;
- `checked` event lines (`- NAME HH:MM-HH:MM: 14 + 46 = 60, priority x 2 = 120; 09:46 < 10:20 overlap`):
  the share whose written sum adds up to the duration it states, whose latest end is the true latest end
  of the events that start before it, and whose `overlap`/`clear`/`first` is true.

The solver's own traces score 100 % on every figure (tests/test_trace_anatomy.py). Nothing is asserted
here: it prints the figures and, with `--output`, writes them as JSON.

    .venv/bin/python bench/trace_anatomy.py runs/learn/eval-sft/results.jsonl \\
        runs/learn/eval-grpo/results.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from env_server.scoring.checks import overlapping_pairs  # noqa: E402
from env_server.task.problems import PRIORITY_WEIGHT  # noqa: E402
from env_server.task.traces import overlap_groups  # noqa: E402
from shared_schema import Event  # noqa: E402

EVENT_LINE = re.compile(r"^- (.+?) (\d\d:\d\d)-(\d\d:\d\d): (?:priority, 2 x \d+ = )?(\d+)$")
EVENT_TIMES = re.compile(r"^- .+ \d\d:\d\d-\d\d:\d\d: ")
CHECKED_LINE = re.compile(
    r"^- (.+?) (\d\d:\d\d)-(\d\d:\d\d): ([\d +-]+?) = (\d+)(?:, priority x 2 = (\d+))?; "
    r"(?:first|\d\d:\d\d (?:<|>=) (\d\d:\d\d) (overlap|clear))$"
)


def _sum(terms: str) -> int | None:
    """`14 + 46` -> 60, `19 - 4` -> 15; None for anything else."""
    if re.fullmatch(r"\d+ - \d+", terms):
        end, start = terms.split(" - ")
        return int(end) - int(start)
    if re.fullmatch(r"\d+( \+ \d+)+", terms):
        return sum(int(t) for t in terms.split(" + "))
    return None


def _before(events: dict[str, Event], event: Event) -> list[Event]:
    """The events listed before `event` in chronological order (the traces' order)."""
    key = lambda e: (e.start_min, e.end_min, e.name)  # noqa: E731  (env_server.task.prompts.by_start_time)
    return [e for e in events.values() if key(e) < key(event)]


def _claimed(line: str, names: list[str]) -> list[str]:
    """The events an overlap line names before its colon, longest names first so that one name inside
    another is not counted twice."""
    head = line.split(":", 1)[0]
    found = []
    for name in sorted(names, key=len, reverse=True):
        if name in head:
            found.append(name)
            head = head.replace(name, "\0")
    return found


def _connected(group: list[Event]) -> bool:
    """Whether the events form one group of the overlap graph (what a trace's overlap line claims: two
    events overlap, or three or more are chained by overlaps), by the solver's own grouping."""
    groups = overlap_groups(group)
    return len(groups) == 1 and len(groups[0]) == len(group)


def anatomy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    lines = times_ok = values_ok = 0
    values: Counter[int] = Counter()
    claims = true_claims = pairs = named = 0
    broken = broken_named = 0
    checked = sums_ok = ends_ok = checks_ok = 0
    for row in rows:
        events = {e["name"]: Event.model_validate(e) for e in row["problem"]["events"]}
        priorities = set(row["problem"]["priorities"])
        think = row["completion"].split("</think>", 1)[0]
        overlap_lines = [  # an event line (`- NAME HH:MM-HH:MM: ...`, checked ones say overlap) is no claim
            line
            for line in think.splitlines()
            if " overlap" in line and ":" in line and not EVENT_TIMES.match(line.strip())
        ]
        named_pairs = set()
        for text in think.splitlines():
            m, c = EVENT_LINE.match(text.strip()), CHECKED_LINE.match(text.strip())
            if m and m.group(1) in events:
                name, start, end, value = m.group(1), m.group(2), m.group(3), int(m.group(4))
            elif c and c.group(1) in events:
                name, start, end = c.group(1), c.group(2), c.group(3)
                value = int(c.group(6) or c.group(5))
            else:
                continue
            e = events[name]
            lines += 1
            times_ok += (start, end) == (e.start, e.end)
            values_ok += value == (PRIORITY_WEIGHT if e.name in priorities else 1) * e.duration
            values[value] += 1
            if c:
                checked += 1
                sums_ok += _sum(c.group(4)) == int(c.group(5))
                earlier = _before(events, e)
                latest = max((o.end_min for o in earlier), default=None)
                written = c.group(7)
                ends_ok += (written is None and latest is None) or (
                    written is not None
                    and latest is not None
                    and written == f"{latest // 60:02d}:{latest % 60:02d}"
                )
                truth = "first" if latest is None else ("overlap" if e.start_min < latest else "clear")
                checks_ok += (c.group(8) or "first") == truth
        for text in overlap_lines:
            named_here = _claimed(text, list(events))
            if len(named_here) < 2:
                continue
            claims += 1
            true_claims += _connected([events[n] for n in named_here])
            named_pairs.update(frozenset(p) for p in itertools.combinations(named_here, 2))
        listed = list(events.values())
        spans = [(e.start_min, e.end_min) for e in listed]
        for i, j in overlapping_pairs(spans, limit=len(spans) ** 2):
            pairs += 1
            named += frozenset((listed[i].name, listed[j].name)) in named_pairs
        if row["verdict"] == "overlap":
            for v in row["violations"]:
                if v["type"] == "overlap":
                    broken += 1
                    broken_named += frozenset(e["name"] for e in v["events"]) in named_pairs

    def share(k: int, n: int) -> float | None:
        return round(k / n, 3) if n else None

    return {
        "answers": len(rows),
        "event_lines": lines,
        "times_right": share(times_ok, lines),
        "values_right": share(values_ok, lines),
        "commonest_values": values.most_common(4),
        "overlap_lines": claims,
        "overlap_precision": share(true_claims, claims),
        "overlapping_pairs": pairs,
        "overlap_recall": share(named, pairs),
        "broken_pairs": broken,
        "broken_pairs_named": broken_named,
        "checked_lines": checked,
        "sums_right": share(sums_ok, checked),
        "latest_ends_right": share(ends_ok, checked),
        "checks_right": share(checks_ok, checked),
    }


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("results", nargs="+", type=Path, help="results.jsonl files")
    cli.add_argument("--output", type=Path, help="Write the figures as JSON here.")
    opts = cli.parse_args()
    found = {}
    for path in opts.results:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        found[str(path)] = figures = anatomy(rows)
        print(
            f"{path}: event lines {figures['event_lines']}, times right {figures['times_right']:.0%}, "
            f"values right {figures['values_right']:.0%} (commonest {figures['commonest_values']}); "
            f"overlap lines {figures['overlap_lines']}, precision {figures['overlap_precision']:.0%}; "
            f"true overlapping pairs {figures['overlapping_pairs']}, named {figures['overlap_recall']:.0%}; "
            f"pairs broken by `overlap` answers {figures['broken_pairs']}, named in the trace "
            f"{figures['broken_pairs_named']}"
            + (
                f"; checked lines {figures['checked_lines']}: sums right {figures['sums_right']:.0%}, "
                f"latest ends right {figures['latest_ends_right']:.0%}, overlap/clear right "
                f"{figures['checks_right']:.0%}"
                if figures["checked_lines"]
                else ""
            )
        )
    if opts.output:
        opts.output.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
