"""Every relative link in the project's Markdown resolves: the file exists and, for a link into a Markdown
file, the heading it names does (GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, a
repeated heading suffixed -1, -2, ...). Code blocks are skipped; links with a scheme are not followed."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"runs", "node_modules", "sched_rl.egg-info", "shared"}
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def markdown_files() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.md")
        if not any(part.startswith(".") or part in SKIP for part in p.relative_to(ROOT).parts)
    )


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text())):
        s = slug(match.group(2))
        out.add(f"{s}-{seen[s]}" if s in seen else s)
        seen[s] = seen.get(s, 0) + 1
    return frozenset(out)


def test_slugs_follow_githubs_rule() -> None:
    assert slug("One generation for four GRPO steps (validation; rule written first)") == (
        "one-generation-for-four-grpo-steps-validation-rule-written-first"
    )
    assert slug("7 December 2026: `make learn` with GRPO at temperature 0.7 (run 11)") == (
        "7-december-2026-make-learn-with-grpo-at-temperature-07-run-11"
    )


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for match in LINK.finditer(FENCE.sub("", path.read_text())):
        link = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):
            continue
        target_path, _, fragment = link.partition("#")
        target = (path.parent / target_path).resolve() if target_path else path
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif fragment and target.suffix == ".md" and fragment not in anchors(target):
            broken.append(f"{link}: no heading with that anchor")
    assert not broken, broken
