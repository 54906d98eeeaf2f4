"""Parsing completions, in linear time on any input.

Two readings of a completion exist, one per reward profile (docs/contract.md section 4):

* strict (`default`): only the last complete `<schedule>…</schedule>` block counts; names are trimmed;
  times are ASCII `HH:MM`.
* published (`original`): events are found anywhere, by the published event pattern, names untrimmed,
  `\\d` as Python reads it (any Unicode digit), exactly as the published training code did.

The published format checks were written as backtracking regexes (`.*` between tokens) that take
quadratic-or-worse time on adversarial text. They only ask whether certain tokens occur in order, so they
are evaluated here as a greedy left-to-right token search, which accepts exactly the same strings in
linear time (property-tested against the original regexes in `tests/test_parsing.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Strict event: ASCII digits, white space allowed between tags.
STRICT_EVENT = re.compile(
    r"<event>\s*<name>([^<]+)</name>\s*<start>([0-9]{2}:[0-9]{2})</start>\s*"
    r"<end>([0-9]{2}:[0-9]{2})</end>\s*</event>"
)
# The published event pattern, verbatim.
PUBLISHED_EVENT = re.compile(
    r"<event>\s*<name>([^<]+)</name>\s*<start>(\d{2}:\d{2})</start>\s*<end>(\d{2}:\d{2})</end>\s*</event>"
)
# The published regexes, kept for reference and for the equivalence tests. Never run them on model output.
PUBLISHED_FORMAT_REGEX = (
    r"<think>.+</think>.*<schedule>.*(<event>.*<name>.+</name>.*<start>\d{2}:\d{2}</start>.*"
    r"<end>\d{2}:\d{2}</end>.*</event>)+.*</schedule>"
)
PUBLISHED_LENIENT_REGEX = (
    r".*<schedule>.*<event>.*<name>.*</name>.*<start>\d{2}:\d{2}</start>.*<end>\d{2}:\d{2}</end>.*"
    r"</event>.*</schedule>.*"
)

_START_TAG = re.compile(r"<start>\d{2}:\d{2}</start>")
_END_TAG = re.compile(r"<end>\d{2}:\d{2}</end>")

OPEN, CLOSE = "<schedule>", "</schedule>"


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """An event as written; `name` is the name as the profile compares it."""

    name: str
    start: str
    end: str
    start_min: int
    end_min: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a profile reads from a completion."""

    events: tuple[ParsedEvent, ...]
    format_ok: bool  # the profile's `format` component condition
    has_schedule: bool  # verdict check 1 passes


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _events(matches: list[tuple[str, str, str]], trim: bool) -> tuple[ParsedEvent, ...]:
    return tuple(
        ParsedEvent(name.strip() if trim else name, start, end, _minutes(start), _minutes(end))
        for name, start, end in matches
    )


def last_schedule_block(text: str) -> str | None:
    """Body of the last complete `<schedule>…</schedule>` block, or None."""
    close = text.rfind(CLOSE)
    if close < 0:
        return None
    open_ = text.rfind(OPEN, 0, close)
    if open_ < 0:
        return None
    return text[open_ + len(OPEN) : close]


def _only_events(body: str) -> bool:
    """True if `body` is one or more strict events separated by white space only."""
    pos = count = 0
    for m in STRICT_EVENT.finditer(body):
        if body[pos : m.start()].strip():
            return False
        pos = m.end()
        count += 1
    return count > 0 and not body[pos:].strip()


def strict_format_ok(text: str) -> bool:
    """`default` format: one non-empty `<think>` block, then one `<schedule>` block of events only.

    A reasoning block of white space only counts as empty. The schedule block must hold at least one
    event (docs/contract.md section 3 defines a schedule block as holding at least one well-formed event).
    """
    t = text.strip()
    if not t.startswith("<think>"):
        return False
    close = t.find("</think>")
    if close < 0:
        return False
    reasoning = t[len("<think>") : close]
    if not reasoning.strip() or "<think>" in reasoning:
        return False
    rest = t[close + len("</think>") :].lstrip()
    if not (rest.startswith(OPEN) and rest.endswith(CLOSE)):
        return False
    return _only_events(rest[len(OPEN) : -len(CLOSE)])


def parse_strict(text: str) -> Parsed:
    """The `default` profile's reading: events of the last schedule block, names trimmed."""
    block = last_schedule_block(text)
    events = _events(STRICT_EVENT.findall(block), trim=True) if block is not None else ()
    return Parsed(events=events, format_ok=strict_format_ok(text), has_schedule=bool(events))


def _tokens_in_order(text: str, pos: int, steps: tuple[tuple[str | re.Pattern[str], int], ...]) -> bool:
    """Greedy search for tokens in order; each `(token, gap)` must start at least `gap` chars later.

    For fixed-length tokens separated by `.*` (gap 0) or `.+` (gap 1) the earliest match of each token
    leaves the most room for the rest, so greedy succeeds exactly when the backtracking regex does.
    """
    for token, gap in steps:
        if isinstance(token, str):
            i = text.find(token, pos + gap)
            if i < 0:
                return False
            pos = i + len(token)
        else:
            m = token.search(text, pos + gap)
            if m is None:
                return False
            pos = m.end()
    return True


_PUBLISHED_FORMAT_STEPS: tuple[tuple[str | re.Pattern[str], int], ...] = (
    ("</think>", 1),
    (OPEN, 0),
    ("<event>", 0),
    ("<name>", 0),
    ("</name>", 1),
    (_START_TAG, 0),
    (_END_TAG, 0),
    ("</event>", 0),
    (CLOSE, 0),
)
_LENIENT_STEPS: tuple[tuple[str | re.Pattern[str], int], ...] = (
    (OPEN, 0),
    ("<event>", 0),
    ("<name>", 0),
    ("</name>", 0),
    (_START_TAG, 0),
    (_END_TAG, 0),
    ("</event>", 0),
    (CLOSE, 0),
)


def published_format_ok(text: str) -> bool:
    """`re.match(PUBLISHED_FORMAT_REGEX, text, re.DOTALL)`, in linear time."""
    return text.startswith("<think>") and _tokens_in_order(text, len("<think>"), _PUBLISHED_FORMAT_STEPS)


def published_lenient_ok(text: str) -> bool:
    """`re.fullmatch(PUBLISHED_LENIENT_REGEX, text, re.DOTALL)`, in linear time."""
    return _tokens_in_order(text, 0, _LENIENT_STEPS)


def parse_published(text: str) -> Parsed:
    """The `original` profile's reading: events anywhere, names exact, published checks."""
    return Parsed(
        events=_events(PUBLISHED_EVENT.findall(text), trim=False),
        format_ok=published_format_ok(text),
        has_schedule=published_lenient_ok(text),
    )
