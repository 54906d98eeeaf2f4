"""What a trained model's `<think>` traces get right (issue 26: why `overlap` is the main failure).

For evaluation results (`results.jsonl` of `sched-train eval` or a `learn` phase), it reads each answer's
trace as the solver writes it (`env_server/task/traces.py`) and checks it against the problem:

- event lines (`- NAME HH:MM-HH:MM: value`): the share whose times are the problem's, and whose value is
  right (minutes, doubled for a priority);
- overlap lines (`A overlaps B: ...`, `A, B and C overlap: ...`): how many there are and how many are
  true (precision: the events a line names overlap, or are chained by overlaps), and how many of the
  problem's truly overlapping pairs some line names together (recall);
- `overlap` answers: whether the trace named the pair the schedule then broke.

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
    for row in rows:
        events = {e["name"]: Event.model_validate(e) for e in row["problem"]["events"]}
        priorities = set(row["problem"]["priorities"])
        think = row["completion"].split("</think>", 1)[0]
        overlap_lines = [line for line in think.splitlines() if " overlap" in line and ":" in line]
        named_pairs = set()
        for text in think.splitlines():
            m = EVENT_LINE.match(text.strip())
            if m and m.group(1) in events:
                e = events[m.group(1)]
                lines += 1
                times_ok += (m.group(2), m.group(3)) == (e.start, e.end)
                values_ok += int(m.group(4)) == (PRIORITY_WEIGHT if e.name in priorities else 1) * e.duration
                values[int(m.group(4))] += 1
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
        )
    if opts.output:
        opts.output.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
