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
from collections.abc import Callable
from typing import NamedTuple

# Strict event: ASCII digits, white space allowed between tags.
STRICT_EVENT = re.compile(
    r"<event>\s*<name>([^<]+)</name>\s*<start>([0-9]{2}:[0-9]{2})</start>\s*"
    r"<end>([0-9]{2}:[0-9]{2})</end>\s*</event>"
)
# The published event pattern, verbatim.
PUBLISHED_EVENT = re.compile(
    r"<event>\s*<name>([^<]+)</name>\s*<start>(\d{2}:\d{2})</start>\s*<end>(\d{2}:\d{2})</end>\s*</event>"
)

_START_TAG = re.compile(r"<start>\d{2}:\d{2}</start>")
_END_TAG = re.compile(r"<end>\d{2}:\d{2}</end>")

OPEN, CLOSE = "<schedule>", "</schedule>"
# Tag lengths as constants: `len("…")` is a call each time, and these run on every completion.
LEN_OPEN, LEN_CLOSE, LEN_THINK, LEN_END_THINK = len(OPEN), len(CLOSE), len("<think>"), len("</think>")


class ParsedEvent(NamedTuple):
    """An event as written; `name` is the name as the profile compares it."""

    name: str
    start: str
    end: str
    start_min: int
    end_min: int


Key = tuple[str, str, str]


class Parsed(NamedTuple):
    """What a profile reads from a completion, as parallel columns (one entry per event, in order).

    `keys[i]` is event i's (name as the profile compares it, start, end): the key of
    `ProblemIndex.exact`. The columns are what scoring reads; `events` builds the per-event tuples that
    violations and other callers want, on demand (most completions never need them).
    """

    keys: tuple[Key, ...]
    starts: tuple[int, ...]  # start of each event, in minutes
    ends: tuple[int, ...]  # end of each event, in minutes
    format_ok: bool  # the profile's `format` component condition
    has_schedule: bool  # verdict check 1 passes

    @property
    def events(self) -> tuple[ParsedEvent, ...]:
        new, cls = tuple.__new__, ParsedEvent
        rows = zip(self.keys, self.starts, self.ends, strict=True)
        return tuple([new(cls, (n, s, e, a, b)) for (n, s, e), a, b in rows])


_NO_EVENTS = Parsed((), (), (), False, False)
_new = tuple.__new__  # NamedTuple construction without the Python-level `__new__`


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class _Minutes(dict[str, int]):
    """Every ASCII `DD:DD` the event patterns can capture, converted once; other digits (the published
    pattern's `\\d` takes any Unicode digit) are converted when met, and not kept."""

    def __missing__(self, hhmm: str) -> int:
        return _minutes(hhmm)


_MINUTES = _Minutes({f"{h:02d}:{m:02d}": h * 60 + m for h in range(100) for m in range(100)})


def last_schedule_block(text: str) -> str | None:
    """Body of the last complete `<schedule>…</schedule>` block, or None."""
    open_, close = _last_block_at(text)
    return None if open_ < 0 else text[open_ + LEN_OPEN : close]


def _strict_frame_at(text: str, open_: int, close: int) -> bool:
    """`strict_format_ok` but for the block's body, given the last `<schedule>` block (`open_`, `close`:
    where its tags start).

    When the format holds, the text after the reasoning is a single schedule block that ends the text
    (its body holds only events, which cannot contain `<schedule>`), so that block is the last one: the
    check is the head before it, the tail after it and its body (in `parse_strict`). The reasoning is
    scanned once, for `think>`: its first occurrence must close the reasoning (`</think>`), not open
    another (`<think>`).
    """
    if text[close + LEN_CLOSE :].strip():
        return False
    start = 0 if text.startswith("<think>") else len(text) - len(text.lstrip())
    if not text.startswith("<think>", start):
        return False
    body = pos = start + LEN_THINK
    while True:
        i = text.find("think>", pos, open_)
        if i < 0:
            return False
        if text[i - 1] == "<":
            return False  # `<think>` inside the reasoning
        if text[i - 2 : i] == "</":
            end = i - 2
            break
        pos = i + 1
    if end == body or text[end + LEN_END_THINK : open_].strip():
        return False
    return not (text[body].isspace() and text[body:end].isspace())  # blank reasoning


def _last_block_at(text: str) -> tuple[int, int]:
    """Where the last complete schedule block's opening and closing tags start; (-1, -1) if none."""
    close = text.rfind(CLOSE)
    if close < 0:
        return -1, -1
    return text.rfind(OPEN, 0, close), close


def strict_format_ok(text: str) -> bool:
    """`default` format: one non-empty `<think>` block, then one `<schedule>` block of events only.

    A reasoning block of white space only counts as empty. The schedule block must hold at least one
    event (docs/contract.md section 3 defines a schedule block as holding at least one well-formed event).
    """
    return parse_strict(text).format_ok


def parse_strict_reference(text: str) -> Parsed:
    """The `default` profile's reading: events of the last schedule block, names trimmed.

    The specification of `parse_strict`, which is this function written in C (`_core.c`) when
    `python -m env_server.scoring.native` built it, and this function otherwise. Both give the same
    `Parsed` for every string (tests/env_server/scoring/test_core_c.py)."""
    close = text.rfind(CLOSE)
    open_ = text.rfind(OPEN, 0, close) if close >= 0 else -1
    if open_ < 0:
        return _NO_EVENTS
    # [text before the first event, name, start, end, text between it and the next event, name, …]: the
    # events as `findall` finds them, and the text around them, which must be white space for the format
    parts = STRICT_EVENT.split(text[open_ + LEN_OPEN : close])
    if len(parts) == 1:
        return _NO_EVENTS
    m = _MINUTES  # plain comprehensions: with a handful of events they beat `map`
    starts, ends = parts[2::4], parts[3::4]
    # four parts per event, so the columns have one length; `strict=` would cost 0.2 µs a call here
    keys = tuple(zip(map(str.strip, parts[1::4]), starts, ends))  # noqa: B905
    only_events = not "".join(parts[::4]).strip()
    format_ok = only_events and _strict_frame_at(text, open_, close)
    return _new(Parsed, (keys, tuple([m[s] for s in starts]), tuple([m[e] for e in ends]), format_ok, True))


try:
    from env_server.scoring import _core
except ImportError:  # not built (no C compiler): the reference runs
    parse_strict: Callable[[str], Parsed] = parse_strict_reference
else:
    _core.setup_parse(Parsed, _NO_EVENTS)
    parse_strict = _core.parse_strict


# The published checks only ask whether fixed tokens occur in order, separated by `.*` (any gap) or `.+`
# (a gap of at least one character). The earliest occurrence of each token leaves the most room for the
# rest, so a greedy left-to-right search succeeds exactly when the backtracking regex does. Written out
# token by token: these run on every completion, and `str.find` is the fastest scan Python has.


def _after_name(text: str, pos: int) -> bool:
    """`.*<start>…</start>.*<end>…</end>.*</event>.*</schedule>` from `pos`."""
    m = _START_TAG.search(text, pos)
    if m is None:
        return False
    m = _END_TAG.search(text, m.end())
    if m is None:
        return False
    i = text.find("</event>", m.end())
    return i >= 0 and text.find(CLOSE, i + 8) >= 0


def _event_then_close(text: str, pos: int) -> tuple[bool, bool]:
    """`.*<event>.*<name>…</name>…</schedule>` from `pos`, with `.*` and with `.+` inside the name:
    (lenient form matches, format form matches). The second search differs only for an empty name."""
    find = text.find
    i = find("<event>", pos)
    if i < 0:
        return False, False
    i = find("<name>", i + 7)
    if i < 0:
        return False, False
    close = find("</name>", i + 6)
    if close < 0:
        return False, False
    ok = _after_name(text, close + 7)
    if close > i + 6:  # a non-empty name: the `.+` search finds the same `</name>`
        return ok, ok
    close = find("</name>", i + 7)
    return ok, close >= 0 and _after_name(text, close + 7)


def _published_checks(text: str) -> tuple[bool, bool]:
    """(`published_format_ok`, `published_lenient_ok`) in one scan when both start from the same
    `<schedule>`, which is the usual case: reasoning rarely writes the tag.

    The regexes only ask whether a match exists, and any witness will do. The usual answer has one at
    its end: the last `<schedule>` followed by an event and `</schedule>`, with a `</think>` before it.
    That is tried first, from the end, so a well-formed answer is confirmed without scanning its
    reasoning; only when it fails is the text searched from the start for the earliest tokens.
    """
    last = text.rfind(OPEN)
    if last < 0:
        return False, False
    if (
        text.startswith("<think>")
        and _event_then_close(text, last + LEN_OPEN)[1]
        and text.rfind("</think>", LEN_THINK + 1, last) >= 0  # `.+`: some reasoning before it
    ):
        return True, True  # the format's match implies the lenient one
    first = text.find(OPEN)
    if first < 0:
        return False, False
    lenient, strict_name = _event_then_close(text, first + LEN_OPEN)
    if not lenient or not text.startswith("<think>"):
        return False, lenient  # the format's match implies the lenient one (a later start, larger gaps)
    i = text.find("</think>", LEN_THINK + 1)  # `.+`: at least one character of reasoning
    if i < 0:
        return False, lenient
    open_ = text.find(OPEN, i + LEN_END_THINK)
    if open_ < 0:
        return False, lenient
    if open_ == first:
        return strict_name, lenient
    return _event_then_close(text, open_ + LEN_OPEN)[1], lenient


def published_format_ok(text: str) -> bool:
    """The published format regex (`tests/env_server/scoring/published.py`, `FORMAT_REGEX`) matching
    from the start of `text`, in linear time: the published regexes backtrack, so never run on answers."""
    return _published_checks(text)[0]


def published_lenient_ok(text: str) -> bool:
    """The published lenient regex (`tests/env_server/scoring/published.py`, `LENIENT_REGEX`) matching the
    whole of `text`, in linear time."""
    return _published_checks(text)[1]


def parse_published(text: str) -> Parsed:
    """The `original` profile's reading: events anywhere, names exact, published checks."""
    format_ok, lenient = _published_checks(text)
    found = PUBLISHED_EVENT.findall(text)
    m = _MINUTES
    starts, ends = tuple([m[s] for _, s, _ in found]), tuple([m[e] for _, _, e in found])
    return _new(Parsed, (tuple(found), starts, ends, format_ok, lenient))
