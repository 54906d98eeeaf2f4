"""Parsers: equivalent to the published regexes, linear-time on adversarial input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from env_server.scoring.parsing import (
    STRICT_EVENT,
    last_schedule_block,
    parse_published,
    parse_strict,
    published_format_ok,
    published_lenient_ok,
    strict_format_ok,
)
from tests.env_server.scoring.published import FORMAT_REGEX, LENIENT_REGEX

TOKENS = [
    "<think>", "</think>", "<schedule>", "</schedule>", "<event>", "</event>", "<name>", "</name>",
    "<start>09:00</start>", "<end>10:00</end>", "<start>9:00</start>", "<end>1O:00</end>", "A", "x", " ", "\n",
    "<event><name>A</name><start>09:00</start><end>10:00</end></event>",
]  # fmt: skip
soup = st.lists(st.sampled_from(TOKENS), max_size=18).map("".join)

_EVENT = STRICT_EVENT.pattern
STRICT_REFERENCE = re.compile(
    rf"\s*<think>((?:(?!</think>|<think>).)*)</think>\s*<schedule>(?:\s*{_EVENT})+\s*</schedule>\s*",
    re.DOTALL,
)


@settings(max_examples=3000, deadline=None)
@given(soup)
def test_published_checks_match_the_published_regexes(text: str) -> None:
    assert published_format_ok(text) == bool(re.match(FORMAT_REGEX, text, re.DOTALL))
    assert published_lenient_ok(text) == bool(re.fullmatch(LENIENT_REGEX, text, re.DOTALL))


@settings(max_examples=3000, deadline=None)
@given(soup)
def test_strict_format_matches_its_reference_regex(text: str) -> None:
    m = STRICT_REFERENCE.fullmatch(text)
    assert strict_format_ok(text) == bool(m and m.group(1).strip())


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("<schedule>a</schedule>", "a"),
        ("<schedule>a</schedule><schedule>b</schedule>", "b"),
        ("<schedule>a</schedule><schedule>b", "a"),
        ("<schedule>a<schedule>b</schedule>", "b"),
        ("</schedule><schedule>", None),
        ("no blocks", None),
    ],
)
def test_last_schedule_block(text: str, body: str | None) -> None:
    assert last_schedule_block(text) == body


def test_names_trimmed_only_in_strict_reading() -> None:
    text = "<schedule><event><name> Gym </name><start>09:00</start><end>10:00</end></event></schedule>"
    assert parse_strict(text).events[0].name == "Gym"
    assert parse_published(text).events[0].name == " Gym "


ADVERSARIAL = [
    "<event><name>" * 80_000,
    "<think>" + "<schedule><event><name>x</name>" * 30_000,
    "<event><name>" + "a" * 1_000_000,
    "<think>x</think><schedule>" + "<event> " * 120_000,
    "<think>" + "</think><schedule><event><name>a</name><start>00:00</start>" * 15_000,
    "<start>00:00</start><end>" * 40_000 + "</schedule>",
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_megabyte_inputs_parse_in_linear_time(text: str) -> None:
    # Catastrophic backtracking would take hours here; the timeout turns it into a failure.
    assert len(text) >= 500_000
    for parse in (parse_strict, parse_published):
        parsed = parse(text)
        assert parsed.format_ok is False
