"""A digest of several hundred scored results, pinned: a speed-up must not change any reward.

The cases (both profiles, every verdict, every violation type, long reasoning that names events, padded
names, several schedule blocks, truncation) are built from the generator, so they are the same on every
machine. `EXPECTED` was computed on the scoring code before any performance work (reward_version 1.0.0;
1.1.0 added the `graded` profile and left these two unchanged, tests/env_server/scoring/
test_graded_profile.py pins its own); if this test fails, a change altered a reward, a verdict, a violation or a message: that is a bug, not a
new digest to paste in.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient

from env_server.scoring.index import index_problem
from env_server.scoring.profiles import PROFILES, REWARD_VERSION, read_events, score_completion
from env_server.task.generator import PRESETS, generate_problem
from env_server.task.problems import solve
from shared_schema import Event, Problem
from shared_schema.answer import format_schedule

EXPECTED = "251873d7da6cda5ea2783509d920996eb1089018ca9915dad67cb609c3ed1036"
MAX_CHARS = 65_536
KINDS = 16


def _problems() -> list[Problem]:
    out = [generate_problem(seed=5, split="train", index=i) for i in range(18)]
    out += [generate_problem(seed=5, split="test", index=i, difficulty=PRESETS["hard"]) for i in range(4)]
    out += [generate_problem(seed=5, split="train", index=i, difficulty=PRESETS["warmup"]) for i in range(2)]
    return out


def _tag(e: Event, name: str | None = None) -> str:
    return f"<event><name>{e.name if name is None else name}</name><start>{e.start}</start><end>{e.end}</end></event>"


def _reasoning(p: Problem, n: int) -> str:
    """About 1.5 k characters of prose that names events and their times."""
    parts = []
    for i in range(n):
        e = p.events[i % len(p.events)]
        f = p.events[(i + 1) % len(p.events)]
        parts.append(
            f"{e.name} runs {e.start} to {e.end}; does it clash with {f.name} ({f.start}-{f.end})? "
            f"{'It is a priority, so it counts double. ' if e.name in p.priorities else ''}"
        )
    return "".join(parts)[:1500]


def completion(p: Problem, kind: int) -> tuple[str, int]:
    """(completion, max_chars) of one of `KINDS` kinds of answer to `p`."""
    _, best = solve(p)
    by_start = sorted(p.events, key=lambda e: e.start_min)
    think = f"<think>{_reasoning(p, 30)}</think>\n"
    fake = Event(name="Invented", start="23:00", end="23:30")
    texts = {
        0: think + format_schedule(best),  # gold
        1: think + format_schedule(by_start),  # every event: overlaps
        2: think + format_schedule([*best, fake]),  # unknown event
        3: think + format_schedule(list(reversed(best))),  # unsorted
        4: think + format_schedule([*best, best[0]]),  # repeated
        5: think + format_schedule(best[:1]),  # too few
        6: (think + format_schedule(best)).replace("</schedule>", ""),  # malformed
        7: format_schedule(best),  # no reasoning
        8: think + "<schedule>\n" + "\n".join(_tag(e, f"  {e.name} ") for e in best) + "\n</schedule>",
        9: f"<think>draft {format_schedule(by_start)}</think>\n{format_schedule(best)}",  # two blocks
        10: f"<think>{''.join(_tag(e) for e in by_start)}</think> no schedule",  # events only in reasoning
        11: think + format_schedule(by_start[:2]) + " trailing text",
        12: think + format_schedule(best).replace("0", "٠", 1),  # Arabic-Indic digit in a time
        13: "",
        14: think + format_schedule(best) + "\n" + format_schedule(best[:1]),  # last block too short
        15: think + format_schedule(by_start),  # truncated mid-schedule below
    }
    max_chars = len(think) + 40 if kind == 15 else MAX_CHARS
    return texts[kind], max_chars


def cases() -> list[tuple[Problem, str, int]]:
    return [(p, *completion(p, k)) for p in _problems() for k in range(KINDS)]


def canonical(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True, ensure_ascii=True)


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def core_results() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for p, text, max_chars in cases():
        index = index_problem(p, p.optimal_score)
        for name in ("default", "original"):
            r = score_completion(text, index, PROFILES[name], max_chars)
            out.append((name, r.model_dump(mode="json", exclude={"events"})))  # the reward, not the reading
    return out


def test_the_cases_cover_every_verdict_and_violation() -> None:
    results = core_results()
    assert len(results) >= 700
    for name in ("default", "original"):
        verdicts = Counter(r["verdict"] for n, r in results if n == name)
        assert set(verdicts) == {
            "format_error",
            "too_few_events",
            "unknown_event",
            "unsorted",
            "overlap",
            "valid",
        }
    kinds = {v["type"] for _, r in results for v in r["violations"]}
    assert kinds == {
        "format",
        "too_few_events",
        "unknown_event",
        "repeated_event",
        "unsorted",
        "overlap",
        "truncated",
    }


def test_core_results_match_the_pinned_digest() -> None:
    assert REWARD_VERSION == "1.1.0"
    assert digest([f"{n} {canonical(r)}" for n, r in core_results()]) == EXPECTED


def test_http_results_equal_the_core(client: TestClient) -> None:
    """The same cases through `/v1/score` (inline problems, the wire path) give the same results, in order.

    Truncation cases are left out: the service's `max_completion_chars` is fixed by its settings."""
    kept = [(p, text) for p, text, max_chars in cases() if max_chars == MAX_CHARS]
    for name in ("default", "original"):
        items = [
            {"problem": p.model_dump(include={"events", "priorities"}), "completion": t} for p, t in kept
        ]
        r = client.post("/v1/score", json={"profile": name, "items": items})
        assert r.status_code == 200, r.text
        assert r.json()["reward_version"] == REWARD_VERSION
        expected = [
            score_completion(t, index_problem(p), PROFILES[name]).model_dump(mode="json", exclude={"events"})
            for p, t in kept
        ]
        assert [canonical(x) for x in r.json()["results"]] == [canonical(x) for x in expected]
        # With `return_events`: the same results, each with the events the profile read.
        read = client.post("/v1/score", json={"profile": name, "items": items, "return_events": True}).json()
        events = [read_events(t, index_problem(p), PROFILES[name]) for p, t in kept]
        assert [x.pop("events") for x in read["results"]] == events
        assert [canonical(x) for x in read["results"]] == [canonical(x) for x in expected]
